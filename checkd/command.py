"""Turning a configured script command into what is executed, as keepalived does.

keepalived execs the command directly (no shell) after splitting it with its own shell-like
rules; the splitter lives in core (``core.lexer.split_command``). Until core is importable in
this process it falls back to POSIX ``shlex`` rules, which agree on quoting and plain
backslashes and differ only on C-style escapes such as ``\\n``.
"""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checkd.errors import ScriptRefused

SHELL = "/bin/sh"
_MAGIC_LEN = 4


def _core_splitter() -> Callable[[str], list[str]] | None:
    try:
        lexer: Any = importlib.import_module("core.lexer")
    except ImportError:
        return None
    split: Callable[[str], list[str]] | None = getattr(lexer, "split_command", None)
    return split


def split_command(command: str) -> list[str]:
    split = _core_splitter()
    if split is not None:
        return split(command)
    return shlex.split(command)


@dataclass(frozen=True, slots=True)
class Executable:
    """What to exec: ``path`` with ``argv``; ``via_shell`` when keepalived would use system()."""

    path: str
    argv: tuple[str, ...]
    configured_path: str
    via_shell: bool = False


def resolve(command: str, search_path: str | None = None) -> Executable:
    """Find the program a command runs, or raise ScriptRefused naming the reason.

    A bare name is searched in PATH; the path is resolved with realpath (keepalived execs the
    resolved path so a swapped symlink cannot redirect a root script). ``</...`` commands and
    files that are neither ELF nor ``#!`` scripts run through the shell, as keepalived does.
    """
    stripped = command.strip()
    if stripped.startswith("</"):
        return Executable(SHELL, (SHELL, "-c", stripped), SHELL, via_shell=True)
    argv = split_command(command)
    if not argv:
        raise ScriptRefused("empty script command")
    program = argv[0]
    if "/" in program:
        configured = program
    else:
        found = shutil.which(program, path=search_path or os.environ.get("PATH", os.defpath))
        if found is None:
            raise ScriptRefused(f"cannot find {program!r} in PATH")
        configured = found
    if not os.path.exists(configured):
        raise ScriptRefused(f"{configured} does not exist")
    real = os.path.realpath(configured)
    if not os.path.isfile(real):
        raise ScriptRefused(f"{real} is not a regular file")
    if not _has_exec_magic(real):
        return Executable(SHELL, (SHELL, "-c", command), configured, via_shell=True)
    return Executable(real, tuple(argv), configured)


def _has_exec_magic(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(_MAGIC_LEN)
    except OSError:
        # Unreadable by us (root) is unusual; let exec report the real error.
        return True
    return head.startswith((b"#!", b"\x7fELF"))
