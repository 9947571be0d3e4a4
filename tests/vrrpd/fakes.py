"""A recording :class:`vrrpd.host.RunnerHost` and sender, for Runners without a daemon.

Everything a Runner does outside itself lands here to be asserted on: timers, what it retains
and publishes on the bus, notify jobs, FIFO lines and mails; so does what
:class:`vrrpd.starter.Starter` publishes for instances that cannot start yet. Sync group
routing is the real :class:`vrrpd.groups.Groups` over :attr:`FakeHost.runners`. Typed against
both Protocols, so mypy checks that the fake keeps up with them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Any

from core import loads
from vrrpd.groups import Groups
from vrrpd.host import AdvertSender, Refresh, RunnerHost
from vrrpd.links import Link
from vrrpd.machine import Event
from vrrpd.notify import Job
from vrrpd.packet import IPAddress
from vrrpd.plan import InstancePlan, plan
from vrrpd.runner import Runner
from vrrpd.starter import StartOutputs
from vrrpd.syncgroup import GroupNotify
from vrrpd.validate import DropReason

__all__ = ["ONE_INSTANCE", "FakeHost", "Wire", "plans_of", "runner_for"]

#: One BACKUP instance on eth0 (VRID 51, VIP 192.0.2.100/24); ``{options}`` adds lines to it.
ONE_INSTANCE = """
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
{options}
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
"""


class Wire:
    """Stands in for a Sender: keeps what would have gone on the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, IPAddress]] = []

    def send(self, wire: bytes, dst: IPAddress) -> bool:
        self.sent.append((wire, dst))
        return True


class FakeHost:
    """Records every effect; ``stopping`` and the wall clock are the test's to set."""

    def __init__(self, *, wall: float = 1_700_000_000.0) -> None:
        self.stopping = False
        self.wall = wall
        self.timers: dict[tuple[str, str], float] = {}
        self.retained: dict[str, Mapping[str, Any]] = {}
        #: how often each retained topic was published
        self.counts: Counter[str] = Counter()
        self.refresh: dict[str, Refresh] = {}
        self.events: list[tuple[str, Mapping[str, Any]]] = []
        self.jobs: list[Job] = []
        self.fifo: list[str] = []
        self.mails: list[tuple[str, str, str]] = []
        self.group_notes: list[tuple[GroupNotify, bool]] = []
        self.runners: dict[str, Runner] = {}
        self.groups = Groups(self.runners, self._group_notify)
        #: what each (family, interface) socket got that no instance took
        self.unclaimed_counts: dict[tuple[int, str], dict[DropReason, int]] = {}

    def set_timer(self, instance: str, timer: str, deadline: float) -> None:
        self.timers[(instance, timer)] = deadline

    def cancel_timer(self, instance: str, timer: str) -> None:
        self.timers.pop((instance, timer), None)

    def cancel_timers(self, instance: str) -> None:
        for key in [k for k in self.timers if k[0] == instance]:
            del self.timers[key]

    def publish_state(self, instance: str, body: Mapping[str, Any], refresh: Refresh) -> None:
        self._retain(f"vrrp.state.{instance}", body)
        self.refresh[f"vrrp.state.{instance}"] = refresh

    def publish_intent(self, instance: str, body: Mapping[str, Any]) -> None:
        self._retain(f"vrrp.intent.{instance}", body)

    def _retain(self, topic: str, body: Mapping[str, Any]) -> None:
        self.retained[topic] = body
        self.counts[topic] += 1

    def publish_event(self, instance: str, body: Mapping[str, Any]) -> None:
        self.events.append((f"vrrp.event.{instance}", body))

    def run_notify(self, jobs: list[Job]) -> None:
        self.jobs.extend(jobs)

    def fifo_write(self, line: str) -> None:
        self.fifo.append(line)

    def mail_alert(self, scope: str, name: str, state: str) -> None:
        self.mails.append((scope, name, state))

    def route(self, member: str, event: Event, now: float) -> None:
        self.groups.route(member, event, now)

    def wall_time(self) -> float:
        return self.wall

    def publish_waiting(self, instance: str, body: Mapping[str, Any]) -> None:
        self._retain(f"vrrp.state.{instance}", body)
        self.refresh.pop(f"vrrp.state.{instance}", None)

    def forget_state(self, instance: str) -> None:
        self.retained.pop(f"vrrp.state.{instance}", None)
        self.refresh.pop(f"vrrp.state.{instance}", None)

    def _group_notify(self, action: GroupNotify, resumed: bool) -> None:
        self.group_notes.append((action, resumed))

    def unclaimed(self, family: int, interface: str) -> Mapping[DropReason, int]:
        return self.unclaimed_counts.get((family, interface), {})

    def add(self, p: InstancePlan, link: Link, primary: IPAddress, sender: AdvertSender) -> Runner:
        """A Runner on this host, known to its sync group routing."""
        runner = Runner(self, p, link, primary, sender)
        self.runners[p.name] = runner
        return runner


def plans_of(config: str, interfaces: tuple[str, ...] = ("eth0",)) -> list[InstancePlan]:
    result = loads(config, script_env=None, interfaces=list(interfaces))
    assert result.exit_code == 0, result.problems
    return plan(result.config)


def runner_for(config: str, primary: IPv4Address) -> tuple[Runner, Wire, FakeHost]:
    """The one instance in ``config`` on eth0, not started."""
    (p,) = plans_of(config)
    host, wire = FakeHost(), Wire()
    return host.add(p, Link("eth0", 2, True), primary, wire), wire, host


# Typed so that mypy checks the fake implements the whole of both Protocols
_: type[RunnerHost] = FakeHost
_start: type[StartOutputs] = FakeHost
