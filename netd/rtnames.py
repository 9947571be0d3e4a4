"""Routing table names, read the way iproute2 (and keepalived) read them.

``table web`` in a keepalived.conf means whatever number ``/etc/iproute2/rt_tables`` (or a
``*.conf`` file in ``rt_tables.d``) gives ``web``: "NUMBER NAME" lines, ``#`` comments,
decimal or 0x-hex numbers. Files are re-read only when they change, so an operator who adds a
table name and reloads gets it without restarting netd.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

#: iproute2 ≥ 6.5 ships its defaults under /usr/share; /etc overrides them (read last).
SOURCES: tuple[str, ...] = (
    "/usr/share/iproute2/rt_tables",
    "/usr/share/iproute2/rt_tables.d",
    "/etc/iproute2/rt_tables",
    "/etc/iproute2/rt_tables.d",
)
BUILTIN = {"unspec": 0, "default": 253, "main": 254, "local": 255}

_cache: dict[tuple[tuple[str, int, int], ...], dict[str, int]] = {}


def parse_table_names(text: str) -> dict[str, int]:
    """``NUMBER NAME`` lines to {name: number}; malformed lines are skipped, as iproute2 does."""
    names: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            number = int(words[0], 0)
        except ValueError:
            continue
        if 0 <= number <= 0xFFFFFFFF:
            names[words[1]] = number
    return names


def _files(sources: Iterable[str]) -> list[str]:
    files: list[str] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files.extend(str(p) for p in sorted(path.glob("*.conf")) if p.is_file())
        elif path.is_file():
            files.append(source)
    return files


def _version(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


def table_names(sources: Iterable[str] | None = None) -> Mapping[str, int]:
    """Every known table name; later sources win, like iproute2's own reading order."""
    files = _files(SOURCES if sources is None else sources)
    key = tuple((f, *_version(f)) for f in files)
    names = _cache.get(key)
    if names is None:
        names = dict(BUILTIN)
        for f in files:
            try:
                names.update(parse_table_names(Path(f).read_text(errors="replace")))
            except OSError:
                continue  # unreadable: the lookup then reports the name as unknown
        _cache.clear()
        _cache[key] = names
    return names
