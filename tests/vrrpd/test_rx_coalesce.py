"""The engine's receive pacing: a busy socket is read every RX_COALESCE, nothing is lost, and a
master-down timer first reads what waits in a paused socket."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address
from typing import Any, cast

from bus import Component
from vrrpd.engine import RX_COALESCE, Engine
from vrrpd.runner import Runner
from vrrpd.sockets import Datagram, Receiver
from vrrpd.validate import IpFacts

VRID = 7
FACTS = IpFacts(IPv4Address("192.0.2.20"), IPv4Address("224.0.0.18"), 255, 8)


class FakeReceiver:
    """A Receiver whose datagrams the test queues; readable while any wait (a socketpair)."""

    family, ifname = 4, "eth0"

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.queue: list[Datagram] = []
        self.reads = 0

    def fileno(self) -> int:
        return self.ours.fileno()

    def arrive(self, n: int) -> None:
        self.queue += [_advert() for _ in range(n)]
        self.theirs.send(b"x")

    def drain(self) -> list[Datagram]:
        self.reads += 1
        self.ours.setblocking(False)
        try:
            while self.ours.recv(4096):
                pass
        except BlockingIOError:
            pass
        out, self.queue = self.queue, []
        return out

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


class FakeRunner:
    """Counts adverts; each one re-arms master-down (as a backup's master's advert does)."""

    def __init__(self, engine: Engine, rearm: bool) -> None:
        self.engine, self.rearm = engine, rearm
        self.received: list[float] = []
        self.fired: list[str] = []

    def receive(self, dgram: Datagram, now: float) -> None:
        self.received.append(now)
        if self.rearm:
            self.engine.timers.set("VI_1", "master_down", now + 1.0)

    def timer_fired(self, timer: str, now: float) -> None:
        self.fired.append(timer)


def engine_with(rearm: bool) -> tuple[Engine, FakeReceiver, FakeRunner]:
    engine = Engine(cast(Component, object()))
    rx = FakeReceiver()
    runner = FakeRunner(engine, rearm)
    engine.runners["VI_1"] = cast(Runner, runner)
    engine.by_vrid[("eth0", 4, VRID)] = cast(Runner, runner)
    engine.receivers[(4, "eth0")] = cast(Receiver, rx)
    engine.loop.add_reader(rx.fileno(), engine._readable, cast(Receiver, rx))
    return engine, rx, runner


def close(engine: Engine, rx: FakeReceiver) -> None:
    for handle in engine._rx_paused.values():
        handle.cancel()
    engine.loop.remove_reader(rx.fileno())
    engine.timers.close()
    rx.close()


async def wait_for(cond: Any, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.001)


async def pause(engine: Engine, rx: FakeReceiver, runner: FakeRunner) -> None:
    """Two reads in quick succession pause the socket."""
    while not engine._rx_paused:
        rx.arrive(1)
        want = len(runner.received) + 1
        await wait_for(lambda want=want: len(runner.received) == want)


def test_a_busy_socket_is_read_in_one_go_later_and_every_datagram_arrives() -> None:
    async def scenario() -> tuple[int, int]:
        engine, rx, runner = engine_with(rearm=False)
        try:
            await pause(engine, rx, runner)
            reads, heard = rx.reads, len(runner.received)
            for _ in range(10):  # ten wake-ups' worth while paused
                rx.arrive(1)
            await wait_for(lambda: len(runner.received) == heard + 10)
            return rx.reads - reads, len(runner.received) - heard
        finally:
            close(engine, rx)

    assert asyncio.run(scenario()) == (1, 10)


def test_a_quiet_socket_is_read_at_once() -> None:
    async def scenario() -> list[bool]:
        engine, rx, runner = engine_with(rearm=False)
        try:
            paused = []
            for n in range(1, 4):
                await asyncio.sleep(2 * RX_COALESCE)
                rx.arrive(1)
                await wait_for(lambda n=n: len(runner.received) == n)
                paused.append(bool(engine._rx_paused))
            return paused
        finally:
            close(engine, rx)

    assert asyncio.run(scenario()) == [False, False, False]


def test_master_down_reads_a_paused_socket_first() -> None:
    async def scenario(rearm: bool) -> list[str]:
        engine, rx, runner = engine_with(rearm)
        try:
            await pause(engine, rx, runner)
            heard = len(runner.received)
            rx.queue.append(_advert())  # arrives while paused
            engine.timers.cancel("VI_1", "master_down")  # as the heap does before it fires
            engine._timer_fired("VI_1", "master_down", engine.now())
            assert len(runner.received) == heard + 1  # the waiting advert was handled first
            return runner.fired
        finally:
            close(engine, rx)

    assert asyncio.run(scenario(rearm=True)) == []  # it re-armed the timer: no take-over
    assert asyncio.run(scenario(rearm=False)) == ["master_down"]


def _advert() -> Datagram:
    return Datagram(bytes([0x31, VRID, 100, 1]) + bytes(4), FACTS, "eth0")


def test_a_receive_socket_has_room_for_every_instances_advert_at_once() -> None:
    rx = Receiver(4, "lo", socket.if_nametoindex("lo"))  # opened only, nothing is sent
    try:
        # 255 adverts queued while the socket is paused, at up to 2 kB of accounting each
        assert rx.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 255 * 2048
    finally:
        rx.close()
