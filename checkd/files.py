"""track_file: an integer read from a file, re-read when the file changes.

Watching is a poll of the file's (device, inode, size, mtime_ns) every ``POLL_INTERVAL``
(0.5 s) rather than inotify: it needs no extra dependency, sees files that are replaced by
rename and directories that appear later, and costs one stat per file per poll. A change
triggers an immediate re-read; the file is also re-read every ``REREAD_INTERVAL`` in case an
mtime-preserving write slipped by.

Reading follows keepalived 2.2.7: the first 127 bytes are parsed like C's
``strtol(buf, NULL, 0)`` (leading blanks, a sign, ``0x`` hex, leading-0 octal, trailing text
ignored, no digits = 0); a missing, unreadable or empty file reads as 0; a value outside
int32 is ignored (the previous value stands).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from checkd.plan import FileSpec
from checkd.verdict import Verdict

log = structlog.get_logger(__name__)

READ_LIMIT = 127
POLL_INTERVAL = 0.5
REREAD_INTERVAL = 5.0
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
FAULT_BELOW = -253  # a weighted result below this puts a tracking instance in FAULT

_BLANKS = " \t\n\v\f\r"


def strtol(text: str) -> int:
    """C ``strtol(text, NULL, 0)`` without overflow clamping (the caller range-checks)."""
    s = text.lstrip(_BLANKS)
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    if s[:2].lower() == "0x" and s[2:3] and s[2:3].lower() in "0123456789abcdef":
        base, s = 16, s[2:]
    elif s[:1] == "0":
        base = 8
    digits = "0123456789abcdef"[:base]
    end = 0
    while end < len(s) and s[end].lower() in digits:
        end += 1
    return sign * int(s[:end], base) if end else 0


@dataclass(frozen=True, slots=True)
class Reading:
    value: int | None  # None: out of range, keep the previous value
    reason: str


def parse_value(data: bytes) -> Reading:
    text = data[:READ_LIMIT].decode("latin-1")
    if not text.strip(_BLANKS):
        return Reading(0, "empty file reads as 0")
    value = strtol(text)
    if not INT32_MIN <= value <= INT32_MAX:
        return Reading(None, f"value {value} out of int32 range, ignored")
    return Reading(value, "read")


def read_value(path: str) -> Reading:
    try:
        with open(path, "rb") as f:
            data = f.read(READ_LIMIT)
    except FileNotFoundError:
        return Reading(0, "file missing, reads as 0")
    except OSError as exc:
        return Reading(0, f"cannot read ({exc.strerror}), reads as 0")
    return parse_value(data)


def init_file(spec: FileSpec) -> None:
    """``init_file [VALUE] [overwrite]``: create the file with VALUE (or always overwrite)."""
    if spec.init_value is None:
        return
    if not spec.init_overwrite and os.path.exists(spec.path):
        return
    try:
        with open(spec.path, "w") as f:
            f.write(f"{spec.init_value}\n")
    except OSError as exc:
        log.error("checkd.file.init_failed", name=spec.name, path=spec.path, error=exc.strerror)
        return
    log.info("checkd.file.initialised", name=spec.name, path=spec.path, value=spec.init_value)


def judge(value: int, weight: int, reverse: bool) -> bool:
    """The object's own verdict: weight 0 fails on any non-zero value, else value x weight
    below -253 fails (as in keepalived 2.2.7). vrrpd re-judges with per-instance weights.
    """
    if weight == 0:
        return value == 0
    effective = -weight if reverse else weight
    return value * effective >= FAULT_BELOW


def _signature(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Watch:
    """One file's stat signature and when it was last read: ``due`` says whether to read it
    again (it changed, or ``reread_interval`` has passed). vrrp's track_file (``FileCheck``)
    and LVS's FILE_CHECK (``checkd.file_checks``) both watch through it."""

    __slots__ = ("last_read", "path", "reread_interval", "signature")

    def __init__(self, path: str, now: float, reread_interval: float = REREAD_INTERVAL) -> None:
        self.path = path
        self.reread_interval = reread_interval
        self.signature = _signature(path)
        self.last_read = now  # the caller reads the file now

    def due(self, now: float) -> bool:
        current = _signature(self.path)
        if current != self.signature or now - self.last_read >= self.reread_interval:
            self.signature, self.last_read = current, now
            return True
        return False


class FileCheck:
    def __init__(
        self,
        spec: FileSpec,
        *,
        previous: Verdict | None = None,
        poll_interval: float = POLL_INTERVAL,
        reread_interval: float = REREAD_INTERVAL,
    ) -> None:
        self.spec = spec
        self.poll_interval = poll_interval
        self.reread_interval = reread_interval
        self.value: int = 0
        # init_file is applied when the check first starts, not when a reload restarts it:
        # "overwrite" must not clobber a value an operator wrote since.
        self.initialise = previous is None
        if previous is not None and previous.kind == "file" and previous.value is not None:
            self.value = previous.value
        self.last: Verdict | None = None

    def observe(self) -> Verdict:
        reading = read_value(self.spec.path)
        if reading.value is None:
            log.warning(
                "checkd.file.ignored", name=self.spec.name, path=self.spec.path, why=reading.reason
            )
        else:
            self.value = reading.value
        return Verdict(
            name=self.spec.name,
            kind="file",
            ok=judge(self.value, self.spec.weight, self.spec.reverse),
            reason=reading.reason,
            weight=self.spec.weight,
            reverse=self.spec.reverse,
            value=self.value,
        )

    async def run(self, emit: Callable[[Verdict], None]) -> None:
        if self.initialise:
            init_file(self.spec)
        loop = asyncio.get_running_loop()
        watch = Watch(self.spec.path, loop.time(), self.reread_interval)
        self._emit(self.observe(), emit)
        while True:
            await asyncio.sleep(self.poll_interval)
            if watch.due(loop.time()):
                self._emit(self.observe(), emit)

    def _emit(self, verdict: Verdict, emit: Callable[[Verdict], None]) -> None:
        if self.last is None or verdict.value != self.last.value or verdict.ok != self.last.ok:
            log.info(
                "checkd.file.value",
                name=self.spec.name,
                path=self.spec.path,
                value=verdict.value,
                ok=verdict.ok,
                reason=verdict.reason,
            )
        self.last = verdict
        emit(verdict)
