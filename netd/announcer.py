"""GARP/NA on the event loop: the :class:`~netd.announce.AnnounceScheduler` says what goes
out when, one timer wakes for the next frame, the :class:`~netd.announce.FrameSender` sends.

Two kinds: a burst when vrrpd asks (a new MASTER, sent right after the reconcile that
installed the addresses), and ``garp_extra_if``: a GARP/NA every N seconds on the instance's
VIP interfaces other than its own while it is MASTER, re-armed only when what to announce
changes (keepalived arms it on becoming MASTER).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping

import structlog

import core
from netd.announce import AnnounceScheduler, FrameSender, Target
from netd.desired import Address, Item
from netd.errors import AnnounceError
from netd.owners import OwnerState
from netd.vmacintent import extra_if_targets

__all__ = ["Announcer", "burst_targets"]

log = structlog.get_logger(__name__)


def burst_targets(items: Iterable[Item], macs: Mapping[str, str | None]) -> list[Target]:
    """One target per address on an interface whose MAC is known."""
    return [
        Target(ifname=item.dev, ip=item.ip, mac=mac)
        for item in items
        if isinstance(item, Address) and (mac := macs.get(item.dev))
    ]


class Announcer:
    def __init__(self) -> None:
        self.scheduler = AnnounceScheduler()
        self.frames = FrameSender()
        self._handle: asyncio.TimerHandle | None = None

    def configure(self, config: core.Config) -> None:
        """Pacing between announcements is global (vrrp_garp_interval / vrrp_gna_interval)
        or per interface (garp_group); how many and when is vrrpd's machine's to say, one
        burst per request."""
        g = config.global_defs
        self.scheduler.timing = dataclasses.replace(
            self.scheduler.timing,
            garp_interval=g.vrrp_garp_interval,
            gna_interval=g.vrrp_gna_interval,
        )
        self.scheduler.per_interface = {
            ifname: (group.garp_interval, group.gna_interval)
            for group in config.garp_groups
            for ifname in (*group.interfaces, *((group.interface,) if group.interface else ()))
        }

    def burst(self, owner: str, targets: list[Target], count: int) -> None:
        if not targets:
            return
        self.scheduler.burst(owner, self._now(), targets, max(1, count))
        log.info("netd.announce", owner=owner, targets=len(targets), count=count)
        self._send_due()

    def stop(self, owner: str) -> None:
        """Nothing more for ``owner``: its burst and its periodic announcements end."""
        self.scheduler.stop(owner)

    def stop_periodic(self, owner: str) -> None:
        if self.scheduler.periodic(owner) is not None:
            self.scheduler.every(owner, self._now(), 0, ())

    def extra_if(
        self, owners: Iterable[OwnerState], vmacs: set[str], macs: Mapping[str, str | None]
    ) -> None:
        """garp_extra_if for every owner asking for it: announced while held."""
        now = self._now()
        changed = False
        for state in owners:
            owner, extra = state.name, state.extra_if
            if extra is None:
                continue
            targets: list[Target] = []
            if state.held:
                targets = extra_if_targets(extra, state.owned, vmacs, macs)
            want = (extra.interval, tuple(targets)) if targets else None
            if self.scheduler.periodic(owner) == want:
                continue
            self.scheduler.every(owner, now, extra.interval, targets)
            changed = True
            if targets:
                log.info(
                    "netd.announce.extra_if",
                    owner=owner,
                    interval=extra.interval,
                    interfaces=[t.ifname for t in targets],
                )
        if changed:
            self._arm()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.frames.close()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        nxt = self.scheduler.next_due()
        if nxt is not None:
            self._handle = asyncio.get_running_loop().call_at(nxt, self._send_due)

    def _send_due(self) -> None:
        now = self._now()
        for planned in self.scheduler.due(now):
            try:
                self.frames.send(planned.target.ifname, planned.frame)
            except AnnounceError as exc:
                log.warning("netd.announce.failed", reason=str(exc))
        self._arm()
