"""Retained state whose body is rebuilt at each re-send (``Publisher.retain(refresh=...)``)."""

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


def test_periodic_and_late_joiner_resends_carry_the_current_body(bus: RuntimeDir) -> None:
    counters = {"drops": 0}

    def body() -> dict[str, Any]:
        return {"instance": "VI_1", "state": "BACKUP", "priority": 100, "drops": dict(counters)}

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        pub = Publisher(ctx, bus, "vrrpd", republish_interval=0.2)
        pub.start()
        pub.retain("vrrp.state.VI_1", body(), refresh=body)
        # Changes between publications, as receive counters do with every advert.
        counters["drops"] = 7
        sub = Subscriber(ctx, bus, ["vrrp.state.*"])
        sub.start()
        first = await next_event(sub, lambda e: True, 3)
        assert first.body["drops"] == {"drops": 7}  # the late joiner's copy is current
        counters["drops"] = 9
        later = await next_event(sub, lambda e: e.body["drops"] == {"drops": 9}, 3)
        assert later.body["state"] == "BACKUP"
        assert pub.retained()["vrrp.state.VI_1"]["drops"] == {"drops": 9}
        # A plain retain replaces the refresher: re-sends repeat that body from then on.
        pub.retain(
            "vrrp.state.VI_1", {"instance": "VI_1", "state": "MASTER", "priority": 100, "drops": {}}
        )
        counters["drops"] = 11
        await next_event(sub, lambda e: e.body["state"] == "MASTER", 3)
        again = await next_event(sub, lambda e: True, 3)
        assert again.body["drops"] == {}
        sub.close()
        await pub.close()
        ctx.term()

    asyncio.run(scenario())
