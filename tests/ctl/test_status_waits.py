"""`pykeepalivedctl status` waits for every component it hears to finish re-sending its state
(`bus.synced.<publisher>` markers, docs/bus.md), on a real broker with real publishers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import zmq
import zmq.asyncio

from bus import Event, Publisher, RuntimeDir, Stamper, Subscriber, encode, topics
from ctl import snapshot
from tests.daemon import next_event, running_bus, runtime_dir

STATE = {"instance": "VI_9", "state": "MASTER", "priority": 100}


def _heartbeat_socket(ctx: zmq.asyncio.Context, runtime: RuntimeDir) -> zmq.asyncio.Socket:
    """A component's heartbeat without our Publisher: it never marks its re-sends."""
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(runtime.pub_endpoint)
    return sock


@pytest.fixture
def bus() -> Iterator[RuntimeDir]:
    with runtime_dir() as rt, running_bus(rt):
        yield rt


def test_a_publisher_answers_a_fence_after_re_sending_what_came_before_it(
    bus: RuntimeDir,
) -> None:
    async def scenario() -> list[str]:
        ctx = zmq.asyncio.Context()
        pub = Publisher(ctx, bus, "vrrpd")
        pub.start()
        pub.retain("vrrp.state.VI_9", STATE)
        other = Subscriber(ctx, bus, ["bus.synced.*", topics.fence("other")])
        other.start()  # someone else's fence, answered too, but not ours
        await next_event(other, lambda e: e.topic == "bus.synced.vrrpd", 5)
        sub = Subscriber(ctx, bus, ["bus.synced.*", "vrrp.state.*", topics.fence("ours")])
        sub.start()
        seen: list[str] = []

        def note(e: Event) -> bool:
            if e.topic.startswith("bus.synced.") and e.topic != "bus.synced.vrrpd":
                return False  # another publisher's answer (the broker's own may come first)
            seen.append(f"{e.topic} {e.body.get('fence', '')}".strip())
            return e.body.get("fence") == topics.fence("ours")

        await next_event(sub, note, 5)
        for s in (other, sub):
            s.close()
        await pub.close()
        ctx.term()
        return seen

    assert asyncio.run(scenario()) == [
        "vrrp.state.VI_9",
        f"bus.synced.vrrpd {topics.fence('ours')}",
    ]


def test_status_waits_for_a_component_heard_but_late_with_its_state(bus: RuntimeDir) -> None:
    async def scenario() -> tuple[snapshot.Snapshot, float]:
        ctx = zmq.asyncio.Context()
        heartbeat = _heartbeat_socket(ctx, bus)
        stamper = Stamper("late")

        async def beat() -> None:
            while True:
                body = {"name": "late", "uptime": 1.0}
                heartbeat.send_multipart(encode("hb.late", body, stamper.next("hb.late")))
                await asyncio.sleep(0.1)

        async def join_late() -> Publisher:
            await asyncio.sleep(1.0)  # after the listen window: only the markers wait for it
            pub = Publisher(ctx, bus, "late")
            pub.retain("vrrp.state.VI_9", STATE)
            pub.start()
            return pub

        beats = asyncio.create_task(beat())
        joining = asyncio.create_task(join_late())
        started = time.monotonic()
        snap = await snapshot.collect(bus, listen=0.4, settle=10.0)
        took = time.monotonic() - started
        beats.cancel()
        await (await joining).close()
        heartbeat.close()
        ctx.term()
        return snap, took

    snap, took = asyncio.run(scenario())
    assert snap.instances.get("VI_9", {}).get("state") == "MASTER", (snap, took)
    assert snap.unsynced == []
    assert took < 10.0  # done when the marker came, not at the end of the settle time


def test_status_names_a_component_that_never_finishes(bus: RuntimeDir) -> None:
    async def scenario() -> snapshot.Snapshot:
        ctx = zmq.asyncio.Context()
        heartbeat = _heartbeat_socket(ctx, bus)
        stamper = Stamper("mute")

        async def beat() -> None:
            while True:
                body = {"name": "mute", "uptime": 1.0}
                heartbeat.send_multipart(encode("hb.mute", body, stamper.next("hb.mute")))
                await asyncio.sleep(0.1)

        beats = asyncio.create_task(beat())
        snap = await snapshot.collect(bus, listen=0.3, settle=0.5)
        beats.cancel()
        heartbeat.close()
        ctx.term()
        return snap

    snap = asyncio.run(scenario())
    assert snap.unsynced == ["mute"]
    assert "mute" in snap.components
    assert snap.to_json()["incomplete"] == ["mute"]
    table = snapshot.status_table(snap)
    assert "incomplete: mute did not finish re-sending its state" in table
