"""The pool's state and the snapshot of it that is published (see checkd.pool)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from checkd.checker_state import RetryState
from checkd.checkplan import RealServerPlan, VirtualServerPlan

WEIGHT_MAX = 2**31 - 1


def real_weight(weight: int) -> int:
    """The weight the kernel can be given for an effective weight."""
    return max(0, min(weight, WEIGHT_MAX))


# --- state -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckerStatus:
    retry: RetryState
    weight: int = 0  # what this checker adds to the real server's configured weight
    # misc_dynamic: the whole weight the script asked for, whatever the configured weight
    # (so a reload that changes ``weight`` keeps the script's answer, as keepalived does).
    absolute: int | None = None

    def adds(self, configured: int) -> int:
        return self.weight if self.absolute is None else self.absolute - configured


def effective_weight(configured: int, checkers: Mapping[str, CheckerStatus]) -> int:
    """The configured weight plus what the checkers add (may be out of the kernel's range)."""
    return configured + sum(c.adds(configured) for c in checkers.values())


@dataclass(frozen=True, slots=True)
class Member:
    rs: RealServerPlan
    alive: bool
    checkers: Mapping[str, CheckerStatus] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def effective_weight(self) -> int:
        return effective_weight(self.rs.weight, self.checkers)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.checkers.values() if not c.retry.is_up)


@dataclass(frozen=True, slots=True)
class MemberIndex:
    """Where each real server and each checker sits in ``PoolState.members``.

    Built once per membership and handed on by the states that only change a checker's
    status (``checkd.pool``'s probe fast path), so finding a member costs a dict lookup, not a
    walk over a pool of thousands."""

    by_rs: Mapping[str, int]
    by_checker: Mapping[str, int]

    @classmethod
    def of(cls, members: tuple[Member, ...]) -> MemberIndex:
        return cls(
            by_rs={m.rs.id: i for i, m in enumerate(members)},
            by_checker={cid: i for i, m in enumerate(members) for cid in m.checkers},
        )


@dataclass(frozen=True, slots=True)
class PoolState:
    vs: VirtualServerPlan
    members: tuple[Member, ...]
    quorum_up: bool
    sorry_active: bool
    router_id: str
    no_checker_emails: bool = False
    # Pass it on only with members in the same places holding the same checker ids.
    index: MemberIndex | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.index is None:
            object.__setattr__(self, "index", MemberIndex.of(self.members))

    def _where(self) -> MemberIndex:
        assert self.index is not None  # set by __post_init__
        return self.index

    def member(self, rs_id: str) -> Member:
        return self.members[self._where().by_rs[rs_id]]

    def position_of_checker(self, checker_id: str) -> int | None:
        return self._where().by_checker.get(checker_id)

    @property
    def live_weight(self) -> int:
        return sum(real_weight(m.effective_weight) for m in self.members if m.alive)

    def snapshot(self) -> PoolSnapshot:
        return _snapshot(self)


# --- what the bus sees -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberView:
    id: str
    ip: str
    port: int
    alive: bool
    weight: int  # configured
    effective_weight: int  # configured + checker weights, clamped for the kernel
    pool_weight: int | None  # the weight it has in the pool, None when it is not in it


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    vs: str
    quorum_up: bool
    quorum: int
    hysteresis: int
    live_weight: int
    sorry_server: str | None
    sorry_active: bool
    sorry_weight: int | None  # the sorry server's weight in the pool, None when absent
    members: tuple[MemberView, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "vs": self.vs,
            "quorum_up": self.quorum_up,
            "quorum": self.quorum,
            "hysteresis": self.hysteresis,
            "live_weight": self.live_weight,
            "sorry_server": self.sorry_server,
            "sorry_active": self.sorry_active,
            "sorry_weight": self.sorry_weight,
            "members": [
                {
                    "id": m.id,
                    "ip": m.ip,
                    "port": m.port,
                    "alive": m.alive,
                    "weight": m.weight,
                    "effective_weight": m.effective_weight,
                    "pool_weight": m.pool_weight,
                }
                for m in self.members
            ],
        }


def _snapshot(state: PoolState) -> PoolSnapshot:
    ss = state.vs.sorry_server
    sorry_weight = None
    if ss is not None and state.sorry_active:
        sorry_weight = ss.weight
    elif ss is not None and ss.inhibit:
        sorry_weight = 0
    return PoolSnapshot(
        vs=state.vs.id,
        quorum_up=state.quorum_up,
        quorum=state.vs.quorum,
        hysteresis=state.vs.hysteresis,
        live_weight=state.live_weight,
        sorry_server=ss.text if ss is not None else None,
        sorry_active=state.sorry_active,
        sorry_weight=sorry_weight,
        members=tuple(
            MemberView(
                id=m.rs.id,
                ip=m.rs.ip,
                port=m.rs.port,
                alive=m.alive,
                weight=m.rs.weight,
                effective_weight=real_weight(m.effective_weight),
                pool_weight=pool_weight(m, state.sorry_active),
            )
            for m in state.members
        ),
    )


def pool_weight(m: Member, sorry_active: bool) -> int | None:
    """The weight a member has in the kernel's pool, None when it is not in it."""
    if m.alive and not sorry_active:
        return real_weight(m.effective_weight)
    return 0 if m.rs.inhibit else None
