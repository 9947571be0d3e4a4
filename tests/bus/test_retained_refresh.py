"""Retained state: re-sent to whoever joins or asks again, on a timer only when asked to, and
rebuilt at each re-send when it has a ``refresh`` (``Publisher.retain``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
import zmq.asyncio

from bus import Publisher, RuntimeDir, Subscriber
from tests.daemon import next_event, running_bus, runtime_dir


@pytest.fixture
def bus() -> Iterator[RuntimeDir]:
    with runtime_dir() as rt, running_bus(rt):
        yield rt


def test_join_and_resync_resends_carry_the_current_body(bus: RuntimeDir) -> None:
    counters = {"drops": 0}

    def body() -> dict[str, Any]:
        return {"instance": "VI_1", "state": "BACKUP", "priority": 100, "drops": dict(counters)}

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        pub = Publisher(ctx, bus, "vrrpd")
        pub.start()
        pub.retain("vrrp.state.VI_1", body(), refresh=body)
        # Changes between publications, as receive counters do with every advert.
        counters["drops"] = 7
        sub = Subscriber(ctx, bus, ["vrrp.state.*"])
        sub.start()
        first = await next_event(sub, lambda e: True, 3)
        assert first.body["drops"] == {"drops": 7}  # the late joiner's copy is current
        counters["drops"] = 9
        sub.resync("vrrp.state.VI_1")  # nothing changed, nothing is periodic: we ask
        later = await next_event(sub, lambda e: True, 3)
        assert later.body["drops"] == {"drops": 9}
        assert pub.retained()["vrrp.state.VI_1"]["drops"] == {"drops": 9}
        # A plain retain replaces the refresher: re-sends repeat that body from then on.
        pub.retain(
            "vrrp.state.VI_1", {"instance": "VI_1", "state": "MASTER", "priority": 100, "drops": {}}
        )
        counters["drops"] = 11
        await next_event(sub, lambda e: e.body["state"] == "MASTER", 3)
        sub.resync("vrrp.state.*")
        again = await next_event(sub, lambda e: True, 3)
        assert again.body["drops"] == {}
        # The resync left the subscription as it was: later changes still arrive.
        pub.retain("vrrp.state.VI_1", {"instance": "VI_1", "state": "FAULT", "priority": 0})
        assert (await next_event(sub, lambda e: True, 3)).body["state"] == "FAULT"
        sub.close()
        await pub.close()
        ctx.term()

    asyncio.run(scenario())


def test_only_state_retained_with_repeat_is_resent_on_a_timer(bus: RuntimeDir) -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        pub = Publisher(ctx, bus, "checkd", repeat_interval=0.05)
        pub.start()
        pub.retain("health.web", {"name": "web", "ok": True}, repeat=True)
        pub.retain("vrrp.state.VI_1", {"instance": "VI_1", "state": "MASTER", "priority": 100})
        sub = Subscriber(ctx, bus, ["health.*", "vrrp.state.*"])
        sub.start()
        seen: list[str] = []
        while seen.count("health.web") < 5:
            seen += [e.topic for e in await asyncio.wait_for(sub.recv_batch(), 3)]
        assert seen.count("vrrp.state.VI_1") == 1  # the join's copy, and no timer re-sends it
        # Retained again without repeat: no longer on the timer.
        pub.retain("health.web", {"name": "web", "ok": False})
        await next_event(sub, lambda e: e.topic == "health.web" and not e.body["ok"], 3)
        pub.retain("health.db", {"name": "db", "ok": True}, repeat=True)
        seen = []
        while seen.count("health.db") < 5:
            seen += [e.topic for e in await asyncio.wait_for(sub.recv_batch(), 3)]
        assert "health.web" not in seen
        sub.close()
        await pub.close()
        ctx.term()

    asyncio.run(scenario())


def test_each_repeated_topic_is_re_sent_at_its_own_period(bus: RuntimeDir) -> None:
    """checkd re-sends a 1 s script's verdict every second and a 30 s one's every 5 s: a
    topic retained with a number is repeated at that period, the others at the default."""

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        pub = Publisher(ctx, bus, "checkd", repeat_interval=3600)
        pub.start()
        pub.retain("health.fast", {"name": "fast", "ok": True}, repeat=0.05)
        pub.retain("health.slow", {"name": "slow", "ok": True}, repeat=True)
        pub.retain("health.later", {"name": "later", "ok": True}, repeat=3600.0)
        sub = Subscriber(ctx, bus, ["health.*"])
        sub.start()
        seen: list[str] = []
        while seen.count("health.fast") < 5:
            seen += [e.topic for e in await asyncio.wait_for(sub.recv_batch(), 3)]
        # the join's copies only: their periods are an hour away
        assert (seen.count("health.slow"), seen.count("health.later")) == (1, 1)
        # Forgotten: its period's timer goes on for the others without it.
        pub.forget("health.fast")
        pub.retain("health.other", {"name": "other", "ok": True}, repeat=0.05)
        seen = []
        while seen.count("health.other") < 3:
            seen += [e.topic for e in await asyncio.wait_for(sub.recv_batch(), 3)]
        assert seen.count("health.fast") <= 1  # at most one already on its way
        sub.close()
        await pub.close()
        ctx.term()

    asyncio.run(scenario())


def test_state_retained_before_the_publisher_is_connected_still_arrives(bus: RuntimeDir) -> None:
    """The publisher's own slow-joiner problem: its first send goes nowhere (no subscription
    has reached it yet); the subscriptions the broker hands it on connecting bring it back."""

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        sub = Subscriber(ctx, bus, ["demo.*"])
        sub.start()
        pub = Publisher(ctx, bus, "core")
        pub.start()
        pub.retain("demo.current", {"generation": 1})  # before any subscription arrived
        event = await next_event(sub, lambda e: True, 3)
        assert (event.topic, event.body["generation"]) == ("demo.current", 1)
        sub.close()
        await pub.close()
        ctx.term()

    asyncio.run(scenario())
