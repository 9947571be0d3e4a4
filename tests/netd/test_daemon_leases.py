"""The daemon's lease path without a kernel: intents and renewals in through the dispatcher,
a fake clock, and what a lapse does to the owner and its ``net.applied`` report. (The
policy itself is in tests/netd/test_leases.py; the real thing, with processes killed, in
tests/netd/test_daemon_failures.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
import zmq.asyncio
from structlog.testing import capture_logs

import netd.daemon
from bus import RuntimeDir, Subscriber, envelope, schemas
from bus.envelope import Envelope, Event, Stamper
from bus.messages import Heartbeat, Held, Intent, IntentItem, Renew
from bus.wirefields import Message
from netd.daemon import NetDaemon
from netd.errors import KernelError
from netd.kernel import ApplyResult
from netd.leases import HOLD_AFTER_BUS, Leases
from tests.netd.test_leases import Clock

OWNER = "vrrp:VI_1"
VIP = IntentItem("vip", {"address": "192.0.2.100/24"})


@dataclass
class Publisher:
    retained: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: every retain and publish in order: (topic, body)
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def retain(self, topic: str, body: dict[str, Any]) -> None:
        self.retained[topic] = body
        self.sent.append((topic, body))

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        self.published.append((topic, body))
        self.sent.append((topic, body))

    def forget(self, topic: str) -> None:
        self.retained.pop(topic, None)


@dataclass
class Node:
    daemon: NetDaemon
    publisher: Publisher
    clock: Clock
    dirty: list[float]

    def send(self, topic: str, msg: Message | None, boot: str = "boot-a") -> None:
        """As the subscriber hands it over: the body through msgpack, in an envelope."""
        body = msgpack.unpackb(msgpack.packb(msg.encode() if msg else {}))
        env = Envelope(1, "vrrpd", 1, boot, 0, self.clock.now)
        self.daemon._dispatch(Event(topic, env, body, checked=schemas.check(topic, body)))

    def intent(self, generation: int, boot: str = "boot-a", *, held: bool = True) -> None:
        intent = Intent(
            "VI_1",
            generation,
            (VIP,) if held else (),
            lease=1.0,
            held=held,
            interface="eth0",
            fingerprint=f"fp{generation}",
        )
        self.send("vrrp.intent.VI_1", intent, boot)

    def renew(self, generation: int, boot: str = "boot-a") -> None:
        self.send("vrrp.renew", Renew({"VI_1": (generation, 1.0)}), boot)

    def heartbeat(self) -> None:
        self.send("hb.core", Heartbeat("core", 1.0))

    def wake(self, at: float) -> None:
        """Run the clock to ``at`` with heartbeats, waking when the daemon would."""
        while True:
            wake = self.daemon.leases.next_wakeup()
            step = min(self.clock.now + 0.25, at, *([wake] if wake is not None else []))
            self.clock.now = step = max(step, self.clock.now)
            if wake is not None and step >= wake:
                self.daemon._leases_due()
            else:
                self.heartbeat()
            if step >= at:
                return


@pytest.fixture
def node() -> Iterator[Node]:
    publisher = Publisher()
    # a Component with only the publisher the lease path touches
    daemon = NetDaemon(SimpleNamespace(publisher=publisher))  # type: ignore[arg-type]
    clock = Clock()
    daemon.leases = Leases(daemon.store, clock)
    daemon.leases.end_grace()
    dirty: list[float] = []
    # no kernel: record when a reconcile would run instead of running one
    # (method-assign: the instance's methods are replaced on purpose)
    daemon._mark_dirty = lambda: dirty.append(clock.now)  # type: ignore[method-assign]
    daemon._arm_leases = lambda: None  # type: ignore[method-assign]  # the test wakes it
    try:
        yield Node(daemon, publisher, clock, dirty)
    finally:
        daemon._netlink.shutdown(wait=True)
        daemon.monitor.close()


def test_an_unrenewed_intent_lapses_at_its_lease_end_and_says_so(node: Node) -> None:
    node.intent(1)
    state = node.daemon.owners.of(OWNER)
    assert state.held and state.master and state.fingerprint == "fp1"
    node.daemon._report(ApplyResult())
    assert "net.applied.vrrp:VI_1" in node.publisher.retained
    node.dirty.clear()
    node.wake(100.99)
    assert node.daemon.store.owners() == [OWNER]
    node.wake(101.0)
    assert node.daemon.store.owners() == []
    assert (state.held, state.master, state.fingerprint, state.published) == (
        False,
        False,
        "",
        None,
    )
    assert node.dirty == [101.0]  # the reconcile withdraws the VIP
    assert "net.applied.vrrp:VI_1" not in node.publisher.retained
    topic, body = node.publisher.published[-1]
    assert topic == "net.applied.vrrp:VI_1" and body["expired"] and body["items"] == 0


def test_renewals_of_the_held_generation_from_the_same_start_keep_it(node: Node) -> None:
    node.intent(2)
    for _ in range(6):  # 3 s of renewals every 0.5 s
        node.wake(node.clock.now + 0.5)
        node.renew(2)
    node.renew(3)  # a generation netd never got: no extension
    node.renew(2, boot="boot-b")  # another vrrpd start: none either
    node.wake(node.clock.now + 0.99)
    assert node.daemon.owners.of(OWNER).held
    node.wake(node.clock.now + 0.01)
    assert not node.daemon.owners.of(OWNER).held


def test_a_silent_bus_holds_the_lease_until_after_it_is_back(node: Node) -> None:
    node.intent(1)
    node.clock.now = 101.5  # nothing heard for 1.5 s: the bus is silent
    node.daemon._leases_due()
    assert node.daemon.owners.of(OWNER).held
    node.clock.now = 104.0
    node.heartbeat()  # the bus is back; the renewals it held back are on their way
    node.wake(104.0 + HOLD_AFTER_BUS - 0.01)
    assert node.daemon.owners.of(OWNER).held
    node.wake(104.0 + HOLD_AFTER_BUS)
    assert not node.daemon.owners.of(OWNER).held


def held(node: Node) -> tuple[str, ...]:
    return Held.decode("net.held", node.publisher.retained["net.held"]).owners


def test_a_starting_netd_says_it_holds_nothing_before_it_touches_the_kernel(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a cold start a starting vrrpd need not sit out its resume window (issue #15)."""

    def no_kernel(path: object) -> None:
        raise KernelError("open", 2, "ENOENT", "no kernel in this test")

    # a runtime with only the path the daemon reads
    node.daemon.comp.runtime = SimpleNamespace(path="/nonexistent")  # type: ignore[assignment]
    monkeypatch.setattr(netd.daemon, "KernelAdapter", no_kernel)
    with pytest.raises(KernelError):
        asyncio.run(node.daemon.run())
    assert held(node) == ()


def test_net_held_names_an_instance_from_its_intent_until_its_lease_runs_out(node: Node) -> None:
    node.intent(1, held=False)  # a backup's intent holds nothing
    assert "net.held" not in node.publisher.retained
    node.intent(2)
    assert held(node) == (OWNER,)  # before the reconcile: its report is coming
    node.daemon._report(ApplyResult())
    node.wake(101.0)
    assert held(node) == ()
    # The last word on it: the expired report, then net.held without it.
    (expired,) = [i for i, (_, body) in enumerate(node.publisher.sent) if body.get("expired")]
    assert node.publisher.sent[-1] == ("net.held", {"owners": []})
    assert expired < len(node.publisher.sent) - 1


class Asked:
    """Stands in for netd's bus subscriber: records what it asks the owners to re-send."""

    def __init__(self) -> None:
        self.patterns: list[tuple[str, ...]] = []

    def resync(self, *patterns: str) -> None:
        self.patterns.append(patterns)


def test_a_renewal_naming_an_intent_netd_lacks_asks_vrrpd_for_it_again(node: Node) -> None:
    """Nothing re-sends an intent on a timer: a lost last copy is asked for (docs/bus.md)."""
    asked = Asked()
    # a subscriber stand-in that records what the daemon asks for
    node.daemon._sub = asked  # type: ignore[assignment]
    node.intent(2)
    node.renew(2)
    assert asked.patterns == []
    node.renew(3)  # generation 3 was lost on the way
    node.renew(3)  # asked at most once a second
    assert asked.patterns == [("vrrp.intent.VI_1",)]
    node.clock.now += 1.0
    node.renew(3)
    assert len(asked.patterns) == 2
    node.intent(3)
    node.renew(3)
    assert len(asked.patterns) == 2


def test_garbage_on_the_bus_is_counted_each_time_and_logged_once_per_sender(node: Node) -> None:
    """docs/bus.md (untrusted input): every bad message is counted and the sender named, but a
    publisher sending garbage in a loop cannot flood the log."""

    def garbage(src: str) -> None:
        env = Envelope(1, src, 1, "boot-x", 0, node.clock.now)
        node.daemon._dispatch(Event("vrrp.intent.VI_1", env, {"instance": 7}))

    with capture_logs() as logs:
        for _ in range(50):
            garbage("rogue")
        garbage("other")
    invalid = [e for e in logs if e["event"] == "netd.input.invalid"]
    assert [(e["src"], e["count"], e["held_back"]) for e in invalid] == [
        ("rogue", 1, 0),
        ("other", 51, 0),
    ]
    assert invalid[0]["reason"].startswith("MessageRejected")
    assert node.daemon.invalid.counts["vrrp"] == 51
    assert node.dirty == []  # nothing of it reached the kernel's desired state


def test_a_renewal_is_checked_once_and_a_bad_one_still_refused_saying_why(
    node: Node, tmp_path: Path
) -> None:
    """The subscriber's schema check decodes the leases and netd takes them as they are
    (docs/bus.md, "Topics"): a malformed renewal is still dropped naming the bad part, and one
    with an implausible lease still refused by netd naming the sender."""
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, RuntimeDir(tmp_path), ["vrrp.renew"])  # never connected: fed by hand
    stamper = Stamper("vrrpd")

    def received(leases: object) -> Event | None:
        frames = envelope.encode("vrrp.renew", {"leases": leases}, stamper.next("vrrp.renew"))
        return sub.accept(frames)

    node.intent(2)
    try:
        with capture_logs() as logs:
            assert received({"VI_1": [2, "x"]}) is None
            implausible = received({"VI_1": [2, -1.0]})
            assert implausible is not None
            node.daemon._dispatch(implausible)
            renewal = received({"VI_1": [2, 1.0]})
            assert renewal is not None and renewal.checked is not None
            node.clock.now += 0.9
            node.daemon._dispatch(renewal)
    finally:
        sub.close()
        ctx.term()
    dropped = [(e["reason"], e["detail"]) for e in logs if e["event"] == "bus.dropped"]
    assert dropped == [
        ("schema", "vrrp.renew: field 'leases['VI_1'][1]' is str, expected a finite number")
    ]
    invalid = [e for e in logs if e["event"] == "netd.input.invalid"]
    assert [(e["topic"], e["src"]) for e in invalid] == [("vrrp.renew", "vrrpd")]
    assert "lease of 'VI_1'" in invalid[0]["reason"]
    node.wake(node.clock.now + 0.9)  # past the first lease: the renewal extended it
    assert node.daemon.owners.of(OWNER).held
