"""Turning a configured script command into what is executed, as keepalived does.

keepalived execs the command directly (no shell) after splitting it with its own shell-like
rules (:func:`split_command`); core's model uses the same splitter for ``Script.argv``, so what
``pykeepalivedctl check`` and the config dump show is what runs.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from scripts.errors import ScriptRefused

SHELL = "/bin/sh"
_MAGIC_LEN = 4


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def split_command(cmd: str) -> list[str]:
    """Split a script command into argv with keepalived's shell-like rules.

    Single and double quotes group words (quotes removed, may join adjacent text); backslash
    escapes `\\a \\b \\E \\f \\n \\r \\t \\v \\NNN \\xHH \\cC`, and `\\X` gives X.
    """
    args: list[str] = []
    buf: list[str] = []
    have = False
    quote = ""
    i = 0
    n = len(cmd)
    while i < n:
        c = cmd[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < n:
                i, s = _escape(cmd, i + 1)
                buf.append(s)
                continue
            else:
                buf.append(c)
            i += 1
            continue
        if c in " \t":
            if have:
                args.append("".join(buf))
                buf, have = [], False
            i += 1
            continue
        have = True
        if c in "'\"":
            quote = c
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            i, s = _escape(cmd, i + 1)
            buf.append(s)
            continue
        buf.append(c)
        i += 1
    if have:
        args.append("".join(buf))
    return args


def _escape(cmd: str, i: int) -> tuple[int, str]:
    c = cmd[i]
    if c in _ESCAPES:
        return i + 1, _ESCAPES[c]
    if c in "01234567":
        j = i
        while j < len(cmd) and j < i + 3 and cmd[j] in "01234567":
            j += 1
        return j, chr(int(cmd[i:j], 8))
    if c == "x":
        j = i + 1
        while j < len(cmd) and j < i + 3 and cmd[j] in "0123456789abcdefABCDEF":
            j += 1
        if j > i + 1:
            return j, chr(int(cmd[i + 1 : j], 16))
        return i + 1, "x"
    if c == "c" and i + 1 < len(cmd):
        return i + 2, chr(ord(cmd[i + 1].upper()) ^ 0x40)
    return i + 1, c


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
