"""checkd.file_checks on a fake clock: one watch and one read per file, whatever the number of
FILE_CHECKs on it; a reading when the file changes or is due a re-read; a value outside int32
keeps the previous one."""

from __future__ import annotations

import os
from pathlib import Path

from checkd.checkers.file import FileTrack
from checkd.checkers.result import CheckResult
from checkd.file_checks import FileChecks
from checkd.files import REREAD_INTERVAL


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def put(path: Path, value: str) -> None:
    new = path.with_name(path.name + ".new")
    new.write_text(value)
    os.replace(new, path)  # a new inode: seen whatever the mtime's resolution


def test_readings_follow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    put(path, "1\n")
    clock = Clock()
    got: list[tuple[str, CheckResult]] = []
    files = FileChecks(lambda cid, r: got.append((cid, r)), clock)
    weighed, strict = FileTrack(str(path), 5, False), FileTrack(str(path), 0, False)
    moved = files.set([("a", weighed), ("b", strict)])
    assert moved == ["a", "b"] and len(files) == 1 and got == []  # results come from report
    files.report("a")
    assert got == [("a", CheckResult(True, f"{path}: value 1, weight +5", 5))]

    got.clear()
    files.poll()  # nothing changed, no re-read due: no reading
    assert got == []
    put(path, "0\n")
    files.poll()
    assert [(cid, r.ok, r.weight) for cid, r in got] == [("a", True, 0), ("b", True, 0)]

    got.clear()
    put(path, "99999999999\n")  # out of int32: ignored, 0 stands
    files.poll()
    assert [(r.ok, r.weight) for _, r in got] == [(True, 0), (True, 0)]
    assert got[1][1].reason.endswith("(value 99999999999 out of int32 range, ignored)")

    got.clear()
    clock.now += REREAD_INTERVAL  # re-read though nothing changed
    files.poll()
    assert len(got) == 2

    # a new configuration keeping the file keeps its watch: nothing moved, nothing read
    got.clear()
    assert files.set([("a", weighed)]) == [] and got == []
    assert files.set([]) == [] and len(files) == 0
