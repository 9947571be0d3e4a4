"""FILE_CHECKs watched, not scheduled: each reacts to its file within ``POLL_INTERVAL``.

keepalived runs no FILE_CHECK every ``delay_loop``: it watches the file (inotify) and
applies a new value to the real server at once. Here each distinct file is watched as vrrp's
track_file is (``checkd.files.Watch``: a stat every ``POLL_INTERVAL``, a re-read when its
(device, inode, size, mtime_ns) changes or every ``REREAD_INTERVAL``), on one loop timer for
all of them. FILE_CHECKs naming the same file share its watch and its one read.

A value outside int32 is ignored and the file's previous value stands, as for track_file
(keepalived's track_file.c). What a reading means to a real server is ``FileTrack.judge``'s;
whether it changes anything is the caller's (``checkd.lvs_runner``) to decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from checkd.checkers.file import FileTrack
from checkd.checkers.result import CheckResult
from checkd.files import POLL_INTERVAL, REREAD_INTERVAL, Watch, read_value

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Watched:
    watch: Watch
    value: int  # the last value in range (0 before any)
    note: str  # how it was last read
    checkers: list[tuple[str, FileTrack]]  # by checker id


class FileChecks:
    """The watched files and the FILE_CHECKs on each (by checker id, with their
    ``FileTrack``); ``on_result`` gets each checker's result at every reading of its file."""

    def __init__(
        self,
        on_result: Callable[[str, CheckResult], None],
        clock: Callable[[], float],
        *,
        poll_interval: float = POLL_INTERVAL,
        reread_interval: float = REREAD_INTERVAL,
    ) -> None:
        self.on_result = on_result
        self.clock = clock
        self.poll_interval = poll_interval
        self.reread_interval = reread_interval
        self._files: dict[str, _Watched] = {}  # by path
        self._where: dict[str, tuple[_Watched, FileTrack]] = {}  # by checker id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._files)

    def set(self, checkers: Iterable[tuple[str, FileTrack]]) -> list[str]:
        """The FILE_CHECKs of a new configuration. A file still named keeps its watch and
        value; a new one is read now. Returns the checkers on new files: with those new or
        changed, they are due a result (``report``)."""
        now = self.clock()
        by_path: dict[str, list[tuple[str, FileTrack]]] = {}
        for item in checkers:
            by_path.setdefault(item[1].path, []).append(item)
        old, self._files, self._where = self._files, {}, {}
        moved: list[str] = []
        for path, items in by_path.items():
            watched = old.get(path)
            if watched is None:
                watched = _Watched(Watch(path, now, self.reread_interval), 0, "read", items)
                self._read(watched)
                moved += (cid for cid, _ in items)
            watched.checkers = items
            self._files[path] = watched
            for cid, track in items:
                self._where[cid] = (watched, track)
        return moved

    def report(self, cid: str) -> None:
        """``cid``'s result from its file's current value."""
        where = self._where.get(cid)
        if where is not None:
            watched, track = where
            self._give(cid, track.judge(watched.value, watched.note))

    def poll(self) -> None:
        """One stat per file; the files that changed (or are due a re-read) are read and
        every checker on them gets its result."""
        now = self.clock()
        for watched in self._files.values():
            if watched.watch.due(now):
                self._read(watched)
                self._report(watched, watched.checkers)

    def _read(self, watched: _Watched) -> None:
        reading = read_value(watched.watch.path)
        if reading.value is None:
            if reading.reason != watched.note:  # once, not at every re-read
                log.warning(
                    "checkd.file_check.ignored", path=watched.watch.path, why=reading.reason
                )
        else:
            watched.value = reading.value
        watched.note = reading.reason

    def _report(self, watched: _Watched, items: Iterable[tuple[str, FileTrack]]) -> None:
        for cid, track in items:
            self._give(cid, track.judge(watched.value, watched.note))

    def _give(self, cid: str, result: CheckResult) -> None:
        try:
            self.on_result(cid, result)
        except Exception as exc:  # one checker's bug must not stop the others' readings
            log.error("checkd.checker.crashed", checker=cid, exc_info=exc)

    # --- on the event loop ------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer = loop.call_later(self.poll_interval, self._tick)

    def _tick(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._timer = loop.call_later(self.poll_interval, self._tick)
        if self._files:
            self.poll()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop = None
