"""The set of running checks, reconciled against each new plan.

On a new plan: checks whose spec is unchanged keep running untouched (a reload must not reset
a passing script to failed); changed ones are restarted seeded with their last verdict; new
ones start; removed ones stop (their scripts are killed) and their topic is forgotten. The
first plan of a restarted checkd seeds its scripts with the verdicts vrrpd still holds
(``checkd.resume``).
Verdicts go to ``publish`` only when they differ from the last one published for the name;
the bus publisher re-sends them to late joiners, and every :func:`checkd.verdict.resend_period`
as proof that checkd is alive (``repeat``), by itself; each carries the ``ttl`` that period
gives it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from checkd.files import FileCheck
from checkd.plan import FileSpec, Plan, ProcessSpec, ScriptSpec, Spec
from checkd.processes import ProcessCheck, ProcTable
from checkd.resume import seed
from checkd.scripts import ScriptCheck
from checkd.verdict import TTL_PERIODS, Verdict, resend_period, topic

log = structlog.get_logger(__name__)

Forget = Callable[[str], None]


class Publish(Protocol):
    """Retain ``body`` on ``topic`` and re-send it every ``repeat`` seconds (bus.Publisher)."""

    def __call__(self, topic: str, body: dict[str, Any], *, repeat: float) -> None: ...


STOP_RETRY = 1.0


class Check(Protocol):
    last: Verdict | None

    async def run(self, emit: Callable[[Verdict], None]) -> None: ...


@dataclass(slots=True)
class Running:
    spec: Spec
    check: Check
    task: asyncio.Task[None]


@dataclass(frozen=True, slots=True)
class Timing:
    """Knobs tests shorten; production uses each module's defaults."""

    kill_grace: float = 2.0
    file_poll: float = 0.5
    file_reread: float = 5.0
    process_poll: float = 0.5


class CheckSet:
    def __init__(self, publish: Publish, forget: Forget, timing: Timing | None = None) -> None:
        self._publish = publish
        self._forget = forget
        self.timing = timing or Timing()
        self._running: dict[str, Running] = {}
        self._published: dict[str, dict[str, Any]] = {}
        self._proc_table = ProcTable(max_age=self.timing.process_poll / 2)
        #: script or track_file -> the status vrrpd holds for it, for the first plan only
        #: (checkd.resume)
        self._held: Mapping[str, bool | int] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._running)

    def verdict(self, name: str) -> Verdict | None:
        running = self._running.get(name)
        return running.check.last if running else None

    def snapshot(self) -> list[dict[str, Any]]:
        """Every running check with its last verdict (what SIGUSR1 logs)."""
        out: list[dict[str, Any]] = []
        for name in sorted(self._running):
            running = self._running[name]
            last = running.check.last
            entry: dict[str, Any] = {
                "name": name,
                "kind": running.spec.kind,
                "verdict": None if last is None else last.body(),
            }
            for counter in ("runs", "overruns"):
                if hasattr(running.check, counter):
                    entry[counter] = getattr(running.check, counter)
            out.append(entry)
        return out

    def resume(self, held: Mapping[str, bool | int]) -> None:
        """Start the next plan's scripts from these statuses (vrrpd's, at checkd's start)."""
        self._held = held

    async def apply(self, plan: Plan) -> None:
        wanted = plan.by_name()
        removed = [n for n in self._running if n not in wanted]
        changed = [
            n for n, spec in wanted.items() if n in self._running and self._running[n].spec != spec
        ]
        previous = {n: self._running[n].check.last for n in changed}
        # Stopped together: each may need a second to let its script go.
        await self._stop(*removed, *changed)
        for name in removed:
            self._published.pop(name, None)
            self._forget(topic(name))
            log.info("checkd.check.removed", name=name)
        for name, spec in wanted.items():
            if name in self._running:
                continue
            if name in previous:
                log.info("checkd.check.changed", name=name, kind=spec.kind)
            else:
                log.info("checkd.check.added", name=name, kind=spec.kind)
            self._start(spec, previous[name] if name in previous else seed(spec, self._held))
        self._held = {}

    async def stop_all(self) -> None:
        await self._stop(*self._running)

    def _start(self, spec: Spec, previous: Verdict | None) -> None:
        check = self._build(spec, previous)
        task = asyncio.create_task(self._guard(spec, check), name=f"checkd.{spec.name}")
        self._running[spec.name] = Running(spec, check, task)

    def _build(self, spec: Spec, previous: Verdict | None) -> Check:
        t = self.timing
        if isinstance(spec, ScriptSpec):
            return ScriptCheck(spec, previous=previous, kill_grace=t.kill_grace)
        if isinstance(spec, FileSpec):
            return FileCheck(
                spec, previous=previous, poll_interval=t.file_poll, reread_interval=t.file_reread
            )
        assert isinstance(spec, ProcessSpec)
        return ProcessCheck(
            spec, table=self._proc_table, previous=previous, poll_interval=t.process_poll
        )

    async def _guard(self, spec: Spec, check: Check) -> None:
        """Run one check; a bug in one check must not take the others down."""
        try:
            await check.run(lambda v: self._emit(spec, v))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("checkd.check.crashed", name=spec.name, kind=spec.kind, exc_info=exc)
            self._emit(
                spec,
                Verdict(
                    name=spec.name,
                    kind=spec.kind,
                    ok=False,
                    reason=f"check crashed: {exc!r}",
                    weight=spec.weight,
                    reverse=spec.reverse,
                    disabled=True,
                ),
            )

    def _emit(self, spec: Spec, verdict: Verdict) -> None:
        period = resend_period(spec)
        body = verdict.body(ttl=TTL_PERIODS * period)
        if self._published.get(spec.name) == body:
            return
        self._published[spec.name] = body
        self._publish(topic(spec.name), body, repeat=period)

    async def _stop(self, *names: str) -> None:
        tasks = [r.task for r in (self._running.pop(n, None) for n in names) if r is not None]
        # Re-cancel until done: a cancellation racing with a script's exit can be absorbed by
        # library code, and a check that outlives its removal would publish forever.
        while pending := [t for t in tasks if not t.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=STOP_RETRY)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
