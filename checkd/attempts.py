"""Every configured checker as one bounded attempt that reports events for its pool.

``arm`` pairs the check plan (``checkd.checkplan``) with the typed configuration the probes
are built from (``checkd.checkers.make_probe``; MISC_CHECK through ``checkd.misc_check``), and
wraps each in a time bound so no attempt can outlive its checker's timeout even if a probe
misbehaves. What an attempt returns is data: the events for ``checkd.pool.apply_event`` and
the last result an operator sees (``ok``, ``reason``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

import scripts
from checkd.checker_state import mail_body
from checkd.checkers import (
    CheckerError,
    CheckResult,
    ConnectOptions,
    FileTrack,
    HttpCheck,
    Pinger,
    make_probe,
)
from checkd.checkers.tcp_connects import passed_reason
from checkd.checkplan import CheckerPlan, CheckPlan, RealServerPlan, VirtualServerPlan
from checkd.misc_check import misc_spec, run_misc
from checkd.pool_messages import CheckerVerdict, CheckerWeight, Event, ProbeResult
from core.model import Checker, Config, RealServer, TrackFile, VirtualServer

log = structlog.get_logger(__name__)

# Beyond a checker's own timeout, what an attempt may take before it is abandoned: probes
# enforce connect_timeout themselves, so this only catches a probe that does not.
GRACE = 1.0


@dataclass(frozen=True, slots=True)
class AttemptResult:
    ok: bool
    reason: str
    events: tuple[Event, ...]
    rc: int | None = None  # MISC_CHECK: the script's exit status


Attempt = Callable[[], Coroutine[Any, Any, AttemptResult]]


@dataclass(frozen=True, slots=True)
class Armed:
    """One checker ready to run: its plan, its pool and its bounded attempt."""

    plan: CheckerPlan
    vs_id: str
    bound: float
    attempt: Attempt
    # TCP_CHECK: what the runner's shared connector needs instead of running ``attempt``
    fast: TcpFast | None = None
    # HTTP_GET / SSL_GET: what the runner's shared fetcher needs instead of running ``attempt``
    http: HttpFast | None = None
    # FILE_CHECK: its file, watched by the runner (``checkd.file_checks``), never scheduled
    file: FileTrack | None = None

    def same_as(self, other: Armed) -> bool:
        """Unchanged by a reload: the schedule and any attempt under way carry over."""
        return self.plan == other.plan and self.vs_id == other.vs_id


@dataclass(frozen=True, slots=True)
class TcpFast:
    """A TCP_CHECK as data for ``checkd.checkers.tcp_connects`` (no coroutine per attempt).

    The outcomes are built once: a passing attempt allocates nothing, and both give the same
    result the generic ``attempt`` gives for the same outcome."""

    opts: ConnectOptions
    passed: AttemptResult
    failed_events: tuple[Event, ...]

    @classmethod
    def of(cls, c_plan: CheckerPlan, opts: ConnectOptions) -> TcpFast:
        ok = CheckResult.passed(passed_reason(opts))
        return cls(
            opts,
            AttemptResult(True, ok.reason, probe_events(c_plan, ok)),
            probe_events(c_plan, CheckResult.failed("")),
        )

    def result(self, ok: bool, reason: str) -> AttemptResult:
        return self.passed if ok else AttemptResult(False, reason, self.failed_events)


@dataclass(frozen=True, slots=True)
class HttpFast:
    """An HTTP_GET or SSL_GET as data for ``checkd.checkers.http_fetches`` (no Task per
    attempt, one url each), with its pool events built once; ``bound`` is the generic
    attempt's."""

    check: HttpCheck
    bound: float
    passed_events: tuple[Event, ...]
    failed_events: tuple[Event, ...]

    @classmethod
    def of(cls, c_plan: CheckerPlan, check: HttpCheck, bound: float) -> HttpFast:
        return cls(
            check,
            bound,
            probe_events(c_plan, CheckResult.passed("")),
            probe_events(c_plan, CheckResult.failed("")),
        )

    def result(self, result: CheckResult) -> AttemptResult:
        events = self.passed_events if result.ok else self.failed_events
        return AttemptResult(result.ok, result.reason, events)


@dataclass(frozen=True, slots=True)
class ScriptContext:
    """global_defs that MISC_CHECK scripts need."""

    script_user: tuple[str, str | None] | None = None
    script_security: bool = False

    @classmethod
    def of(cls, config: Config) -> ScriptContext:
        g = config.global_defs
        user = (g.script_user.user, g.script_user.group) if g.script_user is not None else None
        return cls(user, g.enable_script_security)


def arm(config: Config, plan: CheckPlan, pinger: Pinger) -> dict[str, Armed]:
    """Every checker of ``plan``; one that cannot run at all fails every attempt, saying why."""
    ctx = ScriptContext.of(config)
    track_files = {tf.name: tf for tf in config.track_files}
    armed: dict[str, Armed] = {}
    for vs_plan, vs, rs_plan, rs, c_plan, checker in _pairs(config, plan):
        rs_model = replace(rs, port=rs_plan.port)
        armed[c_plan.id] = _arm_one(
            c_plan, vs_plan.id, checker, rs_model, vs, pinger, track_files, ctx
        )
    return armed


def _pairs(
    config: Config, plan: CheckPlan
) -> Iterator[
    tuple[VirtualServerPlan, VirtualServer, RealServerPlan, RealServer, CheckerPlan, Checker]
]:
    # build_plan keeps the configuration's order and drops only virtual servers whose group
    # is missing, so the two walk in step once those are skipped here too.
    groups = {g.name for g in config.virtual_server_groups}
    kept = [vs for vs in config.virtual_servers if vs.group is None or vs.group in groups]
    for vs_plan, vs in zip(plan.virtual_servers, kept, strict=True):
        for rs_plan, rs in zip(vs_plan.real_servers, vs.real_servers, strict=True):
            for c_plan, checker in zip(rs_plan.checkers, rs.checkers, strict=True):
                yield vs_plan, vs, rs_plan, rs, c_plan, checker


def _arm_one(
    c_plan: CheckerPlan,
    vs_id: str,
    checker: Checker,
    rs: RealServer,
    vs: VirtualServer,
    pinger: Pinger,
    track_files: Mapping[str, TrackFile],
    ctx: ScriptContext,
) -> Armed:
    s = c_plan.settings
    fast: TcpFast | None = None
    http: HttpFast | None = None
    file: FileTrack | None = None
    try:
        if c_plan.kind == "MISC_CHECK":
            timeout = s.misc_timeout or s.delay_loop
            attempt = _misc_attempt(c_plan, checker, timeout, ctx)
            bound = timeout + scripts.KILL_GRACE + GRACE
        else:
            # HTTP_GET/SSL_GET: the first url's GET (one attempt is one url); the runner
            # fetches the url the checker's walk is on (``checkd.url_walk``) on its fetcher.
            probe = make_probe(checker, rs, vs, pinger, track_files)
            attempt = _probe_attempt(c_plan, probe)
            bound = s.connect_timeout + GRACE
            if c_plan.kind == "TCP_CHECK":
                fast = TcpFast.of(c_plan, ConnectOptions.from_model(checker, rs, vs))
            elif c_plan.kind in ("HTTP_GET", "SSL_GET"):
                http = HttpFast.of(c_plan, HttpCheck.from_model(checker, rs, vs), bound)
            elif c_plan.kind == "FILE_CHECK":
                file = FileTrack.of(checker, track_files)
    except (CheckerError, scripts.ScriptError) as exc:
        log.error("checkd.checker.disabled", checker=c_plan.id, reason=str(exc))
        attempt, bound = _refused(c_plan.id, f"disabled: {exc}"), GRACE
    return Armed(c_plan, vs_id, bound, _bounded(c_plan, attempt, bound), fast, http, file)


def _refused(checker_id: str, reason: str) -> Attempt:
    async def attempt() -> AttemptResult:
        return AttemptResult(False, reason, (ProbeResult(checker_id, False),))

    return attempt


def _misc_attempt(
    c_plan: CheckerPlan, checker: Checker, timeout: float, ctx: ScriptContext
) -> Attempt:
    spec = misc_spec(
        checker, c_plan.id, script_user=ctx.script_user, script_security=ctx.script_security
    )
    prepared = scripts.prepare(spec)
    for warning in prepared.warnings:
        log.warning("checkd.misc.unsafe", checker=c_plan.id, detail=warning)

    async def attempt() -> AttemptResult:
        out = await run_misc(prepared, c_plan.id, timeout, dynamic=checker.misc_dynamic)
        return AttemptResult(out.ok, out.reason, out.events, out.rc)

    return attempt


def _probe_attempt(c_plan: CheckerPlan, probe: Callable[[], Awaitable[CheckResult]]) -> Attempt:
    async def attempt() -> AttemptResult:
        result = await probe()
        return AttemptResult(result.ok, result.reason, probe_events(c_plan, result))

    return attempt


def probe_events(c_plan: CheckerPlan, result: CheckResult) -> tuple[Event, ...]:
    """A probe's result as pool events: FILE_CHECK decides itself and carries a weight."""
    if c_plan.kind == "FILE_CHECK":
        verdict = CheckerVerdict(c_plan.id, result.ok)
        if result.weight is None:
            return (verdict,)
        return (CheckerWeight(c_plan.id, result.weight), verdict)
    return (ProbeResult(c_plan.id, result.ok, mail_body(c_plan.kind, result.ok)),)


def _bounded(c_plan: CheckerPlan, attempt: Attempt, bound: float) -> Attempt:
    async def bounded() -> AttemptResult:
        try:
            async with asyncio.timeout(bound):
                return await attempt()
        except TimeoutError:
            reason = f"no result within {bound:g} s"
        except (CheckerError, OSError) as exc:
            reason = f"probe failed: {exc}"
            log.error("checkd.checker.error", checker=c_plan.id, error=str(exc))
        return AttemptResult(False, reason, probe_events(c_plan, CheckResult.failed(reason)))

    return bounded
