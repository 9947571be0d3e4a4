"""FILE_CHECK: the integer in a ``track_file``, times the checker's weight, adjusts the real
server's weight; with weight 0 any non-zero value fails it.

Reading reuses ``checkd.files`` (the same parser as vrrpd's track_file, so a file means the
same thing to both); watching for changes is ``checkd.file_checks``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from checkd.checkers.errors import CheckerConfigError
from checkd.checkers.result import CheckResult
from checkd.files import read_value
from core.model import Checker, TrackFile

WEIGHT_FAULT = -(2**31)  # a weighted value at or below this takes the real server down


@dataclass(frozen=True, slots=True)
class FileTrack:
    """What a FILE_CHECK reads and how it weighs it."""

    path: str
    weight: int
    reverse: bool

    @classmethod
    def of(cls, checker: Checker, track_files: Mapping[str, TrackFile]) -> FileTrack:
        """FILE_CHECK names a global ``track_file`` block; its own ``weight`` overrides the
        block's, as in keepalived."""
        name = checker.track_file
        if not name:
            raise CheckerConfigError("FILE_CHECK has no track_file")
        tracked = track_files.get(name)
        if tracked is None or not tracked.file:
            raise CheckerConfigError(f"FILE_CHECK track_file {name} is not defined (with a file)")
        if checker.weight is not None:
            return cls(tracked.file, checker.weight, checker.weight_reverse)
        return cls(tracked.file, tracked.weight, tracked.weight_reverse)

    def judge(self, value: int, note: str = "read") -> CheckResult:
        """The result for ``value``; ``note`` says how it was read (``checkd.files.Reading``)."""
        result = judge_value(value, self.weight, self.reverse)
        detail = "" if note == "read" else f" ({note})"
        return CheckResult(result.ok, f"{self.path}: {result.reason}{detail}", result.weight)


def judge_value(value: int, weight: int, reverse: bool) -> CheckResult:
    """The verdict for a value already read; ``weight`` is the adjustment when it passes."""
    if weight == 0:
        if value:
            return CheckResult.failed(f"value {value} is not 0 (weight 0)", 0)
        return CheckResult.passed("value 0", 0)
    adjustment = value * weight * (-1 if reverse else 1)
    if adjustment <= WEIGHT_FAULT:
        return CheckResult.failed(f"value {value} x weight gives {adjustment}: fault", adjustment)
    return CheckResult.passed(f"value {value}, weight {adjustment:+d}", adjustment)


def file_check(path: str, weight: int = 1, reverse: bool = False) -> CheckResult:
    """One FILE_CHECK reading on its own. A missing or empty file reads as 0, like
    track_file; a value outside int32 leaves nothing to judge and fails (a watched file keeps
    its previous value instead: ``checkd.file_checks``)."""
    reading = read_value(path)
    if reading.value is None:
        return CheckResult.failed(f"{path}: {reading.reason}")
    return FileTrack(path, weight, reverse).judge(reading.value, reading.reason)
