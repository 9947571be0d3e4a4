"""pykeepalivedctl: the operator command-line tool."""

from ctl.cli import build_parser, main

__all__ = ["build_parser", "main"]
