"""The VRRP state machine of one instance: pure, no sockets, no clock, no bus.

How a driver uses it::

    machine = Machine(params)                      # params: InstanceParams
    actions = machine.handle(Startup(), now)       # now = time.monotonic() (virtual in the sim)
    execute(actions)

    # later, for every input:
    actions = machine.handle(AdvertReceived.from_advert(advert, src), now)
    actions = machine.handle(TimerFired(TimerName.ADVER), now)
    actions = machine.handle(PriorityChanged(90, "track_script chk_web failed"), now)
    actions = machine.handle(FaultChanged("interface eth0", faulty=True), now)
    actions = machine.handle(Shutdown(), now)

    # instead of Startup, when netd still holds this instance's items from the previous
    # vrrpd run (a quick restart): listen one advert interval, then MASTER without GARP,
    # cause "resumed" (an advert heard meanwhile, or Startup fed meanwhile: start as usual)
    actions = machine.handle(Resume(), now)

Executing the action list, strictly in order:

* :class:`SendAdvert` — send the instance's advert with that priority (a cached
  :class:`vrrpd.packet.PreparedAdvert`; ``with_priority`` when it differs, 0 on release).
* :class:`SetTimer` — (re)arm the named timer at the *absolute* monotonic ``deadline``;
  replaces any earlier deadline of that name. :class:`CancelTimer` — disarm it. When a deadline
  passes, feed ``TimerFired(name)``. A stale fire (the timer was re-armed or cancelled since)
  is ignored by the machine, so a lazy-deletion timer heap is fine.
* :class:`SetVips` — the desired VIP set (with eVIPs, virtual routes and rules) is held
  (MASTER) or released (everything else); ``accept`` says whether packets for the VIPs are
  accepted (Accept_Mode). Publish it to netd as desired state.
* :class:`SendGarp` — send ``count`` gratuitous ARPs / unsolicited NAs per VIP now.
* :class:`Notify` — a state change (old, new, cause, effective priority): notify scripts,
  FIFO, ``vrrp.state.<instance>`` on the bus, logs.
* :class:`RxLowerPriority` — a MASTER heard a lower-priority advert (split brain healed):
  run ``notify_master_rx_lower_pri``.
* :class:`Log` — something worth a structured log line (``event`` is the dotted event name);
  rate-limit as RFC 9568 asks.

Every :class:`Notify` carries a :class:`Cause` saying which timer, which advert from which peer,
which tracker or which command moved the instance.

Timer arithmetic follows RFC 5798/9568 and keepalived, in integer microseconds:
``Skew_Time = (256 - priority) * Master_Adver_Interval / 256`` (v3, with the learned interval;
v2: ``(256 - priority) / 256`` s per RFC 3768, or scaled by the interval as keepalived does
with ``v2_skew_scales_with_interval``) and
``Master_Down_Interval = down_timer_adverts (3) * Master_Adver_Interval + Skew_Time``.

Sync groups (:mod:`vrrpd.syncgroup`) coordinate several machines through ``sync_gate`` and
:meth:`Machine.force_master` / :meth:`Machine.force_backup` and fault sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from vrrpd.packet import Advert, IPAddress

__all__ = [
    "Action",
    "AdvertReceived",
    "CancelTimer",
    "Cause",
    "CauseKind",
    "Event",
    "FaultChanged",
    "InstanceParams",
    "Log",
    "Machine",
    "Notify",
    "PriorityChanged",
    "Resume",
    "RxLowerPriority",
    "SendAdvert",
    "SendGarp",
    "SetTimer",
    "SetVips",
    "Shutdown",
    "Startup",
    "State",
    "TimerFired",
    "TimerName",
]

_US = 1_000_000
_CS_US = 10_000


class State(StrEnum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


class TimerName(StrEnum):
    # Hashed as the string it equals, in C: Enum's own __hash__ is a Python call, and a backup
    # re-arms MASTER_DOWN in a dict for every advert it hears.
    __hash__ = str.__hash__

    MASTER_DOWN = "master_down"
    ADVER = "adver"
    PREEMPT_DELAY = "preempt_delay"
    GARP_DELAY = "garp_delay"
    GARP_REFRESH = "garp_refresh"
    GARP_LOWER_PRIO = "garp_lower_prio"
    RESUME = "resume"


class CauseKind(StrEnum):
    STARTUP = "startup"
    TIMER = "timer"
    ADVERT = "advert"
    FAULT = "fault"
    FAULT_CLEARED = "fault_cleared"
    SHUTDOWN = "shutdown"
    SYNC_GROUP = "sync_group"
    RESUMED = "resumed"


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a transition happened; ``detail`` is the human-readable sentence."""

    kind: CauseKind
    detail: str
    peer: IPAddress | None = None
    priority: int | None = None
    timer: TimerName | None = None
    source: str | None = None

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class InstanceParams:
    """Everything the machine needs from the configuration of one vrrp_instance.

    ``interval_cs`` is the configured advert interval in centiseconds (a v2 instance uses a
    multiple of 100). ``preempt=False`` is keepalived's ``nopreempt``. ``start_master`` is
    ``state MASTER`` for a non-owner (a short first down timer, as keepalived does).
    ``primary_address`` is the address our adverts come from (the equal-priority tie-break).
    """

    name: str
    vrid: int
    primary_address: IPAddress
    version: int = 3
    priority: int = 100
    interval_cs: int = 100
    preempt: bool = True
    preempt_delay: float = 0.0
    start_master: bool = False
    accept: bool = True
    down_timer_adverts: int = 3
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    owner_ignore_adverts: bool = False
    garp_master_repeat: int = 5
    garp_master_delay: float = 5.0
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_repeat: int = 5
    garp_lower_prio_delay: float = 5.0
    v2_skew_scales_with_interval: bool = False

    @property
    def owner(self) -> bool:
        return self.priority == 255


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Startup:
    pass


@dataclass(frozen=True, slots=True)
class AdvertReceived:
    """A *validated* advert (see :mod:`vrrpd.validate`); ``interval_cs`` in centiseconds."""

    source: IPAddress
    priority: int
    interval_cs: int

    @classmethod
    def from_advert(cls, advert: Advert, source: IPAddress) -> AdvertReceived:
        return cls(source=source, priority=advert.priority, interval_cs=advert.interval_cs)


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer: TimerName


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    """New effective priority (from :mod:`vrrpd.priority`); ``reason`` names the tracker."""

    priority: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FaultChanged:
    """A fault source (``"interface eth0"``, ``"track_script chk"``...) went bad or recovered."""

    source: str
    faulty: bool

    @classmethod
    def interface(cls, name: str, *, up: bool) -> FaultChanged:
        """The instance's interface (or a weight-0 track_interface) went down or came up."""
        return cls(f"interface {name}", faulty=not up)


@dataclass(frozen=True, slots=True)
class Shutdown:
    reason: str = "shutdown requested"
    #: False for keepalived's -V: a master leaves without a priority-0 advert and keeps its
    #: VIPs (the STOP notifications still run)
    release: bool = True


@dataclass(frozen=True, slots=True)
class Resume:
    """Start-up after a quick vrrpd restart: netd still holds this instance's items.

    Fed instead of :class:`Startup`, in INIT. The instance first listens, still in INIT, for a
    little more than one advert interval (the ``resume`` timer): a peer that took over while
    vrrpd was away advertises within that time. Hearing an advert (priority > 0) from another
    router then means a normal start, at once, following that advert; so does a
    :class:`Startup` fed meanwhile (the driver learnt that netd's lease ran out). When the
    timer runs out the instance becomes MASTER (an advert now, VIPs held, no GARP: the
    addresses never moved), or FAULT if a fault source is bad. From then on the usual rules
    apply, also to a peer that took over just as we resumed (its advert in flight): the peer
    applies them to our advert too, and yielding on both sides would leave no master.
    """

    detail: str = "netd still holds its addresses from the previous vrrpd run"


Event = Startup | AdvertReceived | TimerFired | PriorityChanged | FaultChanged | Shutdown | Resume


# ---- actions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAdvert:
    priority: int


@dataclass(frozen=True, slots=True)
class SetTimer:
    timer: TimerName
    deadline: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer: TimerName


@dataclass(frozen=True, slots=True)
class SetVips:
    held: bool
    accept: bool


@dataclass(frozen=True, slots=True)
class SendGarp:
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class Notify:
    old: State
    new: State
    cause: Cause
    priority: int


@dataclass(frozen=True, slots=True)
class RxLowerPriority:
    peer: IPAddress
    priority: int


@dataclass(frozen=True, slots=True)
class Log:
    event: str
    detail: str
    peer: IPAddress | None = None


Action = SendAdvert | SetTimer | CancelTimer | SetVips | SendGarp | Notify | RxLowerPriority | Log


class _Preempt(StrEnum):
    IDLE = "idle"
    PENDING = "pending"
    EXPIRED = "expired"


class Machine:
    """One VRRP instance. Call :meth:`handle` with each event and the current monotonic time."""

    def __init__(self, params: InstanceParams) -> None:
        self.params = params
        self.state = State.INIT
        self.priority = params.priority
        self.master_adver_int_cs = params.interval_cs
        self.master_peer: IPAddress | None = None
        self.master_priority: int | None = None
        self.faults: dict[str, bool] = {}
        self.wants_master = False
        self.last_cause: Cause | None = None
        self.transitions = 0
        #: set by a sync group: returns False to hold this member back from MASTER
        self.sync_gate: Callable[[Machine], bool] | None = None
        self._timers: dict[TimerName, float] = {}
        #: why the master-down timer would run out: text, or (master, priority, interval in µs)
        self._down_reason: str | tuple[IPAddress, int, int] = "no advert heard since start-up"
        self._preempt = _Preempt.IDLE
        #: an advert (source, priority) heard while still in INIT: a Resume then starts as usual
        self.heard_in_init: tuple[IPAddress, int] | None = None
        #: the Resume being listened for (INIT with the resume timer armed)
        self._resuming: Resume | None = None

    # ---- timing ------------------------------------------------------------------------------

    @property
    def skew_us(self) -> int:
        prio = self.priority
        if self.params.version == 2 and not self.params.v2_skew_scales_with_interval:
            return (256 - prio) * _US // 256
        return (256 - prio) * self.master_adver_int_cs * _CS_US // 256

    @property
    def master_down_us(self) -> int:
        adverts = self.params.down_timer_adverts
        return adverts * self.master_adver_int_cs * _CS_US + self.skew_us

    @property
    def skew_time(self) -> float:
        return self.skew_us / _US

    @property
    def master_down_interval(self) -> float:
        return self.master_down_us / _US

    @property
    def timers(self) -> dict[TimerName, float]:
        """Armed timers and their absolute deadlines (a copy)."""
        return dict(self._timers)

    @property
    def resuming(self) -> bool:
        """Listening before resuming (see :class:`Resume`)."""
        return self._resuming is not None

    @property
    def accept(self) -> bool:
        return self.params.accept or self.params.owner

    def _arm(self, timer: TimerName, now: float, after_us: int) -> SetTimer:
        deadline = now + after_us / _US
        self._timers[timer] = deadline
        return SetTimer(timer, deadline)

    def _arm_s(self, timer: TimerName, now: float, after_s: float) -> SetTimer:
        return self._arm(timer, now, round(after_s * _US))

    def _cancel(self, out: list[Action], *timers: TimerName) -> None:
        for timer in timers:
            if self._timers.pop(timer, None) is not None:
                out.append(CancelTimer(timer))

    def _cancel_all(self, out: list[Action]) -> None:
        self._cancel(out, *list(self._timers))

    def _down_text(self) -> str:
        if isinstance(self._down_reason, str):
            return self._down_reason
        source, priority, down_us = self._down_reason
        return f"no advert from master {source} (priority {priority}) for {down_us / _US:g} s"

    def _learn_interval(self, interval_cs: int) -> None:
        # v2 has no Master_Adver_Interval: mismatching adverts never get this far.
        if self.params.version == 3 and interval_cs > 0:
            self.master_adver_int_cs = interval_cs

    # ---- transitions -------------------------------------------------------------------------

    def _notify(self, out: list[Action], new: State, cause: Cause) -> None:
        old, self.state = self.state, new
        self.last_cause = cause
        self.transitions += 1
        out.append(Notify(old, new, cause, self.priority))

    def _become_master(
        self, out: list[Action], now: float, cause: Cause, *, announce: bool = True
    ) -> None:
        p = self.params
        self._cancel(out, TimerName.MASTER_DOWN, TimerName.PREEMPT_DELAY)
        self._preempt = _Preempt.IDLE
        self.master_peer, self.master_priority = None, None
        self.wants_master = False
        # keepalived sends the advert before installing VIPs so the old master lets go first.
        out.append(SendAdvert(self.priority))
        out.append(SetVips(held=True, accept=self.accept))
        if announce and p.garp_master_repeat > 0:
            out.append(SendGarp(p.garp_master_repeat, "became master"))
            if p.garp_master_delay > 0:
                out.append(self._arm_s(TimerName.GARP_DELAY, now, p.garp_master_delay))
        if p.garp_master_refresh > 0:
            first = p.garp_master_delay + p.garp_master_refresh
            out.append(self._arm_s(TimerName.GARP_REFRESH, now, first))
        out.append(self._arm(TimerName.ADVER, now, p.interval_cs * _CS_US))
        self._notify(out, State.MASTER, cause)

    def _leave_master(self, out: list[Action]) -> None:
        self._cancel(
            out,
            TimerName.ADVER,
            TimerName.GARP_DELAY,
            TimerName.GARP_REFRESH,
            TimerName.GARP_LOWER_PRIO,
        )

    def _become_backup(
        self, out: list[Action], now: float, cause: Cause, down_us: int | None = None
    ) -> None:
        if self.state is State.MASTER:
            self._leave_master(out)
        # Also on start-up: VIPs left behind by an earlier run must go (keepalived does this).
        out.append(SetVips(held=False, accept=self.accept))
        self.wants_master = False
        self._preempt = _Preempt.IDLE
        self._cancel(out, TimerName.PREEMPT_DELAY)
        out.append(
            self._arm(
                TimerName.MASTER_DOWN, now, self.master_down_us if down_us is None else down_us
            )
        )
        self._notify(out, State.BACKUP, cause)

    def _become_fault(self, out: list[Action], cause: Cause) -> None:
        if self.state is State.MASTER:
            out.append(SendAdvert(0))
        self._cancel_all(out)
        self._preempt = _Preempt.IDLE
        self.wants_master = False
        out.append(SetVips(held=False, accept=self.accept))
        self._notify(out, State.FAULT, cause)

    def _become_init(self, out: list[Action], cause: Cause, *, release: bool = True) -> None:
        if self.state is State.MASTER:
            self._cancel(out, TimerName.ADVER)
            if release:
                out.append(SendAdvert(0))
        self._cancel_all(out)
        self._preempt = _Preempt.IDLE
        self.wants_master = False
        if release:
            out.append(SetVips(held=False, accept=self.accept))
        self._notify(out, State.INIT, cause)

    def _leave_fault_or_init(self, out: list[Action], now: float, cause: Cause) -> None:
        p = self.params
        self.master_adver_int_cs = p.interval_cs
        self.master_peer, self.master_priority = None, None
        if p.owner:
            self._become_master(out, now, cause)
            return
        self._down_reason = "no advert heard since " + (
            "start-up" if cause.kind is CauseKind.STARTUP else "leaving FAULT"
        )
        down_us = None
        if p.start_master and cause.kind is CauseKind.STARTUP:
            # keepalived `state MASTER`: one advert interval plus the smallest skew.
            down_us = p.interval_cs * _CS_US + p.interval_cs * _CS_US // 256
            self._down_reason = "no advert within one interval of start-up (state MASTER)"
        # preempt_delay is not armed here: keepalived starts it at the first lower-priority
        # advert ("start preempt delay"), which _backup_rx does.
        self._become_backup(out, now, cause, down_us)

    # ---- public API --------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event at monotonic time ``now``; returns the actions to execute in order."""
        out: list[Action] = []
        match event:
            case Startup():
                self._on_startup(out, now)
            case AdvertReceived():
                if self.state is State.BACKUP:
                    self._backup_rx(out, now, event)
                elif self.state is State.MASTER:
                    self._master_rx(out, now, event)
                elif self.state is State.INIT and event.priority > 0:
                    self._init_rx(out, now, event)
            case TimerFired(timer=timer):
                self._on_timer(out, now, timer)
            case PriorityChanged():
                self._on_priority(out, now, event)
            case FaultChanged():
                self._on_fault(out, now, event)
            case Shutdown(reason=reason, release=release):
                self._stop_resuming(out)
                if self.state is not State.INIT:
                    self._become_init(out, Cause(CauseKind.SHUTDOWN, reason), release=release)
            case Resume():
                self._on_resume(out, now, event)
        return out

    def renew_master(self, ev: AdvertReceived, now: float) -> float | None:
        """The advert a backup hears most, handled without building actions.

        When ``ev`` repeats what this BACKUP already knows of its master (same source, priority
        and interval) and :meth:`handle` would only re-arm the master-down timer, re-arm it and
        return the new deadline (the caller re-arms its timer like a ``SetTimer``). Otherwise
        change nothing and return None: the caller feeds ``ev`` through :meth:`handle`.
        """
        p = self.params
        if (
            self.state is not State.BACKUP
            or (ev.source is not self.master_peer and ev.source != self.master_peer)
            or ev.priority != self.master_priority
            or ev.priority == 0
            or (p.version == 3 and ev.interval_cs != self.master_adver_int_cs)
            or (p.owner_ignore_adverts and p.owner)
        ):
            return None
        # The branches of _backup_rx that do more than re-arm: a lower-priority master we may
        # preempt (now, or by starting preempt_delay).
        if ev.priority < self.priority and p.preempt and self._preempt is not _Preempt.PENDING:
            return None
        self.wants_master = False
        down_us = self.master_down_us
        self._down_reason = (ev.source, ev.priority, down_us)
        deadline = now + down_us / _US
        self._timers[TimerName.MASTER_DOWN] = deadline
        return deadline

    def renew_adver(self, now: float) -> float | None:
        """A MASTER's advert timer ran out: the same as :meth:`handle` with that
        ``TimerFired``, which would send one advert at :attr:`priority` and re-arm the timer.
        Re-arm it and return the new deadline (the caller sends the advert and re-arms its
        timer); None, changing nothing, when not a MASTER with that timer armed."""
        if self.state is not State.MASTER or TimerName.ADVER not in self._timers:
            return None
        deadline = now + self.params.interval_cs * _CS_US / _US
        self._timers[TimerName.ADVER] = deadline
        return deadline

    def force_master(self, now: float, cause: Cause) -> list[Action]:
        """Sync group: a sibling became MASTER, follow it (only from BACKUP)."""
        out: list[Action] = []
        if self.state is State.BACKUP:
            self._become_master(out, now, cause)
        return out

    def force_backup(self, now: float, cause: Cause) -> list[Action]:
        """Sync group: a sibling fell back to BACKUP, follow it (only from MASTER)."""
        out: list[Action] = []
        if self.state is State.MASTER:
            self._down_reason = cause.detail
            self._become_backup(out, now, cause)
        return out

    # ---- event handlers ----------------------------------------------------------------------

    def _on_startup(
        self, out: list[Action], now: float, heard: tuple[IPAddress, int] | None = None
    ) -> None:
        """Start as usual; ``heard`` is the advert (source, priority) that stopped a resume."""
        self._stop_resuming(out)
        if self.state is not State.INIT:
            out.append(Log("vrrpd.startup.ignored", f"already {self.state}"))
            return
        if any(self.faults.values()):
            sources = ", ".join(sorted(s for s, bad in self.faults.items() if bad))
            self._become_fault(
                out, Cause(CauseKind.FAULT, f"start-up with faults: {sources}", source=sources)
            )
            return
        detail = "start-up as address owner" if self.params.owner else "start-up"
        if heard is None:
            self._leave_fault_or_init(out, now, Cause(CauseKind.STARTUP, detail))
            return
        source, priority = heard
        detail += f" (not resumed: advert from {source} with priority {priority})"
        cause = Cause(CauseKind.STARTUP, detail, peer=source, priority=priority)
        self._leave_fault_or_init(out, now, cause)

    def _on_resume(self, out: list[Action], now: float, ev: Resume) -> None:
        if self.state is not State.INIT or self._resuming is not None:
            out.append(Log("vrrpd.resume.ignored", f"already {self.state}"))
            return
        if self.heard_in_init is not None:
            self._decline_resume(out, now, *self.heard_in_init)
            return
        self._resuming = ev
        # A little over one interval: the first advert of a peer that took over cannot be
        # missed for the scheduling jitter of either side.
        listen_us = self.params.interval_cs * _CS_US * 5 // 4
        out.append(self._arm(TimerName.RESUME, now, listen_us))
        out.append(Log("vrrpd.resume.listening", f"for {listen_us / _US:g} s before resuming"))

    def _stop_resuming(self, out: list[Action]) -> None:
        if self._resuming is not None:
            self._resuming = None
            self._cancel(out, TimerName.RESUME)

    def _decline_resume(
        self, out: list[Action], now: float, source: IPAddress, priority: int
    ) -> None:
        self._stop_resuming(out)
        out.append(
            Log(
                "vrrpd.resume.declined",
                f"advert from {source} with priority {priority} heard before resuming: "
                "starting as usual",
                source,
            )
        )
        self._on_startup(out, now, (source, priority))

    def _init_rx(self, out: list[Action], now: float, ev: AdvertReceived) -> None:
        if self._ignores_adverts():
            return
        self.heard_in_init = (ev.source, ev.priority)
        if self._resuming is None:
            return
        self._decline_resume(out, now, ev.source, ev.priority)
        if self.state is State.BACKUP:
            self._backup_rx(out, now, ev)  # follow the master just heard, as usual

    def _resume_now(self, out: list[Action], now: float) -> None:
        ev, self._resuming = self._resuming, None
        assert ev is not None
        if any(self.faults.values()):
            self._on_startup(out, now)
            return
        self.master_adver_int_cs = self.params.interval_cs
        cause = Cause(CauseKind.RESUMED, f"resumed: {ev.detail}")
        self._become_master(out, now, cause, announce=False)

    def _ignores_adverts(self) -> bool:
        return self.params.owner and self.params.owner_ignore_adverts

    def _backup_rx(self, out: list[Action], now: float, ev: AdvertReceived) -> None:
        if self._ignores_adverts():
            return
        p = self.params
        if ev.priority == 0:
            self._down_reason = (
                f"master {ev.source} resigned (priority-0 advert), skew time ran out"
            )
            out.append(self._arm(TimerName.MASTER_DOWN, now, self.skew_us))
            out.append(
                Log("vrrpd.advert.priority_zero", f"{ev.source} resigned as master", ev.source)
            )
            return
        lower = ev.priority < self.priority
        if lower and p.preempt and p.preempt_delay > 0 and self._preempt is _Preempt.IDLE:
            self._preempt = _Preempt.PENDING
            out.append(self._arm_s(TimerName.PREEMPT_DELAY, now, p.preempt_delay))
        if not p.preempt or not lower or self._preempt is _Preempt.PENDING:
            self._learn_interval(ev.interval_cs)
            if self.master_peer != ev.source:
                out.append(
                    Log(
                        "vrrpd.master.seen",
                        f"master is {ev.source} with priority {ev.priority}",
                        ev.source,
                    )
                )
            self.master_peer, self.master_priority = ev.source, ev.priority
            self.wants_master = False
            down_us = self.master_down_us
            # Formatted only when the timer runs out: this runs for every advert a backup hears.
            self._down_reason = (ev.source, ev.priority, down_us)
            out.append(self._arm(TimerName.MASTER_DOWN, now, down_us))
            return
        # Lower priority with preemption allowed: do not reset the down timer, so it runs out
        # and we take over (RFC 5798 §6.4.2).
        self.wants_master = True
        self._down_reason = (
            f"preempting lower-priority master {ev.source} "
            f"(priority {ev.priority} < ours {self.priority})"
        )
        out.append(
            Log(
                "vrrpd.advert.lower_prio_discarded",
                f"received lower priority ({ev.priority}) advert from {ev.source} - discarding",
                ev.source,
            )
        )

    def _master_rx(self, out: list[Action], now: float, ev: AdvertReceived) -> None:
        if self._ignores_adverts():
            return
        p = self.params
        if ev.priority == 0:
            out.append(SendAdvert(self.priority))
            out.append(self._arm(TimerName.ADVER, now, p.interval_cs * _CS_US))
            return
        ours = int(p.primary_address)
        if ev.priority > self.priority or (ev.priority == self.priority and int(ev.source) > ours):
            if p.higher_prio_send_advert:
                out.append(SendAdvert(self.priority))
            self._learn_interval(ev.interval_cs)
            self.master_peer, self.master_priority = ev.source, ev.priority
            tie = " (equal priority, higher address)" if ev.priority == self.priority else ""
            self._down_reason = (
                f"no advert from master {ev.source} (priority {ev.priority}) "
                f"for {self.master_down_us / _US:g} s"
            )
            self._become_backup(
                out,
                now,
                Cause(
                    CauseKind.ADVERT,
                    f"advert from {ev.source} with higher priority {ev.priority}, "
                    f"ours {self.priority}{tie}",
                    peer=ev.source,
                    priority=ev.priority,
                ),
            )
            return
        if ev.priority == self.priority and int(ev.source) == ours:
            out.append(
                Log(
                    "vrrpd.advert.own_address",
                    f"advert with our own address {ev.source} and our priority",
                    ev.source,
                )
            )
            return
        out.append(
            Log(
                "vrrpd.split_brain",
                f"received advert from {ev.source} with lower priority {ev.priority}, "
                f"ours {self.priority}, forcing new election",
                ev.source,
            )
        )
        out.append(RxLowerPriority(ev.source, ev.priority))
        if not p.lower_prio_no_advert:
            out.append(SendAdvert(self.priority))
            out.append(self._arm(TimerName.ADVER, now, p.interval_cs * _CS_US))
        if p.garp_lower_prio_repeat > 0:
            out.append(
                SendGarp(p.garp_lower_prio_repeat, f"lower-priority advert from {ev.source}")
            )
            if p.garp_lower_prio_delay > 0:
                out.append(self._arm_s(TimerName.GARP_LOWER_PRIO, now, p.garp_lower_prio_delay))

    def _on_timer(self, out: list[Action], now: float, timer: TimerName) -> None:
        if timer not in self._timers:
            return  # cancelled or re-armed since: a stale fire
        del self._timers[timer]
        p = self.params
        if timer is TimerName.RESUME:
            if self.state is State.INIT and self._resuming is not None:
                self._resume_now(out, now)
        elif timer is TimerName.MASTER_DOWN and self.state is State.BACKUP:
            self.wants_master = True
            if self.sync_gate is not None and not self.sync_gate(self):
                # keepalived: prefer BACKUP until every sync-group member wants MASTER.
                out.append(self._arm(TimerName.MASTER_DOWN, now, self.master_down_us))
                out.append(
                    Log("vrrpd.sync_group.wait", "down timer expired, waiting for sync group")
                )
                return
            self._become_master(
                out,
                now,
                Cause(
                    CauseKind.TIMER,
                    f"master-down timer expired: {self._down_text()}",
                    peer=self.master_peer,
                    timer=TimerName.MASTER_DOWN,
                ),
            )
        elif timer is TimerName.ADVER and self.state is State.MASTER:
            out.append(SendAdvert(self.priority))
            out.append(self._arm(TimerName.ADVER, now, p.interval_cs * _CS_US))
        elif timer is TimerName.PREEMPT_DELAY:
            self._preempt = _Preempt.EXPIRED
            out.append(Log("vrrpd.preempt_delay.expired", "preemption allowed from now on"))
        elif timer is TimerName.GARP_DELAY and self.state is State.MASTER:
            out.append(SendGarp(p.garp_master_repeat, "garp_master_delay"))
        elif timer is TimerName.GARP_REFRESH and self.state is State.MASTER:
            out.append(SendGarp(p.garp_master_refresh_repeat, "garp_master_refresh"))
            out.append(self._arm_s(TimerName.GARP_REFRESH, now, p.garp_master_refresh))
        elif timer is TimerName.GARP_LOWER_PRIO and self.state is State.MASTER:
            out.append(SendGarp(p.garp_lower_prio_repeat, "garp_lower_prio_delay"))

    def _on_priority(self, out: list[Action], now: float, ev: PriorityChanged) -> None:
        if self.params.owner:
            return  # the owner's 255 never moves (keepalived rejects weights on it)
        new = min(max(ev.priority, 1), 254)
        if new == self.priority:
            return
        old_skew = self.skew_us
        old, self.priority = self.priority, new
        why = f" ({ev.reason})" if ev.reason else ""
        out.append(Log("vrrpd.priority.changed", f"effective priority {old} -> {new}{why}"))
        deadline = self._timers.get(TimerName.MASTER_DOWN)
        if self.state is State.BACKUP and deadline is not None:
            # keepalived shifts the running down timer by the skew difference.
            # A raise can move it into the past: fire at once rather than hand out a stale time.
            shifted = max(now, deadline + (self.skew_us - old_skew) / _US)
            self._timers[TimerName.MASTER_DOWN] = shifted
            out.append(SetTimer(TimerName.MASTER_DOWN, shifted))

    def _on_fault(self, out: list[Action], now: float, ev: FaultChanged) -> None:
        was_faulty = any(self.faults.values())
        if ev.faulty:
            self.faults[ev.source] = True
        else:
            self.faults.pop(ev.source, None)
        faulty = any(self.faults.values())
        if faulty and self.state in (State.BACKUP, State.MASTER):
            self._become_fault(out, Cause(CauseKind.FAULT, f"{ev.source} failed", source=ev.source))
        elif was_faulty and not faulty and self.state is State.FAULT:
            self._leave_fault_or_init(
                out,
                now,
                Cause(
                    CauseKind.FAULT_CLEARED,
                    f"{ev.source} recovered, no fault left",
                    source=ev.source,
                ),
            )
