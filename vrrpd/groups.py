"""The running sync groups: when they form and break up, and routing their members' events.

:class:`vrrpd.syncgroup.SyncGroup` decides (pure); this is the one place that knows which
running instance belongs to which group and hands each member the actions the group decided
for it. A member's :meth:`Runner.feed <vrrpd.runner.Runner.feed>` comes here through its host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from vrrpd.machine import Action, CauseKind, Event
from vrrpd.plan import InstancePlan
from vrrpd.runner import Runner
from vrrpd.syncgroup import GroupNotify, SyncGroup

__all__ = ["Groups"]

log = structlog.get_logger(__name__)

#: runs a group's notifications; ``resumed`` when the member's change resumed a mastership
#: the previous vrrpd held (nothing changed for the operator, so no script runs)
GroupNotifier = Callable[[GroupNotify, bool], None]


class Groups:
    """Sync groups over ``runners`` (the daemon's running instances, by name)."""

    def __init__(self, runners: Mapping[str, Runner], notify: GroupNotifier) -> None:
        self._runners = runners
        self._notify = notify
        self._groups: dict[str, SyncGroup] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._groups

    def form(self, plans: Mapping[str, InstancePlan]) -> None:
        """A sync group starts coordinating once every member instance is running."""
        members: dict[str, list[Runner]] = {}
        for runner in self._runners.values():
            if runner.plan.sync_group:
                members.setdefault(runner.plan.sync_group, []).append(runner)
        for name, runners in members.items():
            wanted = {p.name for p in plans.values() if p.sync_group == name}
            if name in self._groups or {r.name for r in runners} != wanted:
                continue
            self._groups[name] = SyncGroup(name, {r.name: r.machine for r in runners})
            for r in runners:
                r.join_group(name)
            log.info("vrrpd.sync_group.formed", group=name, members=sorted(wanted))

    def leave(self, runner: Runner) -> None:
        """``runner`` stops: its group breaks up (members leave together; the group re-forms
        from the new plans)."""
        if runner.group is None:
            return
        self._groups.pop(runner.group, None)
        for other in self._runners.values():
            if other.group == runner.group:
                other.leave_group()
        runner.leave_group()

    def route(self, member: str, event: Event, now: float) -> None:
        """Feed ``event`` to ``member`` through its group; each member executes its share."""
        runner = self._runners.get(member)
        group = None if runner is None or runner.group is None else self._groups[runner.group]
        if group is None:
            raise KeyError(f"{member} is in no running sync group")
        by_member: dict[str, list[Action]] = {}
        for name, action in group.handle(member, event, now):
            if isinstance(action, GroupNotify):
                self._notify(action, self._resumed(action.member))
            else:
                by_member.setdefault(name, []).append(action)
        for name, actions in by_member.items():
            target = self._runners.get(name)
            if target is not None:
                target.execute(actions, now)
                target.after_actions()

    def _resumed(self, member: str) -> bool:
        runner = self._runners.get(member)
        cause = runner.machine.last_cause if runner is not None else None
        return cause is not None and cause.kind is CauseKind.RESUMED
