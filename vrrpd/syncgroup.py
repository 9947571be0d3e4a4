"""vrrp_sync_group: move member instances together, as keepalived does (pure).

The driver routes every event of a member through the group instead of the member's machine::

    group = SyncGroup("G1", {"VI_1": m1, "VI_2": m2})
    for name, action in group.handle("VI_1", event, now):
        execute(name, action)          # each action belongs to the named member

Rules (keepalived 2.2.7):

* A member whose master-down timer expires only becomes MASTER when every other member also
  wants MASTER (is MASTER, or is a BACKUP whose own timer ran out / which saw only
  lower-priority adverts); otherwise it re-arms its down timer and stays BACKUP. This avoids
  thrashing.
* When one member becomes MASTER the other BACKUP members are forced to MASTER.
* When one member drops from MASTER to BACKUP, the other MASTER members are forced to BACKUP.
* When one member is in FAULT by its own faults, every other member gets the fault source
  ``sync group G1: VI_1 in fault`` and so goes to FAULT too; it is cleared when that member's
  own faults clear.
* A MASTER member hearing a lower-priority advert re-sends GARPs for it (the machine does) and
  for the other MASTER members with ``garp_lower_prio_repeat``.
* When the group's own state (:attr:`SyncGroup.state`) changes, a :class:`GroupNotify` is
  emitted under the group's name: run the group's notify scripts with priority 0, as
  keepalived does (``notify`` gets ``GROUP name STATE 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vrrpd.machine import (
    Action,
    Cause,
    CauseKind,
    Event,
    FaultChanged,
    Machine,
    RxLowerPriority,
    SendGarp,
    Startup,
    State,
)

__all__ = ["GroupNotify", "SyncGroup"]


@dataclass(frozen=True, slots=True)
class GroupNotify:
    """The sync group as a whole changed state; ``member`` is whose event caused it."""

    group: str
    old: State
    new: State
    member: str


class SyncGroup:
    def __init__(self, name: str, members: Mapping[str, Machine]) -> None:
        self.name = name
        self.members = dict(members)
        self._own_fault: dict[str, bool] = {}
        self._state = State.INIT
        for machine in self.members.values():
            machine.sync_gate = self._gate
        for member in self.members:
            self._own_fault[member] = self._own_faulty(member)

    @property
    def state(self) -> State:
        """The group's state: FAULT if any member is, MASTER only if all are, else BACKUP/INIT."""
        states = {m.state for m in self.members.values()}
        if State.FAULT in states:
            return State.FAULT
        if states == {State.MASTER}:
            return State.MASTER
        if states == {State.INIT}:
            return State.INIT
        return State.BACKUP

    def _source(self, member: str) -> str:
        return f"sync group {self.name}: {member} in fault"

    def _own_faulty(self, member: str) -> bool:
        prefix = f"sync group {self.name}: "
        faults = self.members[member].faults
        return any(bad and not src.startswith(prefix) for src, bad in faults.items())

    def _gate(self, machine: Machine) -> bool:
        return all(
            other.state is State.MASTER or (other.state is State.BACKUP and other.wants_master)
            for other in self.members.values()
            if other is not machine
        )

    def handle(
        self, member: str, event: Event, now: float
    ) -> list[tuple[str, Action | GroupNotify]]:
        """Feed ``event`` to ``member`` and apply the group rules; actions are per member."""
        machine = self.members[member]
        before = machine.state
        out: list[tuple[str, Action | GroupNotify]] = [
            (member, a) for a in machine.handle(event, now)
        ]
        after = machine.state
        if before is not after:
            out += self._follow(member, before, after, now)
        if machine.state is State.MASTER and any(isinstance(a, RxLowerPriority) for _, a in out):
            for name, other in self.members.items():
                repeat = other.params.garp_lower_prio_repeat
                if name != member and other.state is State.MASTER and repeat > 0:
                    out.append((name, SendGarp(repeat, f"sync group {self.name} sibling {member}")))
        out += self._propagate_faults(now)
        if self.state is not self._state:
            out.append((self.name, GroupNotify(self.name, self._state, self.state, member)))
            self._state = self.state
        return out

    def _follow(
        self, member: str, before: State, after: State, now: float
    ) -> list[tuple[str, Action | GroupNotify]]:
        out: list[tuple[str, Action | GroupNotify]] = []
        for name, other in self.members.items():
            if name == member:
                continue
            if after is State.MASTER:
                cause = Cause(
                    CauseKind.SYNC_GROUP,
                    f"sync group {self.name}: syncing to MASTER with {member}",
                    source=member,
                )
                out += [(name, a) for a in other.force_master(now, cause)]
            elif after is State.BACKUP and before is State.MASTER:
                cause = Cause(
                    CauseKind.SYNC_GROUP,
                    f"sync group {self.name}: syncing to BACKUP with {member}",
                    source=member,
                )
                out += [(name, a) for a in other.force_backup(now, cause)]
            elif after is State.BACKUP and before is State.INIT:
                out += self._stop_resume(name, other, member, now)
        return out

    def _stop_resume(
        self, name: str, other: Machine, member: str, now: float
    ) -> list[tuple[str, Action | GroupNotify]]:
        """``member`` started and heard a master after a quick vrrpd restart: a sibling still
        listening must not resume (the group would then force ``member`` to MASTER against
        that master), and one that already resumed falls back with the group."""
        if other.resuming:
            return [(name, a) for a in other.handle(Startup(), now)]
        last = other.last_cause
        if other.state is State.MASTER and last is not None and last.kind is CauseKind.RESUMED:
            cause = Cause(
                CauseKind.SYNC_GROUP,
                f"sync group {self.name}: syncing to BACKUP with {member}, which heard a master",
                source=member,
            )
            return [(name, a) for a in other.force_backup(now, cause)]
        return []

    def _propagate_faults(self, now: float) -> list[tuple[str, Action | GroupNotify]]:
        out: list[tuple[str, Action | GroupNotify]] = []
        for member in self.members:
            faulty = self._own_faulty(member)
            if faulty == self._own_fault[member]:
                continue
            self._own_fault[member] = faulty
            event = FaultChanged(self._source(member), faulty)
            for name, other in self.members.items():
                if name != member:
                    out += [(name, a) for a in other.handle(event, now)]
        return out
