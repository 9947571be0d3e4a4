"""The resume window ends on netd's ``net.held`` (issue #15): an instance netd holds nothing
for starts as soon as vrrpd knows it, one netd holds still waits for its report.

vrrpd.starter on the fake host inside a running loop; every step runs without yielding to
the loop, so the window's own timer cannot fire in between: what starts an instance here is
the message fed, never the window running out."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from ipaddress import IPv4Address

from structlog.testing import capture_logs

from bus.messages import Applied, Held, Intent
from tests.vrrpd.fakes import ONE_INSTANCE, FakeHost, Wire, plans_of
from vrrpd.links import Link
from vrrpd.machine import State
from vrrpd.plan import InstancePlan
from vrrpd.runner import Runner
from vrrpd.starter import Starter

ME = IPv4Address("192.0.2.11")
ETH0 = Link("eth0", 2, True, (ipaddress.ip_interface("192.0.2.11/24"),))


class Node:
    """A Starter on the fake host whose window opened at the loop's now."""

    def __init__(self, options: str = "") -> None:
        self.host = FakeHost()
        (self.plan,) = plans_of(ONE_INSTANCE.format(options=options))
        self.pending: list[float] = []  # when the starter asked to start pending instances
        self.starter = Starter(self.host.runners, self.host, self.pending.append)
        self.now = asyncio.get_running_loop().time()
        self.starter.open_window(self.now)

    def start(self) -> Runner:
        """The instance's sockets are open (vrrpd.engine._start_pending)."""
        runner = self.host.add(self.plan, ETH0, ME, Wire())
        self.starter.started(runner, self.now)
        return runner

    def applied(self, runner: Runner, items: int) -> None:
        owner = f"vrrp:{runner.name}"
        report = Applied(owner, 3, (), items=items, fingerprint=runner.fingerprint)
        self.starter.applied_changed(report)


def state(runner: Runner) -> State:
    return runner.machine.state


def in_loop(test: Callable[[], None]) -> Callable[[], None]:
    """Run ``test`` inside a loop (the starter arms the window's timer on it)."""

    async def body() -> None:
        test()

    return lambda: asyncio.run(body())


@in_loop
def test_a_cold_start_begins_when_netd_says_it_holds_nothing_not_when_the_window_ends() -> None:
    node = Node()
    runner = node.start()
    assert state(runner) is State.INIT and node.starter.awaiting == {"VI_1"}
    with capture_logs() as logs:
        node.starter.held_changed(Held(()))
    assert state(runner) is State.BACKUP and not runner.machine.resuming
    assert not node.starter.awaiting
    (said,) = [e for e in logs if e["event"] == "vrrpd.instance.not_resumed"]
    assert said["reason"] == "netd reported nothing held for it"


@in_loop
def test_net_held_heard_before_the_instance_can_start_lets_it_start_at_once() -> None:
    node = Node()
    node.starter.held_changed(Held(("vrrp:VI_2",)))  # another instance's items: not ours
    with capture_logs() as logs:
        runner = node.start()
    assert state(runner) is State.BACKUP and not node.starter.awaiting
    assert "vrrpd.instance.not_resumed" in [e["event"] for e in logs]


@in_loop
def test_an_instance_netd_holds_still_waits_for_its_report_and_resumes() -> None:
    node = Node()
    node.starter.held_changed(Held(("vrrp:VI_1",)))
    runner = node.start()
    assert state(runner) is State.INIT and node.starter.awaiting == {"VI_1"}
    node.applied(runner, items=1)
    assert runner.machine.resuming and not node.starter.awaiting


@in_loop
def test_the_report_before_net_held_still_resumes() -> None:
    """The order of retained re-sends is not guaranteed: the report alone decides."""
    node = Node()
    runner = node.host.add(node.plan, ETH0, ME, Wire())
    node.applied(runner, items=1)
    node.starter.started(runner, node.now)
    assert runner.machine.resuming
    node.starter.held_changed(Held(("vrrp:VI_1",)))
    assert runner.machine.resuming


@in_loop
def test_a_missing_vmac_is_asked_for_once_netd_says_it_holds_nothing() -> None:
    """Within the window a missing VMAC is not asked for (the empty intent would withdraw
    what a quick restart resumes); once net.held leaves the instance out, it is."""
    node = Node("    use_vmac")
    plans: dict[str, InstancePlan] = {node.plan.name: node.plan}
    links = {"eth0": ETH0}
    assert node.starter.ready(node.now, plans, links) == []
    assert "vrrp.intent.VI_1" not in node.host.retained
    node.starter.held_changed(Held(()))
    assert len(node.pending) == 1  # the engine calls ready() again now
    assert node.starter.ready(node.now, plans, links) == []
    intent = Intent.decode("vrrp.intent.VI_1", node.host.retained["vrrp.intent.VI_1"])
    assert not intent.held and intent.items == () and intent.vmac is not None
