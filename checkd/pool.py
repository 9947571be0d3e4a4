"""A virtual server's pool of real servers, as keepalived's check daemon keeps it.

Pure: functions take a frozen ``PoolState`` and an event and return the new state with the
actions keepalived would take (scripts to run, notify FIFO lines, smtp_alert mails, log
events) as data; the daemon performs them. The rules (docs/checkers.md, "Pools, quorum and
sorry servers"):

* a real server is alive only while none of its checkers is failed, an external checker
  (``ExternalVerdict``, added at its first verdict) included;
* its effective weight is the configured weight plus what its MISC_CHECK (``misc_dynamic``) and
  FILE_CHECK checkers add; the kernel sees it clamped to 0..2^31-1;
* a dead real server leaves the pool, or stays with weight 0 under ``inhibit_on_failure``;
* the quorum is the summed effective weight of the alive real servers: it is gained at
  ``quorum + hysteresis`` and lost below ``quorum - hysteresis`` (or at 0);
* while the quorum is lost a ``sorry_server`` replaces the alive real servers (with
  ``sorry_server_inhibit`` it stays in the pool at weight 0 the rest of the time);
* real server transitions run ``notify_up``/``notify_down`` and write ``RS <rs> <vs> UP|DOWN``,
  quorum transitions run ``quorum_up``/``quorum_down`` and write ``VS <vs> UP|DOWN``;
* at shutdown those down notifications are only made with ``omega``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from checkd.checker_state import PER_ROUND, Outcome, RetryState, record
from checkd.checker_state import migrate as checker_migrate
from checkd.checkplan import CheckerPlan, RealServerPlan, VirtualServerPlan
from checkd.errors import PoolError
from checkd.pool_messages import (
    Action,
    CheckerVerdict,
    CheckerWeight,
    Event,
    ExternalVerdict,
    FifoLine,
    LogEvent,
    Mail,
    ProbeResult,
    RunScript,
    ScriptRole,
    external_id,
)
from checkd.pool_state import CheckerStatus, Member, PoolState, effective_weight, real_weight
from checkd.url_walk import record_url

# Checkers that count one url per attempt (checkd.url_walk) instead of one probe.
URL_WALKERS = frozenset(("HTTP_GET", "SSL_GET"))


@dataclass(frozen=True, slots=True)
class Transition:
    state: PoolState
    actions: tuple[Action, ...]
    delay: float | None = None  # for a ProbeResult: seconds until that checker's next probe


# --- the working copy ------------------------------------------------------------------------


class _Work:
    """A mutable copy of a PoolState that collects actions; never escapes this module."""

    def __init__(self, state: PoolState) -> None:
        self.vs = state.vs
        self.router_id = state.router_id
        self.no_checker_emails = state.no_checker_emails
        self.quorum_up = state.quorum_up
        self.sorry_active = state.sorry_active
        self.rs: dict[str, RealServerPlan] = {m.rs.id: m.rs for m in state.members}
        self.alive: dict[str, bool] = {m.rs.id: m.alive for m in state.members}
        self.checkers: dict[str, dict[str, CheckerStatus]] = {
            m.rs.id: dict(m.checkers) for m in state.members
        }
        self.actions: list[Action] = []

    def freeze(self) -> PoolState:
        return PoolState(
            vs=self.vs,
            members=tuple(
                Member(rs, self.alive[rs_id], MappingProxyType(dict(self.checkers[rs_id])))
                for rs_id, rs in self.rs.items()
            ),
            quorum_up=self.quorum_up,
            sorry_active=self.sorry_active,
            router_id=self.router_id,
            no_checker_emails=self.no_checker_emails,
        )

    # -- sums --

    def effective_weight(self, rs_id: str) -> int:
        return effective_weight(self.rs[rs_id].weight, self.checkers[rs_id])

    def failed(self, rs_id: str) -> int:
        return sum(1 for c in self.checkers[rs_id].values() if not c.retry.is_up)

    def live_weight(self) -> int:
        return sum(real_weight(self.effective_weight(r)) for r in self.rs if self.alive[r])

    def in_pool(self, rs_id: str) -> bool:
        """keepalived's ``rs->set``: the real server has an entry in the kernel's table."""
        return self.rs[rs_id].inhibit or (self.alive[rs_id] and not self.sorry_active)

    def rs_of(self, checker_id: str) -> str:
        for rs_id, checkers in self.checkers.items():
            if checker_id in checkers:
                return rs_id
        raise PoolError(f"virtual server {self.vs.id} has no checker {checker_id!r}")

    # -- actions --

    def log(self, event: str, message: str, **fields: Any) -> None:
        self.actions.append(_log_event(event, message, **fields))

    def rs_notifies(self, rs_id: str, *, stopping: bool = False) -> None:
        rs, alive = self.rs[rs_id], self.alive[rs_id]
        script = rs.notify_up if alive else rs.notify_down
        if script is not None:
            role: ScriptRole = "notify_up" if alive else "notify_down"
            self.actions.append(RunScript(script, role, rs_id, stopping))
        state = "UP" if alive else "DOWN"
        self.actions.append(FifoLine(f"RS {rs.text} {self.vs.id} {state}\n"))

    def vs_notifies(self, init: bool, threshold: int, weight_sum: int, stopping: bool) -> None:
        if stopping and not self.vs.omega:
            return
        up = self.quorum_up
        script = self.vs.quorum_up if up else self.vs.quorum_down
        if script is not None:
            role: ScriptRole = "quorum_up" if up else "quorum_down"
            self.actions.append(RunScript(script, role, self.vs.id, stopping))
        self.actions.append(FifoLine(f"VS {self.vs.id} {'UP' if up else 'DOWN'}\n"))
        if not self.vs.smtp_alert:
            return
        if stopping:
            body = "=> Shutting down <="
        else:
            what = (
                ("Starting with quorum up" if init else "Gained quorum")
                if up
                else ("Starting with quorum down" if init else "Lost quorum")
            )
            q, h = self.vs.quorum, self.vs.hysteresis
            body = f"=> {what} {q}+{h}={threshold} <= {weight_sum} <="
        subject = f"[{self.router_id}] Virtualserver {self.vs.id} - {'UP' if up else 'DOWN'}"
        self.actions.append(Mail(subject, body, f"VS {self.vs.id}"))

    def rs_mail(self, rs_id: str, body: str, state: str | None = None) -> None:
        rs = self.rs[rs_id]
        if state is None:
            state = "UP" if self.alive[rs_id] else "DOWN"
        subject = (
            f"[{self.router_id}] Realserver {rs.text} of virtual server {self.vs.id} - {state}"
        )
        self.actions.append(Mail(subject, body, f"RS {rs_id}"))

    # -- keepalived's ipwrapper, step by step --

    def update_quorum_state(self, init: bool) -> None:
        weight_sum = self.live_weight()
        q, h = self.vs.quorum, self.vs.hysteresis
        threshold = q - h if self.quorum_up else q + h
        ss = self.vs.sorry_server
        if not self.quorum_up and weight_sum >= threshold:
            self.quorum_up = True
            self.log(
                "checkd.vs.quorum_up",
                f"Gained quorum {q}+{h}={threshold} <= {weight_sum} for VS {self.vs.id}",
                vs=self.vs.id,
                threshold=threshold,
                weight=weight_sum,
            )
            if ss is not None and self.sorry_active:
                verb = "Disabling" if ss.inhibit else "Removing"
                self.log(
                    "checkd.vs.sorry_off",
                    f"{verb} sorry server {ss.text} from VS {self.vs.id}",
                    vs=self.vs.id,
                    sorry_server=ss.text,
                )
                self.sorry_active = False
                self.log_pool(add=True)
            self.vs_notifies(init, threshold, weight_sum, stopping=False)
        elif (self.quorum_up and (not weight_sum or weight_sum < threshold)) or (
            init and not self.quorum_up and ss is not None and not self.sorry_active
        ):
            self.quorum_up = False
            what = "Starting with quorum down" if init else "Lost quorum"
            self.log(
                "checkd.vs.quorum_down",
                f"{what} {q}-{h}={threshold} > {weight_sum} for VS {self.vs.id}",
                vs=self.vs.id,
                threshold=threshold,
                weight=weight_sum,
            )
            if ss is not None and not self.sorry_active:
                verb = "Enabling" if ss.inhibit else "Adding"
                self.log(
                    "checkd.vs.sorry_on",
                    f"{verb} sorry server {ss.text} to VS {self.vs.id}",
                    vs=self.vs.id,
                    sorry_server=ss.text,
                )
                self.log_pool(add=False)
                self.sorry_active = True
            self.vs_notifies(init, threshold, weight_sum, stopping=False)

    def log_pool(self, *, add: bool) -> None:
        verb = "Adding alive servers to" if add else "Removing alive servers from"
        self.log(
            "checkd.vs.pool_" + ("restored" if add else "replaced"),
            f"{verb} the pool for VS {self.vs.id}",
            vs=self.vs.id,
        )

    def perform_svr_state(self, rs_id: str, alive: bool) -> None:
        if self.alive[rs_id] == alive:
            return
        rs = self.rs[rs_id]
        if alive:
            verb, prep = ("Enabl", "of") if rs.inhibit else ("Add", "to")
        else:
            verb, prep = ("Disabl", "of") if rs.inhibit else ("Remov", "from")
        self.log(
            "checkd.rs.up" if alive else "checkd.rs.down",
            f"{verb}ing service {rs.text} {prep} VS {self.vs.id}",
            vs=self.vs.id,
            rs=rs.text,
            inhibit=rs.inhibit,
        )
        self.alive[rs_id] = alive
        self.rs_notifies(rs_id)
        self.update_quorum_state(init=False)

    def checker_verdict(self, checker_id: str, up: bool, mail: str | None) -> None:
        """keepalived's update_svr_checker_state, plus the checker's smtp_alert."""
        rs_id = self.rs_of(checker_id)
        status = self.checkers[rs_id][checker_id]
        was_up, rs_was_alive = status.retry.is_up, self.alive[rs_id]
        if was_up == up:
            if not status.retry.has_run:
                if self._alpha(rs_id, checker_id) or not up:
                    self.rs_notifies(rs_id)
                self._set(rs_id, checker_id, replace(status.retry, has_run=True))
            return
        failed = self.failed(rs_id)
        if up and failed <= 1:
            self.perform_svr_state(rs_id, True)
        elif not up and failed == 0:
            self.perform_svr_state(rs_id, False)
        self._set(rs_id, checker_id, replace(status.retry, is_up=up, has_run=True))
        notify = rs_was_alive != self.alive[rs_id] or not self.no_checker_emails
        if mail is not None and self.rs[rs_id].smtp_alert and notify:
            self.rs_mail(rs_id, mail)

    def external_verdict(self, event: ExternalVerdict) -> None:
        """A verdict from outside checkd: final as it comes (the checker outside made its own
        retries), on the real server's external checker, which its first verdict adds."""
        rs_id = event.rs_id
        if rs_id not in self.rs:
            raise PoolError(f"virtual server {self.vs.id} has no real server {rs_id!r}")
        cid = external_id(rs_id)
        # It starts as a configured checker without alpha does: up, not yet run, so a first
        # "ok" changes nothing and says nothing, and a first failure is DOWN at once.
        self.checkers[rs_id].setdefault(cid, CheckerStatus(RetryState(True, False, 0)))
        if event.up:
            # the weight before the verdict, as keepalived's MISC_CHECK sets misc_dynamic's
            weight = event.weight
            self.checker_weight(cid, weight or 0, absolute=weight is not None)
        self.checker_verdict(cid, event.up, event.mail)

    def checker_weight(self, checker_id: str, weight: int, absolute: bool) -> None:
        """keepalived's update_svr_wgt for a checker's new weight contribution."""
        rs_id = self.rs_of(checker_id)
        old = real_weight(self.effective_weight(rs_id))
        status = self.checkers[rs_id][checker_id]
        self.checkers[rs_id][checker_id] = (
            replace(status, weight=0, absolute=weight)
            if absolute
            else replace(status, weight=weight, absolute=None)
        )
        if self.log_weight_change(rs_id, old):
            self.update_quorum_state(init=False)

    def log_weight_change(self, rs_id: str, old: int) -> bool:
        """Log a change of the weight the kernel sees; False when there is none."""
        new = real_weight(self.effective_weight(rs_id))
        if new == old:
            return False
        rs = self.rs[rs_id]
        state = "" if self.alive[rs_id] else "in"
        self.log(
            "checkd.rs.weight",
            f"Changing weight from {old} to {new} for {state}active service {rs.text}"
            f" of VS {self.vs.id}",
            vs=self.vs.id,
            rs=rs.text,
            old=old,
            new=new,
        )
        return True

    def clear_rs(self, rs_id: str, *, stopping: bool, was_set: bool) -> None:
        """keepalived's clear_service_rs: a real server leaves (shutdown or reload)."""
        rs = self.rs[rs_id]
        if was_set or stopping:
            inhibited = "(inhibited) " if rs.inhibit and not self.alive[rs_id] else ""
            verb = "Shutting down" if stopping else "Removing"
            self.log(
                "checkd.rs.removed",
                f"{verb} {inhibited}service {rs.text} from VS {self.vs.id}",
                vs=self.vs.id,
                rs=rs.text,
                stopping=stopping,
            )
        if not was_set or not self.alive[rs_id]:
            return
        self.alive[rs_id] = False
        if stopping and not self.vs.omega:
            return
        self.rs_notifies(rs_id, stopping=stopping)
        if rs.smtp_alert:
            body = "=> Shutting down <=" if stopping else "=> Removing <="
            self.rs_mail(rs_id, body, "DOWN")

    def vs_down_notifies(self, stopping: bool) -> None:
        """keepalived's update_vs_notifies: the quorum after real servers were removed."""
        threshold = self.vs.quorum - self.vs.hysteresis
        weight_sum = self.live_weight()
        if stopping or (self.quorum_up and (not weight_sum or weight_sum < threshold)):
            self.quorum_up = False
            self.vs_notifies(False, threshold, weight_sum, stopping)

    def _alpha(self, rs_id: str, checker_id: str) -> bool:
        # an external checker is not in the plan and has no alpha
        plans = self.rs[rs_id].checkers
        return next((c.settings.alpha for c in plans if c.id == checker_id), False)

    def _set(self, rs_id: str, checker_id: str, retry: RetryState) -> None:
        self.checkers[rs_id][checker_id] = replace(self.checkers[rs_id][checker_id], retry=retry)


# --- entry points ----------------------------------------------------------------------------


def _fresh_checkers(rs: RealServerPlan) -> dict[str, CheckerStatus]:
    return {
        c.id: CheckerStatus(
            RetryState.start(
                c.settings.retry, alpha=c.settings.alpha, per_round=c.kind in PER_ROUND
            )
        )
        for c in rs.checkers
    }


def start_pool(
    vs: VirtualServerPlan, *, router_id: str, no_checker_emails: bool = False
) -> Transition:
    """The pool when checkd starts: real servers without a failed (alpha) checker are alive."""
    empty = PoolState(
        vs,
        (),
        quorum_up=False,
        sorry_active=False,
        router_id=router_id,
        no_checker_emails=no_checker_emails,
    )
    work = _Work(empty)
    for rs in vs.real_servers:
        work.rs[rs.id] = rs
        work.checkers[rs.id] = _fresh_checkers(rs)
        # keepalived starts every real server without a failed checker in the pool, silently.
        work.alive[rs.id] = work.failed(rs.id) == 0
    # The quorum is taken as it stood before any server was added (keepalived computes it
    # while parsing), so a pool that starts with enough weight reports "quorum up" once.
    work.quorum_up = vs.hysteresis + vs.quorum <= 0
    work.update_quorum_state(init=True)
    return Transition(work.freeze(), tuple(work.actions))


def apply_event(state: PoolState, event: Event) -> Transition:
    """One event on the pool."""
    if isinstance(event, ProbeResult):
        quick = _probe_without_verdict(state, event)
        if quick is not None:
            return quick
    elif isinstance(event, ExternalVerdict) and _external_unchanged(state, event):
        return Transition(state, ())
    return _apply_on_copy(state, event)


def _external_unchanged(state: PoolState, event: ExternalVerdict) -> bool:
    """Whether an external verdict repeats what its checker already says (verdict and
    weight): external checkers re-send every round, and most rounds change nothing."""
    cid = external_id(event.rs_id)
    pos = state.position_of_checker(cid)
    if pos is None:
        return False
    status = state.members[pos].checkers[cid]
    if not status.retry.has_run or status.retry.is_up != event.up:
        return False
    return not event.up or (status.weight, status.absolute) == (0, event.weight)


def leaves_unchanged(state: PoolState, plan: CheckerPlan, success: bool) -> bool:
    """Whether a probe result changes nothing at all: ``apply_event`` would return an equal
    state, no action and ``delay_loop``. The steady state of every checker (a passing probe
    of an up checker with no retry under way, a failing one of a down checker), told apart
    without building anything, so thousands of them a second cost a few dict lookups.

    An HTTP_GET or SSL_GET with several urls moves to its next url on every success, and a
    down one waits max(``delay_before_retry``, ``delay_loop``) after a failure
    (``checkd.url_walk``): only the cases that stay put and keep ``delay_loop`` qualify."""
    pos = state.position_of_checker(plan.id)
    if pos is None:
        return False
    retry = state.members[pos].checkers[plan.id].retry
    if not retry.has_run:
        return False
    if plan.kind in URL_WALKERS:
        if success:
            return (
                retry.is_up
                and retry.retry_it == 0
                and retry.failed_url is None
                and len(plan.checker.urls) <= 1
            )
        return (
            not retry.is_up
            and retry.failed_url is not None
            and plan.settings.delay_before_retry <= plan.settings.delay_loop
        )
    if success:
        return retry.is_up and retry.retry_it == 0
    if retry.is_up:
        return False
    # a down SMTP_CHECK still retries in every round (checkd.checker_state)
    return plan.kind not in PER_ROUND or plan.settings.retry == 0


def verdict_unchanged(state: PoolState, checker_id: str, up: bool, weight: int | None) -> bool:
    """Whether a checker's own verdict and weight (FILE_CHECK's ``CheckerVerdict`` and
    ``CheckerWeight``) are what the pool already has: applying them would change nothing, so
    a file re-read to the same value costs no pool copy."""
    pos = state.position_of_checker(checker_id)
    if pos is None:
        return False
    status = state.members[pos].checkers[checker_id]
    if not status.retry.has_run or status.retry.is_up != up:
        return False
    return weight is None or (status.absolute is None and status.weight == weight)


def _count_probe(plan: CheckerPlan, retry: RetryState, success: bool) -> Outcome:
    """One probe result counted for ``plan``'s kind of checker."""
    s = plan.settings
    if plan.kind in URL_WALKERS:
        return record_url(
            retry,
            success,
            urls=len(plan.checker.urls),
            retry=s.retry,
            delay_loop=s.delay_loop,
            delay_before_retry=s.delay_before_retry,
            fast_recovery=bool(plan.checker.fast_recovery),
        )
    return record(
        retry,
        success,
        retry=s.retry,
        delay_loop=s.delay_loop,
        delay_before_retry=s.delay_before_retry,
        per_round=plan.kind in PER_ROUND,
    )


def url_index(state: PoolState, checker_id: str) -> int:
    """The url an HTTP_GET's or SSL_GET's next attempt fetches (an index into its urls)."""
    pos = state.position_of_checker(checker_id)
    if pos is None:
        return 0
    return state.members[pos].checkers[checker_id].retry.url


def _probe_without_verdict(state: PoolState, event: ProbeResult) -> Transition | None:
    """The steady state, a probe that changes no checker's verdict, without copying the pool.

    Only that checker's retry count (or, on its first success, its has-run flag) moves, so
    only its member is rebuilt and the rest of the pool (and its index) is shared with the old
    state; None when the probe changes a verdict (or names an unknown checker) and the whole
    pool must be worked on."""
    pos = state.position_of_checker(event.checker_id)
    if pos is None:
        return None
    member = state.members[pos]
    plan = next(c for c in member.rs.checkers if c.id == event.checker_id)
    status = member.checkers[event.checker_id]
    outcome = _count_probe(plan, status.retry, event.success)
    if outcome.verdict is not None and not (outcome.step == "first-up" and not plan.settings.alpha):
        # (a first success of a checker that started up changes nothing but the checker:
        # keepalived's update_svr_checker_state only notifies there for ``alpha`` ones)
        return None
    checkers = dict(member.checkers)
    checkers[event.checker_id] = replace(
        status, retry=replace(outcome.state, is_up=status.retry.is_up)
    )
    members = (
        *state.members[:pos],
        Member(member.rs, member.alive, MappingProxyType(checkers)),
        *state.members[pos + 1 :],
    )
    log = _probe_log(plan, member.rs.text, outcome.step, outcome.retries)
    actions = () if log is None else (log,)
    return Transition(replace(state, members=members), actions, outcome.delay)


def _apply_on_copy(state: PoolState, event: Event) -> Transition:
    work = _Work(state)
    delay = None
    if isinstance(event, ProbeResult):
        rs_id = work.rs_of(event.checker_id)
        plan = next(c for c in work.rs[rs_id].checkers if c.id == event.checker_id)
        outcome = _count_probe(plan, work.checkers[rs_id][event.checker_id].retry, event.success)
        delay = outcome.delay
        log = _probe_log(plan, work.rs[rs_id].text, outcome.step, outcome.retries)
        if log is not None:
            work.actions.append(log)
        if outcome.verdict is not None:
            work.checker_verdict(event.checker_id, outcome.verdict, event.mail)
        status = work.checkers[rs_id][event.checker_id]
        work.checkers[rs_id][event.checker_id] = replace(
            status, retry=replace(outcome.state, is_up=status.retry.is_up)
        )
    elif isinstance(event, CheckerVerdict):
        work.checker_verdict(event.checker_id, event.up, event.mail)
    elif isinstance(event, CheckerWeight):
        work.checker_weight(event.checker_id, event.weight, event.absolute)
    elif isinstance(event, ExternalVerdict):
        work.external_verdict(event)
    else:
        return shutdown(state)
    return Transition(work.freeze(), tuple(work.actions), delay)


def _probe_log(plan: CheckerPlan, rs_text: str, step: str, retries: int) -> LogEvent | None:
    kind = plan.kind
    if step == "retry" and plan.log_all_failures:
        message = f"{kind} on service {rs_text} failed, will retry."
        return _log_event("checkd.checker.retry", message, rs=rs_text, kind=kind)
    if step in ("up", "first-up"):
        message = f"{kind} on service {rs_text} success."
        return _log_event("checkd.checker.up", message, rs=rs_text, kind=kind)
    if step == "down":
        after = f" after {retries} retries" if retries else ""
        message = f"{kind} on service {rs_text} failed{after}."
        return _log_event("checkd.checker.down", message, rs=rs_text, kind=kind, retries=retries)
    return None


def _log_event(event: str, message: str, **fields: Any) -> LogEvent:
    return LogEvent(event, message, MappingProxyType(fields))


def shutdown(state: PoolState) -> Transition:
    """checkd stops: every real server leaves; notifications only with ``omega``."""
    work = _Work(state)
    was_set = {rs_id: work.in_pool(rs_id) for rs_id in work.rs}
    work.sorry_active = False
    for rs_id in list(work.rs):
        work.clear_rs(rs_id, stopping=True, was_set=was_set[rs_id])
    work.vs_down_notifies(stopping=True)
    return Transition(work.freeze(), tuple(work.actions))


def remove_pool(state: PoolState) -> Transition:
    """The virtual server is gone from the configuration (reload): its servers leave."""
    work = _Work(state)
    work.log(
        "checkd.vs.removed",
        f"Removing Virtual Server {state.vs.id}",
        vs=state.vs.id,
    )
    was_set = {rs_id: work.in_pool(rs_id) for rs_id in work.rs}
    work.sorry_active = False
    for rs_id in list(work.rs):
        work.clear_rs(rs_id, stopping=False, was_set=was_set[rs_id])
    work.vs_down_notifies(stopping=False)
    return Transition(work.freeze(), tuple(work.actions))


# --- reload ----------------------------------------------------------------------------------


def reload_pool(
    old: PoolState, new: VirtualServerPlan, *, router_id: str | None = None
) -> Transition:
    """The pool after a reload changed the virtual server's configuration to ``new``.

    Real servers kept by the reload (same address) keep their alive state, their place in the
    pool and the state of every checker whose probe is unchanged (only timing options such as
    retry or delay_loop may differ), and the verdict of their external checker. Removed real
    servers leave with their down notifications;
    new ones start as at start-up: alive at once unless a checker has ``alpha``.
    """
    work = _Work(old)
    new_ids = {rs.id for rs in new.real_servers}
    was_set = {rs_id: work.in_pool(rs_id) for rs_id in work.rs}
    for rs_id, rs in list(work.rs.items()):
        if rs_id not in new_ids:
            work.log(
                "checkd.rs.gone", f"service {rs.text} no longer exist", vs=old.vs.id, rs=rs.text
            )
            work.clear_rs(rs_id, stopping=False, was_set=was_set[rs_id])
    kept = {rs_id: work.checkers[rs_id] for rs_id in work.rs if rs_id in new_ids}
    kept_alive = {rs_id: work.alive[rs_id] for rs_id in kept}
    old_plans = {rs.id: rs for rs in old.vs.real_servers}
    work.vs = new
    work.router_id = router_id or old.router_id
    work.rs, work.alive, work.checkers = {}, {}, {}
    for rs in new.real_servers:
        work.rs[rs.id] = rs
        work.alive[rs.id] = kept_alive.get(rs.id, False)
        work.checkers[rs.id] = (
            _migrate_checkers(old_plans[rs.id], kept[rs.id], rs, kept_alive[rs.id])
            if rs.id in kept
            else _fresh_checkers(rs)
        )
    for rs_id, old_checkers in kept.items():
        before = real_weight(effective_weight(old_plans[rs_id].weight, old_checkers))
        work.log_weight_change(rs_id, before)
        if work.failed(rs_id) == 0 and not work.alive[rs_id]:
            work.perform_svr_state(rs_id, True)
    work.vs_down_notifies(stopping=False)
    _reload_sorry(work, old)
    for rs in new.real_servers:
        if rs.id not in kept:
            work.alive[rs.id] = work.failed(rs.id) == 0
    work.update_quorum_state(init=True)
    return Transition(work.freeze(), tuple(work.actions))


def _migrate_checkers(
    old_rs: RealServerPlan,
    old: Mapping[str, CheckerStatus],
    new_rs: RealServerPlan,
    alive: bool,
) -> dict[str, CheckerStatus]:
    old_plans = {c.id: c for c in old_rs.checkers}
    result: dict[str, CheckerStatus] = {}
    for c in new_rs.checkers:
        before = old_plans.get(c.id)
        if before is None or before.identity != c.identity or c.id not in old:
            # keepalived: a checker new to a kept real server starts up, with no retry spent.
            result[c.id] = CheckerStatus(RetryState(is_up=True, has_run=False, retry_it=0))
            continue
        status = old[c.id]
        if status.retry.has_run:
            retry = checker_migrate(status.retry, retry=c.settings.retry)
        else:
            # keepalived forgets that an alpha checker which has not run yet is down, and a
            # reload then puts its server in the pool untested; it stays down here.
            is_up = status.retry.is_up or not c.settings.alpha
            retry = RetryState(is_up, False, min(status.retry.retry_it, c.settings.retry))
        result[c.id] = CheckerStatus(retry, status.weight, status.absolute)
    external = old.get(external_id(new_rs.id))
    if external is not None:
        # The configuration does not describe it: its verdict stands until the next one.
        result[external_id(new_rs.id)] = external
    failed = any(not s.retry.is_up for s in result.values())
    if failed or (not alive and not any(s.retry.has_run for s in result.values())):
        # Checkers that have not run yet: alpha ones count as failed, and one failure is enough.
        alpha = {c.id: c.settings.alpha for c in new_rs.checkers}
        for cid, s in result.items():
            if not s.retry.has_run:
                is_up = s.retry.is_up and not alpha[cid]
                plan = next(c for c in new_rs.checkers if c.id == cid)
                start = RetryState.start(
                    plan.settings.retry, alpha=False, per_round=plan.kind in PER_ROUND
                )
                result[cid] = replace(s, retry=replace(start, is_up=is_up))
    return result


def _reload_sorry(work: _Work, old: PoolState) -> None:
    """keepalived's clear_diff_s_srv: keep an unchanged sorry server, else take it out."""
    old_ss, new_ss = old.vs.sorry_server, work.vs.sorry_server
    if old_ss is None:
        return
    same = new_ss is not None and (new_ss.ip, new_ss.port) == (old_ss.ip, old_ss.port)
    if same:
        return
    if work.sorry_active:
        work.log(
            "checkd.vs.sorry_off",
            f"Removing sorry server {old_ss.text} from VS {old.vs.id}",
            vs=old.vs.id,
            sorry_server=old_ss.text,
        )
        work.sorry_active = False
        if new_ss is None:
            work.log_pool(add=True)
