"""Everything netd knows about one owner of desired state, in one object per owner.

An owner is ``static``, ``vrrp:<instance>``, ``vmac:<ifname>`` (a VMAC's link-local address)
or ``~leftover``. Its desired set, generation and lease live in the
:class:`~netd.store.DesiredStore`; what the daemon keeps beside them (the intent's VMACs,
MASTER or not, the fingerprint echoed in ``net.applied``, the last report, the GARP/NA
request counter, ...) lives here, so adding or forgetting an owner is one operation and no
piece of it can be left behind.

Two lifetimes: what the intent says about the instance (VMACs, ``garp_extra_if``, accept,
the announce counter, the parsed items) stays while the instance is known; what a held lease
means (held, MASTER, fingerprint, report, pending GARPs) goes with the lease
(:meth:`OwnerState.lapse`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from netd.desired import Item
from netd.vmacintent import ExtraIf, VmacSpec

__all__ = [
    "LEFTOVER",
    "STATIC",
    "VRRP_PREFIX",
    "Announce",
    "OwnerState",
    "Owners",
    "vrrp_owner",
    "wants_burst",
]

LEFTOVER = "~leftover"  # '~' sorts after every real owner: they win conflicts
STATIC = "static"

#: net.applied's marker of what was last published: (generation, failures, items, fingerprint)
Published = tuple[int, int, int, str]


VRRP_PREFIX = "vrrp:"


def vrrp_owner(instance: str) -> str:
    return f"{VRRP_PREFIX}{instance}"


@dataclass(slots=True)
class Announce:
    """vrrpd's GARP/NA request counter for one owner, per vrrpd start (``boot``)."""

    boot: str
    counter: int


def wants_burst(previous: Announce | None, boot: str, counter: int) -> bool:
    """A new GARP/NA burst is asked for when the counter moved on, or when a (re)started
    vrrpd (or netd: nothing known yet) reports a non-zero counter."""
    if counter <= 0:
        return False
    if previous is None or previous.boot != boot:
        return True
    return counter > previous.counter


@dataclass(slots=True)
class OwnerState:
    name: str
    # -- while the lease (or, without one, the set) is held
    held: bool = False  # the current set is non-empty
    master: bool = False  # the intent says held (MASTER): its VMACs carry traffic
    fingerprint: str = ""  # of the intent held (echoed in net.applied, see vrrpd.resume)
    published: Published | None = None  # what net.applied last said
    pending_garps: int = 0  # a burst to send after the next reconcile
    # -- while the instance is known
    vmacs: tuple[VmacSpec, ...] = ()  # the intent's VMACs (own first)
    extra_if: ExtraIf | None = None  # garp_extra_if
    accept: bool | None = None  # the intent's accept (None: no intent yet; accepting)
    announce: Announce | None = None  # the last GARP/NA request counter seen
    # the last intent's (items, interface, VIP interface) and what they parse to
    parsed: tuple[tuple[Any, ...], tuple[Item, ...]] | None = None
    # -- derived by every reconcile
    owned: list[Item] = field(default_factory=list)  # merged items this owner holds

    def lapse(self) -> None:
        """The lease ran out: nothing of it is held or reported any longer."""
        self.held = False
        self.master = False
        self.fingerprint = ""
        self.published = None
        self.pending_garps = 0


class Owners:
    """The registry: one :class:`OwnerState` per owner name."""

    def __init__(self) -> None:
        self._states: dict[str, OwnerState] = {}

    def __iter__(self) -> Iterator[OwnerState]:
        return iter(list(self._states.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._states

    def get(self, name: str) -> OwnerState | None:
        return self._states.get(name)

    def of(self, name: str) -> OwnerState:
        """``name``'s state, created on first use."""
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = OwnerState(name)
        return state

    def forget(self, name: str) -> OwnerState | None:
        return self._states.pop(name, None)

    def is_held(self, name: str) -> bool:
        state = self._states.get(name)
        return state is not None and state.held

    def sorted(self) -> list[OwnerState]:
        return [self._states[n] for n in sorted(self._states)]

    def set_owned(self, owned: dict[str, list[Item]]) -> None:
        """Every owner's merged items after a merge (none for an owner not named)."""
        for state in self._states.values():
            state.owned = owned.get(state.name, [])
        for name in owned.keys() - self._states.keys():
            self.of(name).owned = owned[name]

    def owned(self, name: str) -> list[Item]:
        state = self._states.get(name)
        return state.owned if state is not None else []

    def accepting(self) -> dict[str, bool]:
        return {s.name: s.accept for s in self._states.values() if s.accept is not None}

    def owned_map(self) -> dict[str, list[Item]]:
        return {s.name: s.owned for s in self._states.values() if s.owned}
