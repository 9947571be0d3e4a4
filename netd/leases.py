"""netd's lease and grace policy, pure: which owners' desired sets run out, and when.

* An intent from vrrpd is held for its ``lease`` (+ :data:`LEASE_SLACK`) unless renewed; a
  renewal extends it only for the exact generation held from the same vrrpd start (the
  :class:`~netd.store.DesiredStore` keeps generations, boots and lease ends).
* Leases only mean "vrrpd is gone" while the bus demonstrably delivers (heartbeats of every
  component, several a second): once nothing has come for :data:`BUS_SILENT_AFTER`, the
  silence is the bus's, and no lease runs out until :data:`HOLD_AFTER_BUS` after the bus is
  heard again (time for the owners' republishes to arrive). A stalled bus stops renewals
  too, and vrrpd, still advertising, keeps the peer in backup: withdrawing then would leave
  the VIPs nowhere.
* What an earlier netd left (the pseudo-owner ``~leftover``) is held for
  :data:`RESTART_GRACE` after start, or until every configured VRRP instance has spoken: a
  restarted netd does not flap VIPs that a living vrrpd still holds, and after a whole-group
  crash the leftovers nobody claims go as soon as the new vrrpd has spoken.

No I/O and no timer: the clock is injected, the daemon calls :meth:`Leases.due` when
:meth:`Leases.next_wakeup` says so and acts on the :class:`Lapse` it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from netd.desired import DesiredSet, Item
from netd.owners import LEFTOVER
from netd.store import DesiredStore, Offer

__all__ = [
    "BUS_SILENT_AFTER",
    "HOLD_AFTER_BUS",
    "LEASE_SLACK",
    "RESTART_GRACE",
    "Lapse",
    "Leases",
]

RESTART_GRACE = 2.0  # longest we keep unclaimed leftovers after start (intents arrive first)
LEASE_SLACK = 0.0  # vrrpd leases for its own Master_Down_Interval, below the peer's
BUS_SILENT_AFTER = 0.75
HOLD_AFTER_BUS = 2.0


@dataclass(frozen=True, slots=True)
class Lapse:
    """What ran out at one :meth:`Leases.due`."""

    #: owners whose lease ran out, their sets dropped (``~leftover`` when its grace did)
    expired: tuple[str, ...] = ()
    #: the start-up grace ran out just now (unclaimed leftover VMACs may go)
    grace_ended: bool = False
    #: the bus has been silent this long with leases running: they are held from now on
    bus_silent_for: float | None = None


@dataclass(slots=True)
class Leases:
    """The lease, bus-hold and start-up grace state of one netd run over its store."""

    store: DesiredStore
    clock: Callable[[], float]
    grace: float = RESTART_GRACE
    silent_after: float = BUS_SILENT_AFTER
    hold_after: float = HOLD_AFTER_BUS
    started: float = field(init=False)
    grace_over: bool = field(init=False, default=False)
    _bus_seen: float = field(init=False)
    _hold_until: float = field(init=False, default=0.0)
    _holding: bool = field(init=False, default=False)  # this silence was reported already
    _expected: frozenset[str] | None = field(init=False, default=None)
    _heard: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.started = self._bus_seen = self.clock()

    # ---- the bus ----------------------------------------------------------------------------

    def bus_heard(self) -> None:
        """Any message arrived. After a silence, leases stay held a while longer: the
        renewals and republishes the silence kept back are still on their way."""
        now = self.clock()
        if now - self._bus_seen > self.silent_after:
            self._hold_until = max(self._hold_until, now + self.hold_after)
        self._bus_seen = now
        self._holding = False

    def holding(self, now: float) -> bool:
        return now < self._hold_until

    # ---- offers and renewals ----------------------------------------------------------------

    def offer(self, ds: DesiredSet, boot: str | None = None) -> Offer:
        return self.store.offer(ds, self.clock(), boot=boot)

    def offer_leftovers(self, items: Iterable[Item]) -> None:
        """What an earlier run left, held for the grace unless claimed before."""
        self.store.offer(DesiredSet(LEFTOVER, 0, tuple(items), lease=self.grace), self.clock())

    def renew(self, boot: str, leases: Mapping[str, tuple[int, float]]) -> list[str]:
        """Extend each named owner's lease if we hold exactly that generation from that vrrpd
        start; returns the owners extended."""
        now = self.clock()
        return [
            owner
            for owner, (generation, lease) in leases.items()
            if self.store.renew(owner, generation, boot, lease + LEASE_SLACK, now)
        ]

    # ---- the start-up grace -----------------------------------------------------------------

    def expect(self, owners: frozenset[str]) -> None:
        """The owners the config has (every VRRP instance): when all have spoken, the
        leftovers nobody claimed can go."""
        self._expected = owners

    def heard_from(self, owner: str) -> None:
        self._heard.add(owner)

    def all_claimed(self) -> bool:
        return self._expected is not None and self._expected <= self._heard

    def end_grace(self) -> tuple[bool, bool]:
        """End the grace now (every instance has spoken): (it was running, leftovers were
        dropped)."""
        was_running, self.grace_over = not self.grace_over, True
        return was_running, self.store.drop(LEFTOVER)

    # ---- time -------------------------------------------------------------------------------

    def due(self) -> Lapse:
        """Expire what ran out by now, unless the bus is (or just was) silent."""
        now = self.clock()
        silent_for = None
        if now - self._bus_seen > self.silent_after:
            if not self._holding and self.store.next_expiry() is not None:
                silent_for = now - self._bus_seen
                self._holding = True
            self._hold_until = now + self.hold_after
        expired = () if self.holding(now) else tuple(self.store.expire(now))
        if LEFTOVER in expired:
            self.grace_over = True
        grace_ended = False
        if not self.grace_over and now - self.started >= self.grace:
            self.grace_over = grace_ended = True
        return Lapse(expired, grace_ended, silent_for)

    def next_wakeup(self) -> float | None:
        """When :meth:`due` may next have something to do (None: nothing until an offer)."""
        times = []
        expiry = self.store.next_expiry()
        if expiry is not None:
            times.append(max(expiry, self._hold_until))
        if not self.grace_over:
            times.append(self.started + self.grace)
        return min(times) if times else None
