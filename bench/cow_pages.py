"""Where each forked child's private memory comes from: copies of the watchdog's image pages.

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/cow_pages.py [--instances 1] [--settle 3]

One node of a fresh lab runs our daemon (children forked from the watchdog's preloaded image,
watchdog.spawn) with the footprint bench's configuration. Once every instance has advertised
and ``--settle`` seconds have passed, every resident page of each child's writable anonymous
memory (pymalloc's arenas, the C heap, libpython's data) is looked up in ``/proc/PID/pagemap``
and ``/proc/kpagecount``:

* **shared**: the physical page is mapped by more than one process (the image, still shared);
* **private, new address**: the watchdog has nothing at that address;
* **private, copy**: the watchdog has a page at the same address, so this one is the child's
  copy of an image page (copy-on-write) or reused free space inside the image. The child's
  page is compared with the watchdog's, 8-byte word by word: a copy that differs in at most
  4 of its 512 words was copied for a few counters, not for new data, and one identical to
  the watchdog's again was copied for a write since undone (a count up, then down).

For those few-word copies the changed words are attributed: a word followed by a pointer to a
type object (read from the child's memory: ``tp_name``) is taken as that object's reference
count (CPython's object header is the count, then the type). The other words are split by
how they changed: by less than 2**20 ("a counter moved": the specializing interpreter's
warm-up and back-off counters, sizes, flags), from or to a user-space address ("a pointer
changed": the collector's list links, free lists, pool headers) or anything else (bytecode
and inline caches that CPython 3.11 rewrites in place when a function warms up). Heuristics,
by the look of a word.
"""

from __future__ import annotations

import argparse
import collections
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from failover import Ours
from footprint import compiled_bytecode, component, footprint_config
from pagemap import PAGE, mappings, resident

from ctl.capture import AdvertCapture
from ctl.lab import Lab

WORDS = PAGE // 8
FEW_WORDS = 4
_TP_NAME_OFFSET = 24  # PyVarObject_HEAD: refcount, type, size; then tp_name
_SMALL_DELTA = 1 << 20
# x86-64 user space: the heap from 0x55..., mappings up to 0x7fff...
_POINTER_LOW, _POINTER_HIGH = 0x5500_0000_0000, 0x8000_0000_0000


@dataclass(slots=True)
class Split:
    kib: collections.Counter[str] = field(default_factory=collections.Counter)
    changed: collections.Counter[str] = field(default_factory=collections.Counter)


def writable_anon(pid: int) -> Iterator[tuple[int, int, str]]:
    """(start, end, kind) of the mappings a Python process writes its objects into."""
    for m in mappings(pid):
        if not m.perms.startswith("rw"):
            continue
        kind = "libpython" if "libpython" in m.name else {"": "anon", "[heap]": "heap"}.get(m.name)
        if kind is not None:
            yield m.start, m.end, kind


class Memory:
    def __init__(self, pid: int) -> None:
        # Unbuffered: a read-ahead past the page would cross into unmapped memory.
        self.file = open(f"/proc/{pid}/mem", "rb", buffering=0)  # noqa: SIM115 (close())
        self.type_names: dict[int, str | None] = {}

    def read(self, address: int, size: int) -> bytes | None:
        try:
            self.file.seek(address)
            return self.file.read(size)
        except (OSError, ValueError, OverflowError):
            return None

    def words(self, address: int) -> tuple[int, ...]:
        data = self.read(address, PAGE)
        return struct.unpack(f"={WORDS}Q", data) if data else ()

    def type_name(self, address: int) -> str | None:
        if address not in self.type_names:
            self.type_names[address] = self._type_name(address)
        return self.type_names[address]

    def _type_name(self, address: int) -> str | None:
        pointer = self.read(address + _TP_NAME_OFFSET, 8)
        if not pointer:
            return None
        raw = self.read(struct.unpack("=Q", pointer)[0], 64)
        if not raw or b"\0" not in raw:
            return None
        name = raw.split(b"\0")[0].decode(errors="replace")
        return name if name.isprintable() and name else None

    def close(self) -> None:
        self.file.close()


def classify(watchdog: int, child: int) -> Split:
    parent = {}
    for start, end, _ in writable_anon(watchdog):
        parent.update(resident(watchdog, start, end))
    split = Split()
    theirs, mine = Memory(watchdog), Memory(child)
    try:
        with open("/proc/kpagecount", "rb") as counts:
            for start, end, kind in writable_anon(child):
                for address, pfn in resident(child, start, end).items():
                    counts.seek(pfn * 8)
                    if struct.unpack("=Q", counts.read(8))[0] > 1:
                        split.kib[f"{kind} shared"] += 4
                    elif address not in parent:
                        split.kib[f"{kind} private, new address"] += 4
                    else:
                        _copied(split, kind, mine.words(address), theirs.words(address), mine)
    finally:
        theirs.close()
        mine.close()
    return split


def _copied(
    split: Split, kind: str, mine: tuple[int, ...], theirs: tuple[int, ...], mem: Memory
) -> None:
    if len(mine) != WORDS or len(theirs) != WORDS:
        split.kib[f"{kind} private copy, unreadable"] += 4
        return
    changed = [i for i in range(WORDS) if mine[i] != theirs[i]]
    if not changed:
        split.kib[f"{kind} private copy, identical again"] += 4
        return
    if len(changed) > FEW_WORDS:
        split.kib[f"{kind} private copy, >{FEW_WORDS} words changed"] += 4
        return
    split.kib[f"{kind} private copy, 1-{FEW_WORDS} words changed"] += 4
    for i in changed:
        name = None
        if i + 1 < WORDS and 0 < mine[i] < 1 << 32:
            name = mem.type_name(mine[i + 1])
        split.changed[
            "reference count of a " + name if name else _other_word(mine[i], theirs[i])
        ] += 1


def _other_word(mine: int, theirs: int) -> str:
    if abs(mine - theirs) < _SMALL_DELTA:
        return "other: a counter moved"
    if _POINTER_LOW <= min(mine, theirs) < _POINTER_HIGH:
        return "other: a pointer changed"
    return "other: anything else (bytecode...)"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--settle", type=float, default=3.0)
    args = ap.parse_args()
    compiled_bytecode()
    with Lab(nodes=1) as lab:
        lab.wait_ready()
        (node,) = lab.nodes
        with AdvertCapture(lab.hub) as cap:
            daemon = Ours(node, footprint_config(args.instances))
            try:
                vrids: set[int] = set()
                deadline = time.monotonic() + 60
                while len(vrids) < args.instances and time.monotonic() < deadline:
                    vrids.update(adv.vrid for adv in cap.drain())
                    time.sleep(0.01)
                time.sleep(args.settle)
                pids = {component(pid): pid for pid in daemon.pids()}
                watchdog = pids.pop("watchdog")
                for name, pid in sorted(pids.items()):
                    report(name, classify(watchdog, pid))
            finally:
                daemon.close()
    return 0


def report(name: str, split: Split) -> None:
    print(f"== {name}: {sum(split.kib.values()) / 1024:.1f} MiB resident (MiB)")
    for key in sorted(split.kib):
        print(f"   {key:48} {split.kib[key] / 1024:6.2f}")
    private = {k: v for k, v in split.kib.items() if "private" in k}
    by_kind: dict[str, int] = {}
    for key, kib in private.items():
        what = key.split(", ", 1)[1] if "copy" in key else "new address"
        by_kind[what] = by_kind.get(what, 0) + kib
    total = sum(private.values())
    print(
        f"   private {total / 1024:.1f} MiB: "
        + ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in sorted(by_kind.items()))
    )
    words = sum(split.changed.values())
    print(f"   words changed in the few-word copies ({words}):")
    for what, n in split.changed.most_common(8):
        print(f"      {what:45} {100 * n / words:5.1f} %")


if __name__ == "__main__":
    sys.exit(main())
