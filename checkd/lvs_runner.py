"""The virtual servers' pools, kept live: checkers run on one timer heap, results feed the pools.

One object owns every pool (``checkd.pool``), every armed checker (``checkd.attempts``) and one
``TimerHeap`` (``checkd.schedule``). A checker has no task of its own: when its time comes one
attempt is started, bounded by the checker's timeout, and its result is applied to the pool,
which says when the checker runs next (``delay_loop``, or ``delay_before_retry`` while
retrying). The decisions (``apply``, ``due``, ``finished``, ``set_held``) are plain methods
taking the time, so tests drive them with a fake clock; ``run`` is the thin async loop around
them. What the pools ask for is handed to an action sink (``checkd.pool_actions``) and their
state is published retained (``checkd.pool_topics``) when it changes.

``ha_suspend``: a virtual server with it runs no checker while none of its addresses is
configured on this host (``set_held``, from netd's ``net.link.*``: ``checkd.local_addresses``);
its due checkers are passed over, one ``delay_loop`` at a time.

FILE_CHECKs are not on the heap: like keepalived, which watches their files, the runner's
``FileChecks`` (``checkd.file_checks``) reads a file when it changes (within half a second)
and hands each FILE_CHECK on it its result; one that changes nothing is only recorded
(``last``), with no pool copy and nothing published (``verdict_unchanged``).

External verdicts (``external``, docs/checkers.md "External verdicts"): a real server's
``health.rs:<vs>/<rs>`` verdict is applied to its pool at once, and the heap holds the time it
goes stale under its external checker's id; if nothing fresh comes by then, the checker fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import structlog

from checkd.attempts import Armed, AttemptResult, probe_events
from checkd.checker_state import mail_body
from checkd.checkers.connect_helper import ConnectHelper
from checkd.checkers.http_fetches import HttpFetches
from checkd.checkers.result import CheckResult, ConnectOptions
from checkd.checkers.tcp_connects import TcpConnects
from checkd.checkplan import CheckPlan, VirtualServerPlan
from checkd.errors import PoolError
from checkd.external import ExternalReport, stale_after
from checkd.file_checks import FileChecks
from checkd.helper_policy import DEFAULT_POLICY, HelperPolicy, LateStarts, idle_seconds
from checkd.pool import (
    Transition,
    apply_event,
    leaves_unchanged,
    reload_pool,
    remove_pool,
    shutdown,
    start_pool,
    url_index,
    verdict_unchanged,
)
from checkd.pool_messages import EXTERNAL, Action, Event, ExternalVerdict, ProbeResult, external_id
from checkd.pool_state import Member, PoolState
from checkd.pool_topics import (
    LastResults,
    pool_body,
    pool_topic,
    quorum_verdict,
    rs_body,
    rs_change_key,
    rs_key,
    rs_topic,
)
from checkd.schedule import TimerHeap, start_delay
from core.model import Config

log = structlog.get_logger(__name__)

# The loop timer's shortest period: checkers due within it start in one wake-up, so a probe
# starts at most this late for that reason (bench/checks.py measures the drift).
TICK = 0.001
# The share of a checker's delay by which a late start may bring its next attempt forward.
CATCH_UP = 0.1


class Retainer(Protocol):
    def retain(
        self,
        topic: str,
        body: Mapping[str, Any],
        *,
        refresh: Callable[[], Mapping[str, Any]] | None = None,
        repeat: bool = False,
    ) -> None: ...

    def forget(self, topic: str) -> None: ...


class ActionSink(Protocol):
    def configure(self, config: Config) -> None: ...

    def perform(self, actions: Iterable[Action]) -> None: ...


class PoolRunner:
    def __init__(
        self,
        publisher: Retainer,
        actions: ActionSink,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        helper: HelperPolicy = DEFAULT_POLICY,
    ) -> None:
        self.publisher = publisher
        self.actions = actions
        self.clock = clock
        self.wall = wall
        self.pools: dict[str, PoolState] = {}
        self.armed: dict[str, Armed] = {}
        self.heap = TimerHeap()
        self.last = LastResults()
        self.held: frozenset[str] = frozenset()
        self._published: dict[str, Any] = {}
        self._due_at: dict[str, float] = {}  # when each checker was last due
        self._late: dict[str, float] = {}  # how late each attempt under way started
        self._phase: dict[str, float] = {}  # a due time each checker's steady rounds keep to
        self._inflight: dict[str, asyncio.Task[None]] = {}
        # Checkers new or changed by the last ``apply`` that have not had a result yet, and
        # who to tell once none is left (checkd's ``gc.freeze``, ``checkd.lvs_service``).
        self._unrun: set[str] = set()
        self.on_first_round: Callable[[], None] | None = None
        # External verdicts: each configured real server by its topic key, with how long a
        # verdict without ttl stays fresh; the external checkers that have had a verdict, by
        # id (their staleness deadlines share the heap); those that went stale since.
        self._by_key: dict[str, tuple[str, str, float]] = {}
        self._externals: dict[str, tuple[str, str, float]] = {}
        self._stale: set[str] = set()
        self.files = FileChecks(self._file_result, clock=clock)
        # set while ``run`` runs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connects: TcpConnects[Armed] | None = None
        # The connect helper, forked when the schedule slips (``checkd.helper_policy``).
        self._helper_policy = helper
        self._helper: ConnectHelper[Armed] | None = None
        self._starts = LateStarts(helper.late)
        self._judge: asyncio.TimerHandle | None = None
        self._judge_skip = False
        self._tcp_rate = 0.0  # TCP_CHECK attempts a second the configuration asks for
        self._idle_at = (0.0, 0.0)  # when the last window ended, the CPUs' idle seconds then
        self._fetches: HttpFetches[Armed] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._last_tick = 0.0

    # --- decisions (no I/O but the sinks; driven by tests with a fake clock) --------------

    def apply(self, plan: CheckPlan, armed: Mapping[str, Armed]) -> None:
        """A new configuration: pools start, reload or go; changed checkers start afresh."""
        wanted = {vs.id: vs for vs in plan.virtual_servers}
        for vs_id in [v for v in self.pools if v not in wanted]:
            self._perform(remove_pool(self.pools.pop(vs_id)))
        for vs in plan.virtual_servers:
            old = self.pools.get(vs.id)
            t = (
                reload_pool(old, vs, router_id=plan.router_id)
                if old is not None
                else start_pool(
                    vs, router_id=plan.router_id, no_checker_emails=plan.no_checker_emails
                )
            )
            self.pools[vs.id] = t.state
            self._perform(t)
        for cid, old_armed in self.armed.items():
            new = armed.get(cid)
            if new is None or not new.same_as(old_armed):
                self.heap.cancel(cid)
                self._cancel(cid)
                self._late.pop(cid, None)
                self._phase.pop(cid, None)
                if new is None:
                    self.last.discard(cid)
                    self._due_at.pop(cid, None)
        fresh = [
            cid
            for cid, new in armed.items()
            if (before := self.armed.get(cid)) is None or not new.same_as(before)
        ]
        self.armed = dict(armed)
        self._unrun.intersection_update(self.armed)
        self._unrun.update(fresh)
        self._index_externals()
        self._publish_all()
        self._judge_skip = True  # applying it held the loop: not the checkers' lateness
        self._tcp_rate = sum(
            1.0 / max(a.plan.settings.delay_loop, TICK) for a in self.armed.values() if a.fast
        )
        # FILE_CHECKs on a file this configuration newly names get a result too (a reload
        # may point a kept track_file block at another file)
        fresh += self.files.set((cid, a.file) for cid, a in self.armed.items() if a.file)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven by a test's fake clock
            self._start(fresh)
        else:
            # Counted from when the loop is free again: applying a big configuration (and
            # checkd's gc.freeze after it) holds the loop for a second or more, and phases
            # counted from before would all have passed, every checker starting in one burst
            # that ``_next`` then takes tens of rounds to spread out again.
            loop.call_soon(self._start, fresh)

    def _start(self, fresh: Iterable[str]) -> None:
        """The first attempt of each new or changed checker, at its phase from now."""
        now = self.clock()
        for cid in dict.fromkeys(fresh):
            new = self.armed.get(cid)
            if new is not None and new.file is not None:
                self.files.report(cid)  # its file's value now: keepalived reads it at start
            elif new is not None:
                s = new.plan.settings
                first = self._phase[cid] = now + start_delay(cid, s.delay_loop, s.warmup)
                self._push(cid, first)
        self._wake()

    def due(self, now: float) -> list[Armed]:
        """The checkers to start now; a suspended virtual server's are passed over."""
        out: list[Armed] = []
        due_at, late = self._due_at, self._late
        for cid in self.heap.pop_due(now):
            armed = self.armed.get(cid)
            if armed is None:
                if cid in self._externals:
                    self._went_stale(cid)
                continue
            if self.suspended(armed.vs_id):
                self._push(cid, now + armed.plan.settings.delay_loop)
                continue
            lateness = late[cid] = now - due_at.get(cid, now)
            self._starts.note(lateness)
            out.append(armed)
        return out

    def finished(self, armed: Armed, result: AttemptResult, now: float) -> None:
        """One attempt's result: into the pool, actions out, next attempt scheduled."""
        cid = armed.plan.id
        current = self.armed.get(cid)
        if current is not armed and (current is None or not current.same_as(armed)):
            return  # removed or changed by a reload while it ran
        last_ok = self.last.ok_of(cid)
        self.last.set(cid, result.ok, result.reason, self.wall(), result.rc)
        state = self.pools[armed.vs_id]
        events = result.events
        if (
            len(events) == 1
            and isinstance(event := events[0], ProbeResult)
            and last_ok is not None
            and last_ok == result.ok
            and leaves_unchanged(state, armed.plan, event.success)
        ):
            # The steady state: nothing to apply, perform or publish (the reason and time
            # ride along with the next change or periodic re-send).
            self._schedule(cid, self._steady_next(cid, now, armed.plan.settings.delay_loop))
            if self._unrun:  # a checker a reload changed can be steady at once
                self._first_result(cid)
            return
        delay = self._apply(armed.vs_id, armed.plan.rs_id, cid, events)
        if delay is None:
            delay = armed.plan.settings.delay_loop
        if delay == armed.plan.settings.delay_loop:
            nxt = self._steady_next(cid, now, delay)
        else:  # a retry keeps its own time (delay_before_retry); the phase counts from it
            nxt = self._phase[cid] = self._next(cid, now, delay)
        self._schedule(cid, nxt)
        if self._unrun:
            self._first_result(cid)

    def _file_result(self, cid: str, result: CheckResult) -> None:
        """A FILE_CHECK's reading of its file: applied at once, unless it changes nothing."""
        armed = self.armed.get(cid)
        if armed is None:
            return
        self.last.set(cid, result.ok, result.reason, self.wall())
        if not verdict_unchanged(self.pools[armed.vs_id], cid, result.ok, result.weight):
            self._apply(armed.vs_id, armed.plan.rs_id, cid, probe_events(armed.plan, result))
        if self._unrun:
            self._first_result(cid)

    def _apply(self, vs_id: str, rs_id: str, cid: str, events: Iterable[Event]) -> float | None:
        """Events about one real server's checker: applied to its pool, actions performed,
        what changed published. The delay the last probe result asked for, if any."""
        before = state = self.pools[vs_id]
        delay: float | None = None
        for event in events:
            try:
                t = apply_event(state, event)
            except PoolError as exc:
                log.error("checkd.pool.error", vs=vs_id, checker=cid, error=str(exc))
                continue
            state = t.state
            self.actions.perform(t.actions)
            if t.delay is not None:
                delay = t.delay
        if state is before:
            return delay  # nothing moved (an external checker repeating itself)
        self.pools[vs_id] = state
        member = state.member(rs_id)
        if _moved(before, state, member):
            self._publish_vs(vs_id)
        else:
            self._publish_rs(vs_id, member)
        return delay

    def external(self, report: ExternalReport, now: float) -> bool:
        """A verdict from a checker outside checkd; False when no configured real server has
        its key (the caller logs that)."""
        where = self._by_key.get(report.key)
        if where is None:
            return False
        vs_id, rs_id, fresh_for = where
        cid = external_id(rs_id)
        if report.ttl is not None:
            fresh_for = report.ttl
        self._externals[cid] = (vs_id, rs_id, fresh_for)
        self._schedule(cid, now + fresh_for)
        if cid in self._stale:
            self._stale.discard(cid)
            log.info("checkd.external.fresh", vs=vs_id, rs=rs_id, ok=report.ok)
        self.last.set(cid, report.ok, report.reason, self.wall())
        mail = mail_body(EXTERNAL, report.ok)
        self._apply(vs_id, rs_id, cid, (ExternalVerdict(rs_id, report.ok, report.weight, mail),))
        return True

    def _went_stale(self, cid: str) -> None:
        """No fresh verdict came in time: the external checker fails until one does."""
        vs_id, rs_id, fresh_for = self._externals[cid]
        self._stale.add(cid)
        log.warning("checkd.external.stale", vs=vs_id, rs=rs_id, after=fresh_for)
        self.last.set(cid, False, f"stale: no verdict for {fresh_for:g} s", self.wall())
        mail = mail_body(EXTERNAL, False)
        self._apply(vs_id, rs_id, cid, (ExternalVerdict(rs_id, False, None, mail),))

    def _index_externals(self) -> None:
        """After a new configuration: which real servers external verdicts may name, and the
        external checkers of real servers it removed forgotten (a kept real server keeps its
        external checker: the pool carried it over)."""
        self._by_key = {
            rs_key(vs_id, m.rs.text): (vs_id, m.rs.id, stale_after(state.vs, m.rs))
            for vs_id, state in self.pools.items()
            for m in state.members
        }
        for cid, (vs_id, _, _) in list(self._externals.items()):
            pool = self.pools.get(vs_id)
            if pool is None or pool.position_of_checker(cid) is None:
                del self._externals[cid]
                self._stale.discard(cid)
                self.heap.cancel(cid)
                self._due_at.pop(cid, None)
                self.last.discard(cid)

    def _first_result(self, cid: str) -> None:
        self._unrun.discard(cid)
        if not self._unrun:
            # the round's end (and checkd's gc.freeze on it) is not the checkers' lateness
            self._judge_skip = True
            if self.on_first_round is not None:
                self.on_first_round()

    def _next(self, cid: str, end: float, delay: float) -> float:
        """When the next attempt is due: ``delay`` after this one ended, less how late this
        one started (up to ``CATCH_UP`` of the delay). Checkers that a stall of the loop made
        start together then return to their own phases instead of staying bunched (and
        growing the bunch each round); an attempt that started on time is not affected."""
        return end + delay - min(self._late.pop(cid, 0.0), CATCH_UP * delay)

    def _steady_next(self, cid: str, end: float, delay: float) -> float:
        """The next attempt of a checker not retrying: at its phase (a whole
        number of ``delay`` after its phase's due time) when that is at most ``CATCH_UP`` of
        the delay before keepalived's "``delay`` after the end", else that much before it.

        A checker whose attempts end within a tenth of the delay of their due time therefore
        runs exactly every ``delay`` and never slides; one that a stall of the loop (or of
        the machine) made start late comes back to its phase a tenth of the delay per round.
        (``_next`` alone forgets what is left of a lateness after one round: every stall
        longer than a tenth left the checkers it delayed bunched for good.)"""
        self._late.pop(cid, None)
        latest = end + delay
        earliest = latest - CATCH_UP * delay
        phase = self._phase.get(cid)
        if phase is None or delay <= 0:
            return latest
        point = phase + math.floor((latest - phase) / delay) * delay
        if point >= earliest:
            self._phase[cid] = point  # keeps the numbers small; the same phase
            return point
        return earliest

    def _push(self, cid: str, when: float) -> None:
        self._due_at[cid] = when
        self.heap.push(cid, when)

    def set_held(self, addresses: Iterable[str]) -> None:
        """The addresses this host has now, for ``ha_suspend``."""
        before = {vs_id: self.suspended(vs_id) for vs_id in self.pools}
        self.held = frozenset(addresses)
        for vs_id, was in before.items():
            now_suspended = self.suspended(vs_id)
            if now_suspended != was:
                event = "checkd.vs.suspended" if now_suspended else "checkd.vs.resumed"
                log.info(event, vs=vs_id)
                self._publish_vs(vs_id)

    def suspended(self, vs_id: str) -> bool:
        pool = self.pools.get(vs_id)
        if pool is None or not pool.vs.ha_suspend:
            return False
        return not any(_addresses(pool.vs) & self.held)

    def stop_pools(self) -> None:
        """checkd stops: every pool's shutdown (notifications only with ``omega``)."""
        for vs_id in list(self.pools):
            self._perform(shutdown(self.pools.pop(vs_id)))

    # --- publishing -------------------------------------------------------------------------

    def _publish_all(self) -> None:
        valid: set[str] = set()
        for vs_id in self.pools:
            valid |= self._publish_vs(vs_id)
        for topic in [t for t in self._published if t not in valid]:
            del self._published[topic]
            self.publisher.forget(topic)

    def _publish_vs(self, vs_id: str) -> set[str]:
        state = self.pools[vs_id]
        suspended = self.suspended(vs_id)
        topics = {pool_topic(vs_id)}
        self._put(pool_topic(vs_id), pool_body(state, suspended=suspended))
        verdict = quorum_verdict(state)
        health = f"health.{verdict['name']}"
        topics.add(health)
        self._put(health, verdict)
        for member in state.members:
            topics.add(self._publish_rs(vs_id, member, suspended))
        return topics

    def _publish_rs(self, vs_id: str, member: Member, suspended: bool | None = None) -> str:
        state = self.pools[vs_id]
        if suspended is None:
            suspended = self.suspended(vs_id)
        topic = rs_topic(vs_id, member.rs.text)
        body = rs_body(state, member, self.last, suspended=suspended)
        self._put(
            topic,
            body,
            change=rs_change_key(body),
            refresh=self._rs_refresher(vs_id, member.rs.id, body),
        )
        return topic

    def _rs_refresher(
        self, vs_id: str, rs_id: str, fallback: dict[str, Any]
    ) -> Callable[[], Mapping[str, Any]]:
        def refresh() -> Mapping[str, Any]:
            state = self.pools.get(vs_id)
            if state is None:
                return fallback
            try:
                member = state.member(rs_id)
            except KeyError:
                return fallback
            return rs_body(state, member, self.last, suspended=self.suspended(vs_id))

        return refresh

    def _put(
        self,
        topic: str,
        body: dict[str, Any],
        *,
        change: Any = None,
        refresh: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        key = body if change is None else change
        if self._published.get(topic) == key:
            return
        self._published[topic] = key
        # A quorum verdict is tracked like any other: re-sent on a timer as proof of life.
        self.publisher.retain(topic, body, refresh=refresh, repeat=topic.startswith("health."))

    def _perform(self, t: Transition) -> None:
        self.actions.perform(t.actions)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Start due attempts until cancelled.

        No coroutine loops here: one loop timer (``_tick``) starts what is due and sets itself
        for the next due time, never sooner than ``TICK`` after the last, so checkers due
        within a millisecond start together instead of costing a wake-up each. TCP_CHECKs run
        on the shared connector (``checkd.checkers.tcp_connects``), or in the connect helper
        once the schedule slips (``checkd.helper_policy``), HTTP_GETs and SSL_GETs on
        the shared fetcher (``checkd.checkers.http_fetches``), every other checker in an
        asyncio Task of its own."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        connects = self._connects = TcpConnects(loop, self._connected)
        fetches = self._fetches = HttpFetches(loop, self._fetched)
        self.files.start(loop)
        self._judge_schedule()
        self._last_tick = -TICK
        self._tick()
        try:
            await loop.create_future()  # until cancelled
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._judge is not None:
                self._judge.cancel()
                self._judge = None
            if self._helper is not None:
                self._helper.close()
                self._helper = None
            connects.close()
            fetches.close()
            self.files.close()
            self._connects = self._fetches = None
            self._loop = None

    def _tick(self) -> None:
        self._timer = None
        now = self.clock()
        self._last_tick = now
        for armed in self.due(now):
            try:
                self._launch(armed)
            except Exception as exc:  # one checker's bug must not stop the schedule
                log.error("checkd.checker.crashed", checker=armed.plan.id, exc_info=exc)
                self.finished(armed, AttemptResult(False, f"checker crashed: {exc!r}", ()), now)
        self._set_timer(now)

    def _set_timer(self, now: float) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        next_at = self.heap.next_at()
        if next_at is None:
            return
        delay = max(next_at, self._last_tick + TICK) - now
        self._timer = self._loop.call_later(delay, self._tick)
        self._timer_at = now + delay

    def _schedule(self, cid: str, when: float) -> None:
        """``cid`` due at ``when``; the loop timer moves earlier if it must."""
        self._push(cid, when)
        if self._loop is not None and (self._timer is None or when < self._timer_at):
            self._wake()

    def _wake(self) -> None:
        """The heap changed: set the loop timer again (no-op outside ``run``)."""
        self._set_timer(self.clock())

    @property
    def helper_pid(self) -> int | None:
        """The connect helper's process id, while there is one."""
        return None if self._helper is None else self._helper.pid

    def _judge_schedule(self) -> None:
        """At the end of each window: fork the connect helper if the schedule slipped with
        enough TCP_CHECKs to move (``checkd.helper_policy``). Once forked it stays until
        checkd stops: a reload that lowers the load leaves it idle, not gone."""
        loop = self._loop
        if loop is None:
            return
        policy = self._helper_policy
        starts, self._starts = self._starts, LateStarts(policy.late)
        skip, self._judge_skip = self._judge_skip, False
        cpus = os.sched_getaffinity(0)
        now, idle = loop.time(), idle_seconds(cpus)
        (since, idle_then), self._idle_at = self._idle_at, (now, idle)
        if not (skip or self._unrun) and len(cpus) > 1:
            rate = self._tcp_rate
            spare = (idle - idle_then) / max(now - since, TICK)
            if starts.calls_for_helper(policy, rate, spare):
                log.info(
                    "checkd.connector.wanted",
                    checks_per_s=round(rate),
                    late=starts.late,
                    started=starts.started,
                    late_after=policy.late,
                    idle_cpus=round(spare, 2),
                )
                self._judge = None
                self._helper = ConnectHelper(loop, self._connected, self._connects_lost)
                return
        self._judge = loop.call_later(policy.window, self._judge_schedule)

    def _connects_lost(self, attempts: list[tuple[ConnectOptions, Armed]]) -> None:
        """The helper died with these under way: they run here, late rather than failed."""
        if self._connects is not None:
            for opts, armed in attempts:
                self._connects.start(opts, armed)

    def _launch(self, armed: Armed) -> None:
        if armed.fast is not None and self._connects is not None:
            helper = self._helper
            if helper is not None and helper.ready:
                helper.start(armed.fast.opts, armed)
            else:
                self._connects.start(armed.fast.opts, armed)
            return
        if armed.http is not None and self._fetches is not None:
            check = armed.http.check
            url = self.url_index(armed) if len(check.urls) > 1 else 0  # most have one
            self._fetches.start(check, armed, armed.http.bound, url)
            return
        cid = armed.plan.id
        task = asyncio.create_task(self._attempt(armed), name=f"checkd.attempt {cid}")
        self._inflight[cid] = task

    def url_index(self, armed: Armed) -> int:
        """The url an HTTP_GET's or SSL_GET's next attempt fetches: one url per attempt, the
        pool keeps the checker's place in its list (``checkd.url_walk``)."""
        pool = self.pools.get(armed.vs_id)
        return 0 if pool is None else url_index(pool, armed.plan.id)

    def _connected(self, armed: Armed, ok: bool, reason: str) -> None:
        assert armed.fast is not None  # only fast attempts go to the connector
        self.finished(armed, armed.fast.result(ok, reason), self.clock())

    def _fetched(self, armed: Armed, result: CheckResult) -> None:
        assert armed.http is not None  # only HTTP_GET / SSL_GET attempts go to the fetcher
        self.finished(armed, armed.http.result(result), self.clock())

    async def _attempt(self, armed: Armed) -> None:
        cid = armed.plan.id
        try:
            result = await armed.attempt()
        except Exception as exc:  # a bug in one probe must not stop the others
            log.error("checkd.checker.crashed", checker=cid, exc_info=exc)
            result = AttemptResult(False, f"checker crashed: {exc!r}", ())
        finally:
            if self._inflight.get(cid) is asyncio.current_task():
                del self._inflight[cid]
        self.finished(armed, result, self.clock())

    def _cancel(self, cid: str) -> None:
        # A TCP_CHECK, HTTP_GET or SSL_GET on the shared epolls is not cancelled: ``finished`` drops
        # its result.
        task = self._inflight.pop(cid, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        """Cancel every attempt under way (their scripts are killed) and wait for them."""
        tasks = list(self._inflight.values())
        self._inflight.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _moved(before: PoolState, after: PoolState, member: Member) -> bool:
    """Whether a result for ``member`` changed more than the member's own checkers: only its
    verdict or weight can move the quorum, the sorry server and so the other members."""
    old = before.member(member.rs.id)
    return (
        (before.quorum_up, before.sorry_active) != (after.quorum_up, after.sorry_active)
        or old.alive != member.alive
        or old.effective_weight != member.effective_weight
    )


def _addresses(vs: VirtualServerPlan) -> set[str]:
    return {addr for member in vs.members for addr in member.addresses()}
