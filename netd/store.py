"""Pure bookkeeping of desired sets per owner: generations, leases, the merged view.

The netd process feeds every received :class:`~netd.desired.DesiredSet` to
:meth:`DesiredStore.offer` and reconciles the kernel to :meth:`DesiredStore.merged` whenever
it changes. Leases implement the design rule "netd keeps VIPs only for a lease": a vrrpd that
dies stops refreshing its set, the lease lapses, :meth:`DesiredStore.expire` drops the set
and the next reconcile removes its VIPs, so a dead vrrpd cannot hold a VIP the peer took.
"""

from __future__ import annotations

from dataclasses import dataclass

from netd.desired import DesiredSet
from netd.reconcile import Merged, merge

__all__ = ["DesiredStore", "Offer"]


@dataclass(frozen=True, slots=True)
class Offer:
    """What :meth:`DesiredStore.offer` did: ``accepted`` and whether items ``changed``."""

    accepted: bool
    changed: bool
    reason: str = ""


@dataclass(slots=True)
class _Entry:
    ds: DesiredSet
    boot: str | None
    expires: float | None


class DesiredStore:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        # No lease runs out before this (a lower bound; None: no leases at all). netd asks
        # expire() 20 times a second; with 255 leased owners a scan each time adds up.
        self._soonest: float | None = None

    def _bound(self, expires: float | None) -> None:
        if expires is not None and (self._soonest is None or expires < self._soonest):
            self._soonest = expires

    def offer(self, ds: DesiredSet, now: float, boot: str | None = None) -> Offer:
        """Take ``ds`` unless it is older than what we hold from the same process.

        ``boot`` is the sender's per-start id from the bus envelope: a restarted sender may
        begin its generations again from zero, so a new boot id always wins.
        """
        cur = self._entries.get(ds.owner)
        same_boot = cur is not None and (boot is None or cur.boot in (None, boot))
        if cur is not None and same_boot and ds.generation < cur.ds.generation:
            return Offer(False, False, f"stale generation {ds.generation} < {cur.ds.generation}")
        changed = cur is None or cur.ds.items != ds.items
        expires = None if ds.lease is None else now + ds.lease
        self._bound(expires)
        self._entries[ds.owner] = _Entry(
            ds, boot if boot is not None else (cur.boot if cur else None), expires
        )
        return Offer(True, changed)

    def renew(self, owner: str, generation: int, boot: str, lease: float, now: float) -> bool:
        """Extend ``owner``'s lease to ``now + lease`` if we hold exactly that generation from
        that sender start (``boot``); anything else extends nothing.

        A compact renewal names what the sender still holds without repeating it. If netd
        holds another generation (the full set was lost) or another boot, extending would
        keep items the sender no longer wants; the sender's full republish repairs that.
        """
        entry = self._entries.get(owner)
        if (
            entry is None
            or entry.expires is None
            or entry.boot != boot
            or entry.ds.generation != generation
        ):
            return False
        entry.expires = now + lease
        self._bound(entry.expires)
        return True

    def drop(self, owner: str) -> bool:
        return self._entries.pop(owner, None) is not None

    def expire(self, now: float) -> list[str]:
        """Drop and return the owners whose lease ran out at ``now``."""
        if self._soonest is None or now < self._soonest:
            return []
        gone = [o for o, e in self._entries.items() if e.expires is not None and e.expires <= now]
        for owner in gone:
            del self._entries[owner]
        self._soonest = self.next_expiry()
        return gone

    def next_expiry(self) -> float | None:
        times = [e.expires for e in self._entries.values() if e.expires is not None]
        return min(times) if times else None

    def generation(self, owner: str) -> int | None:
        entry = self._entries.get(owner)
        return entry.ds.generation if entry else None

    def owners(self) -> list[str]:
        return sorted(self._entries)

    def merged(self) -> Merged:
        return merge(e.ds for e in self._entries.values())
