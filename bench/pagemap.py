"""Which physical pages back a process's memory, from ``/proc/PID/pagemap`` (root only).

PSS splits a page shared by N processes into N parts, whoever those processes are: a library
page our daemon shares with other programs' Python processes counts less while they run. The
footprint bench also wants a figure that does not move with the rest of the machine: the
daemon's **distinct pages**, every physical page resident in any of its processes counted
once (private, shared among its processes, or shared with anything else). That is RSS for a
process group without double counting: an upper bound on what stopping the daemon frees.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PAGE = 4096
_PFN_MASK = (1 << 55) - 1
_PRESENT = 1 << 63


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    perms: str
    name: str  # the file, "[heap]", "[stack]", ... or "" for anonymous memory


def mappings(pid: int) -> Iterator[Mapping]:
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in parts[0].split("-"))
        yield Mapping(start, end, parts[1], parts[5].strip() if len(parts) > 5 else "")


def resident(pid: int, start: int, end: int) -> dict[int, int]:
    """Virtual address -> page frame number, for the resident pages of [start, end)."""
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        entries = f.read((end - start) // PAGE * 8)
    return {
        start + i * PAGE: value & _PFN_MASK
        for i, (value,) in enumerate(struct.iter_unpack("=Q", entries))
        if value & _PRESENT
    }


def distinct_kib(pids: Iterable[int]) -> int:
    """KiB of distinct physical pages resident in any of ``pids`` (each page counted once).

    A process that exits while it is read is skipped; ``[vsyscall]`` is not in pagemap's range.
    """
    frames: set[int] = set()
    for pid in pids:
        try:
            for m in mappings(pid):
                if m.name != "[vsyscall]":
                    frames.update(resident(pid, m.start, m.end).values())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return len(frames) * PAGE // 1024
