"""FILE_CHECK: the integer in a ``track_file``, times the checker's weight, adjusts the real
server's weight; with weight 0 any non-zero value fails it.

Reading reuses ``checkd.files`` (the same parser as vrrpd's track_file, so a file means the
same thing to both); watching for changes is the caller's job.
"""

from __future__ import annotations

from checkd.checkers.result import CheckResult
from checkd.files import read_value

WEIGHT_FAULT = -(2**31)  # a weighted value at or below this takes the real server down


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
    """One FILE_CHECK reading. A missing or empty file reads as 0, like track_file; a value
    outside int32 leaves nothing to judge and fails."""
    reading = read_value(path)
    if reading.value is None:
        return CheckResult.failed(f"{path}: {reading.reason}")
    result = judge_value(reading.value, weight, reverse)
    detail = "" if reading.reason == "read" else f" ({reading.reason})"
    return CheckResult(result.ok, f"{path}: {result.reason}{detail}", result.weight)
