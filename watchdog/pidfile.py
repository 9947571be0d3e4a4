"""Pid files as keepalived writes them (``-p``, ``-r``, ``-c``): created 0644, removed at exit."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


def remove(path: Path, pid: int | None = None) -> None:
    """Remove ``path``; with ``pid``, only if it still names that process (not a successor's)."""
    with contextlib.suppress(FileNotFoundError):
        if pid is not None and path.read_text().strip() != str(pid):
            return
        path.unlink()
