"""The script runner's exceptions."""

from __future__ import annotations


class ScriptError(Exception):
    """Base of everything the script runner raises on purpose."""


class ScriptRefused(ScriptError):
    """A script will not be run; the message says exactly why and how to fix it."""


class FifoError(ScriptError):
    """A notify FIFO cannot be used (created, given to its owner or opened); the message says
    why. Nothing is left behind: a FIFO created for it is removed again."""
