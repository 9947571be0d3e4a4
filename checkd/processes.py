"""track_process: count processes matching a name (and parameters) against a quorum.

keepalived follows exec/exit events through the netlink proc connector. checkd polls /proc
every ``POLL_INTERVAL`` (0.5 s) instead: no netlink socket or CAP_NET_ADMIN handling, nothing
to resynchronise after an ENOBUFS overrun, and a process that lives less than half a second
is not something a quorum should rest on. One scan is shared by every track_process in the
same poll round (``ProcTable``).

Matching (keepalived 2.2.7, exact string comparison, never a regex):

- without ``full_command`` the name is compared with the kernel's ``comm`` (what
  ``/proc/PID/stat`` shows, at most 15 characters, so a longer name is compared on its first
  15); with ``full_command`` it is compared with ``argv[0]`` from ``/proc/PID/cmdline``;
- with no parameters configured, every process of that name matches;
- with parameters: by default they must equal ``argv[1:]``; ``param_match initial`` needs only
  ``argv[1:]`` to start with them; ``param_match partial`` also lets the last configured
  parameter be a prefix of the process's parameter at that place.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from checkd.hysteresis import Debounce
from checkd.plan import ProcessSpec
from checkd.verdict import Verdict

log = structlog.get_logger(__name__)

POLL_INTERVAL = 0.5
COMM_LEN = 15  # TASK_COMM_LEN - 1
PROC = "/proc"


@dataclass(frozen=True, slots=True)
class ProcInfo:
    pid: int
    comm: str
    argv: tuple[str, ...]


_PF_KTHREAD = 0x00200000


def parse_stat(text: str) -> tuple[str, str]:
    """(comm, state) from a /proc/PID/stat line; comm may itself contain ')' and spaces."""
    start, end = text.index("("), text.rindex(")")
    return text[start + 1 : end], text[end + 2 : end + 3]


def _stat_flags(text: str) -> int:
    return int(text[text.rindex(")") + 2 :].split()[6])


def read_proc(
    pid: int, root: str = PROC, need_argv: Callable[[str], bool] | None = None
) -> ProcInfo | None:
    """One process, or None when it is gone, a zombie, or a kernel thread.

    ``need_argv(comm)`` False skips reading the command line (``argv`` is then empty): most
    processes on a host cannot match any tracked name, and reading only ``stat`` for them
    halves the cost of a scan.
    """
    try:
        with open(f"{root}/{pid}/stat", encoding="utf-8", errors="replace") as f:
            text = f.read()
        comm, state = parse_stat(text)
        if state in ("Z", "X") or _stat_flags(text) & _PF_KTHREAD:
            return None
        if need_argv is not None and not need_argv(comm):
            return ProcInfo(pid, comm, ())
        with open(f"{root}/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (OSError, ValueError, IndexError):
        return None
    if not raw:
        return None  # exited between the two reads, or a kernel thread
    argv = tuple(a.decode("utf-8", "surrogateescape") for a in raw.rstrip(b"\0").split(b"\0"))
    return ProcInfo(pid, comm, argv)


def scan(root: str = PROC, need_argv: Callable[[str], bool] | None = None) -> list[ProcInfo]:
    out: list[ProcInfo] = []
    try:
        entries = os.listdir(root)
    except OSError as exc:
        log.error("checkd.process.scan_failed", root=root, error=exc.strerror)
        return out
    for entry in entries:
        if entry.isdigit():
            info = read_proc(int(entry), root, need_argv)
            if info is not None:
                out.append(info)
    return out


def matches(spec: ProcessSpec, proc: ProcInfo) -> bool:
    name, params = spec.process[0], spec.process[1:]
    if spec.full_command:
        if not proc.argv or proc.argv[0] != name:
            return False
    elif proc.comm != name[:COMM_LEN]:
        return False
    if not params:
        return True
    have = proc.argv[1:]
    if spec.param_match is None:
        return have == params
    if spec.param_match == "initial":
        return have[: len(params)] == params
    # partial: the configured parameters, NUL-joined, are a prefix of the process's.
    return "\0".join(have).startswith("\0".join(params))


def count(spec: ProcessSpec, procs: Iterable[ProcInfo]) -> int:
    return sum(1 for p in procs if matches(spec, p))


def quorum_ok(spec: ProcessSpec, n: int) -> bool:
    return n >= spec.quorum and (spec.quorum_max is None or n <= spec.quorum_max)


class ProcTable:
    """A /proc scan shared by all process checks polling within ``max_age`` of each other.

    Checks register their specs so a scan reads command lines only where one could match.
    """

    def __init__(self, root: str = PROC, max_age: float = POLL_INTERVAL / 2) -> None:
        self.root = root
        self.max_age = max_age
        self._at = -1e9
        self._procs: list[ProcInfo] = []
        self._specs: dict[int, ProcessSpec] = {}
        self._names: frozenset[str] = frozenset()
        self._all_argv = True

    def register(self, spec: ProcessSpec) -> int:
        key = id(spec)
        self._specs[key] = spec
        self._interest_changed()
        return key

    def unregister(self, key: int) -> None:
        self._specs.pop(key, None)
        self._interest_changed()

    def _interest_changed(self) -> None:
        specs = self._specs.values()
        self._all_argv = not specs or any(s.full_command for s in specs)
        self._names = frozenset(s.process[0][:COMM_LEN] for s in specs)
        self._at = -1e9

    def _need_argv(self, comm: str) -> bool:
        return comm in self._names

    def snapshot(self) -> list[ProcInfo]:
        now = time.monotonic()
        if now - self._at > self.max_age:
            need = None if self._all_argv else self._need_argv
            self._procs, self._at = scan(self.root, need), now
        return self._procs


class ProcessCheck:
    def __init__(
        self,
        spec: ProcessSpec,
        *,
        table: ProcTable | None = None,
        previous: Verdict | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.spec = spec
        self.table = table or ProcTable()
        self.poll_interval = poll_interval
        self.debounce = Debounce(spec.fork_delay, spec.terminate_delay)
        if previous is not None and previous.kind == "process":
            self.debounce.value = previous.ok
        self.last: Verdict | None = None

    def observe(self, now: float) -> Verdict:
        spec = self.spec
        n = count(spec, self.table.snapshot())
        raw = quorum_ok(spec, n)
        changed = self.debounce.update(raw, now)
        ok = bool(self.debounce.value)
        bounds = f"{spec.quorum}..{'' if spec.quorum_max is None else spec.quorum_max}"
        if ok == raw:
            reason = f"{n} running, quorum {bounds} {'met' if ok else 'not met'}"
        else:
            wait = spec.fork_delay if raw else spec.terminate_delay
            reason = f"{n} running, quorum {bounds}; change held for {wait}s delay"
        if changed:
            log.info("checkd.process.quorum", name=spec.name, ok=ok, count=n, quorum=bounds)
        return Verdict(
            name=spec.name,
            kind="process",
            ok=ok,
            reason=reason,
            weight=spec.weight,
            reverse=spec.reverse,
            count=n,
        )

    async def run(self, emit: Callable[[Verdict], None]) -> None:
        loop = asyncio.get_running_loop()
        key = self.table.register(self.spec)
        try:
            while True:
                now = loop.time()
                self.last = self.observe(now)
                emit(self.last)
                wake = now + self.poll_interval
                deadline = self.debounce.deadline()
                if deadline is not None:
                    wake = min(wake, deadline)
                await asyncio.sleep(max(0.0, wake - loop.time()))
        finally:
            self.table.unregister(key)
