"""vrrp_script: run a command every ``interval`` with keepalived's semantics, all in asyncio.

Each run goes through the ground-floor script runner (``scripts``): its own process group,
keepalived's user choice, environment and script security, a timeout that kills the whole
group. checkd logs the first bytes of a failed run's output with the result. A run that times
out counts as a failure. Runs never overlap: a tick that falls while a run is still going is
skipped and logged (``checkd.script.overrun``), as keepalived does.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import structlog

from checkd.hysteresis import RiseFall
from checkd.plan import ScriptSpec
from checkd.verdict import Verdict
from scripts import KILL_GRACE, Prepared, RunResult, ScriptRefused, prepare, run_once

log = structlog.get_logger(__name__)

COMPONENT = "checkd"


Emit = Callable[[Verdict], None]


class ScriptCheck:
    """One vrrp_script: runs forever (until cancelled), emitting a verdict after every run."""

    def __init__(
        self,
        spec: ScriptSpec,
        *,
        previous: Verdict | None = None,
        kill_grace: float = KILL_GRACE,
    ) -> None:
        self.spec = spec
        self.kill_grace = kill_grace
        if previous is not None and previous.kind == "script" and not previous.disabled:
            # A reload must not reset a passing script to failed (user-pain 1.3).
            self.state = RiseFall.resumed(spec.rise, spec.fall, ok=previous.ok)
            self.last: Verdict | None = self._verdict(previous.reason, previous.rc)
        else:
            self.state = RiseFall.start(spec.rise, spec.fall, init_fail=spec.init_fail)
            self.last = self._verdict("init_fail", None) if spec.init_fail else None
        self.runs = 0
        self.overruns = 0

    def _verdict(self, reason: str, rc: int | None, *, disabled: bool = False) -> Verdict:
        return Verdict(
            name=self.spec.name,
            kind="script",
            ok=self.state.ok and not disabled,
            reason=reason,
            weight=self.spec.weight,
            reverse=self.spec.reverse,
            rc=rc,
            disabled=disabled,
        )

    async def run(self, emit: Emit) -> None:
        spec = self.spec
        if self.last is not None:
            emit(self.last)
        try:
            prepared = prepare(spec.run)
        except ScriptRefused as exc:
            log.error("checkd.script.disabled", name=spec.name, reason=str(exc))
            self.last = self._verdict(f"disabled: {exc}", None, disabled=True)
            emit(self.last)
            return
        for warning in prepared.warnings:
            log.warning("checkd.script.unsafe", name=spec.name, detail=warning)
        log.info(
            "checkd.script.start",
            name=spec.name,
            path=prepared.exe.path,
            argv=list(prepared.exe.argv),
            via_shell=prepared.exe.via_shell,
            user=prepared.identity.user,
            uid=prepared.identity.uid,
            gid=prepared.identity.gid,
            user_source=prepared.identity.source,
            interval=spec.interval,
            timeout=spec.effective_timeout,
            path_env=os.environ.get("PATH", ""),
        )
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        last_rc: int | None = None
        while True:
            result = await self._run(prepared)
            self.runs += 1
            if result.rc != last_rc:
                log.info("checkd.script.rc_changed", name=spec.name, rc=result.rc, previous=last_rc)
                last_rc = result.rc
            changed = self.state.record(result.success)
            if changed:
                log.info(
                    "checkd.script.state",
                    name=spec.name,
                    ok=self.state.ok,
                    detail=result.describe(),
                )
            self.last = self._verdict(result.describe(), result.rc)
            emit(self.last)
            next_at += spec.interval
            now = loop.time()
            if next_at < now:
                skipped = int((now - next_at) // spec.interval) + 1
                self.overruns += skipped
                log.warning(
                    "checkd.script.overrun",
                    name=spec.name,
                    skipped=skipped,
                    total=self.overruns,
                    duration=round(result.duration, 3),
                    interval=spec.interval,
                )
                next_at += skipped * spec.interval
            await asyncio.sleep(next_at - now)

    async def _run(self, prepared: Prepared) -> RunResult:
        spec = self.spec
        try:
            result = await run_once(
                prepared,
                spec.effective_timeout,
                component=COMPONENT,
                kill_grace=self.kill_grace,
                name=spec.name,
            )
        except OSError as exc:
            # exec itself failed (file vanished, permissions changed since prepare).
            log.error("checkd.script.exec_failed", name=spec.name, error=str(exc))
            return RunResult(rc=127, duration=0.0)
        fields: dict[str, object] = {}
        if not result.success and result.output:
            fields["output"] = result.output.decode("utf-8", "replace")
        log.info(
            "checkd.script.result",
            name=spec.name,
            rc=result.rc,
            duration=round(result.duration, 3),
            timed_out=result.timed_out,
            **fields,
        )
        return result
