"""Netlink monitor: real kernel events become typed values, usable from asyncio."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netd import NETD_PROTO, Address, KernelAdapter, Route
from netd.monitor import AddrEvent, Event, LinkEvent, Monitor, Overflow, RouteEvent
from tests.lab import Node, wait_until

pytestmark = pytest.mark.netns


@pytest.fixture
def mon(node: Node) -> Iterator[Monitor]:
    with node.inside():
        m = Monitor()
    try:
        yield m
    finally:
        m.close()


def _collect(
    mon: Monitor, want: type, pred: Callable[[Any], bool], timeout: float = 3.0
) -> list[Event]:
    seen: list[Event] = []

    def got() -> bool:
        seen.extend(mon.poll(0.05))
        return any(isinstance(e, want) and pred(e) for e in seen)

    wait_until(got, timeout, 0.0, f"{want.__name__} event")
    return seen


def test_address_added_and_removed_events(node: Node, mon: Monitor) -> None:
    with node.inside():
        ka = KernelAdapter()
    try:
        vip = Address("192.0.2.100", 32, "eth0")
        ka.reconcile([vip])
        events = _collect(mon, AddrEvent, lambda e: e.added and e.ip == "192.0.2.100")
        (ev,) = [e for e in events if isinstance(e, AddrEvent) and e.ip == "192.0.2.100"]
        assert ev.prefix == 32 and ev.family == socket.AF_INET and ev.proto == NETD_PROTO
        assert ev.ifindex == node.ifindex()
        ka.reconcile([])
        _collect(mon, AddrEvent, lambda e: not e.added and e.ip == "192.0.2.100")
    finally:
        ka.close()


def test_operator_deleting_a_vip_is_seen(node: Node, mon: Monitor) -> None:
    with node.inside():
        ka = KernelAdapter()
    try:
        ka.reconcile([Address("2001:db8::100", 128, "eth0")])
        node.run(["ip", "addr", "del", "2001:db8::100/128", "dev", "eth0"])
        _collect(mon, AddrEvent, lambda e: not e.added and e.ip == "2001:db8::100")
    finally:
        ka.close()


def test_link_down_and_up_events(node: Node, mon: Monitor) -> None:
    node.run(["ip", "link", "set", "eth0", "down"])
    _collect(mon, LinkEvent, lambda e: e.ifname == "eth0" and not e.up and not e.usable)
    node.run(["ip", "link", "set", "eth0", "up"])
    _collect(mon, LinkEvent, lambda e: e.ifname == "eth0" and e.usable)


def test_route_events(node: Node, mon: Monitor) -> None:
    with node.inside():
        ka = KernelAdapter()
    try:
        ka.reconcile([Route("198.51.100.0/24", via="192.0.2.1", table=100)])
        events = _collect(mon, RouteEvent, lambda e: e.added and e.dst == "198.51.100.0/24")
        ev = next(e for e in events if isinstance(e, RouteEvent) and e.dst == "198.51.100.0/24")
        assert ev.table == 100 and ev.proto == NETD_PROTO and ev.via == "192.0.2.1"
    finally:
        ka.close()


def test_asyncio_add_reader_delivers_events(node: Node, mon: Monitor) -> None:
    async def main() -> LinkEvent:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def readable() -> None:
            for ev in mon.read():
                queue.put_nowait(ev)

        loop.add_reader(mon.fileno(), readable)
        try:
            # A VMAC-like interface appearing: any new link will do.
            await loop.run_in_executor(
                None, node.run, ["ip", "link", "add", "vx0", "type", "veth", "peer", "vx1"]
            )
            while True:
                ev = await asyncio.wait_for(queue.get(), 3)
                if isinstance(ev, LinkEvent) and ev.ifname == "vx0":
                    return ev
        finally:
            loop.remove_reader(mon.fileno())

    ev = asyncio.run(main())
    assert ev.ifindex == node.ifindex("vx0") and not ev.removed


def test_overflow_is_reported_so_the_consumer_resyncs(node: Node) -> None:
    with node.inside():
        small = Monitor(rcvbuf=4096)  # the kernel doubles it; still far too small
        ka = KernelAdapter()
    try:
        ka.reconcile([Address(f"198.51.100.{i}", 32, "eth0") for i in range(1, 200)])
        events = small.read()
        assert any(isinstance(e, Overflow) for e in events)
        assert small.overflows >= 1
        small.read()  # drain what survived the overflow
        node.run(["ip", "addr", "add", "203.0.113.1/32", "dev", "eth0"])
        _collect(small, AddrEvent, lambda e: e.ip == "203.0.113.1")  # still usable
    finally:
        small.close()
        ka.close()
