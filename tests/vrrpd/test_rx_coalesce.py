"""The socket pool's receive pacing: a busy socket is read every RX_COALESCE, nothing is lost,
and a master-down timer first reads what waits in a paused socket.

The receive socket is a fake over a socketpair (readable while datagrams wait), so the test
controls exactly what arrives when; the real Receiver's buffer is checked at the end."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address
from typing import Any, cast

from vrrpd.socket_pool import RX_COALESCE, SocketPool
from vrrpd.sockets import Datagram, Receiver
from vrrpd.timers import TimerHeap
from vrrpd.validate import IpFacts

VRID = 7
FACTS = IpFacts(IPv4Address("192.0.2.20"), IPv4Address("224.0.0.18"), 255, 8)


class FakeReceiver:
    """A Receiver whose datagrams the test queues; readable while any wait (a socketpair)."""

    family, ifname = 4, "eth0"

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.queue: list[Datagram] = []
        self.decoded: dict[bytes, Datagram] = {}
        self.serial = 0
        self.reads = 0

    def fileno(self) -> int:
        return self.ours.fileno()

    def arrive(self, n: int) -> None:
        self.queue += [_advert() for _ in range(n)]
        self.theirs.send(b"x")

    def drain_keys(self) -> list[bytes]:
        self.reads += 1
        self.ours.setblocking(False)
        try:
            while self.ours.recv(4096):
                pass
        except BlockingIOError:
            pass
        out, self.queue = self.queue, []
        # One key per datagram (as if each had another IP identification...), so that every
        # one reaches the listener's receive.
        keys = []
        for dgram in out:
            self.serial += 1
            keys.append(self.serial.to_bytes(4, "big"))
            self.decoded[keys[-1]] = dgram
        return keys

    def datagram(self, key: bytes) -> Datagram | None:
        return self.decoded.pop(key)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


class Listener:
    """Counts adverts; each one re-arms master-down (as a backup's master's advert does)."""

    def __init__(self, timers: TimerHeap, rearm: bool) -> None:
        self.timers, self.rearm = timers, rearm
        self.received: list[float] = []

    def receive(self, dgram: Datagram, now: float) -> None:
        self.received.append(now)
        if self.rearm:
            self.timers.set("VI_1", "master_down", now + 1.0)

    def receive_repeat(self, key: bytes, now: float) -> bool:
        return False  # every datagram goes through receive

    def receive_ah(self, raw: bytes, now: float) -> None:
        raise AssertionError("no AH here")


class Pool:
    """A SocketPool reading one fake receive socket for one listener."""

    def __init__(self, rearm: bool) -> None:
        self.timers = TimerHeap(lambda instance, timer, now: None)
        self.sockets = SocketPool(lambda: False)
        self.rx = FakeReceiver()
        self.listener = Listener(self.timers, rearm)
        self.sockets.listeners[("eth0", 4, VRID)] = self.listener
        self.sockets.watch(cast(Receiver, self.rx))  # the fake has what the pool uses of one

    def close(self) -> None:
        self.sockets.close()  # closes the fake receiver too
        self.timers.close()


async def wait_for(cond: Any, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.001)


async def pause(pool: Pool) -> None:
    """Two reads in quick succession pause the socket."""
    while not pool.sockets.paused:
        pool.rx.arrive(1)
        want = len(pool.listener.received) + 1
        await wait_for(lambda want=want: len(pool.listener.received) == want)


def test_a_busy_socket_is_read_in_one_go_later_and_every_datagram_arrives() -> None:
    async def scenario() -> tuple[int, int]:
        pool = Pool(rearm=False)
        rx, received = pool.rx, pool.listener.received
        try:
            await pause(pool)
            reads, heard = rx.reads, len(received)
            for _ in range(10):  # ten wake-ups' worth while paused
                rx.arrive(1)
            await wait_for(lambda: len(received) == heard + 10)
            return rx.reads - reads, len(received) - heard
        finally:
            pool.close()

    assert asyncio.run(scenario()) == (1, 10)


def test_a_quiet_socket_is_read_at_once() -> None:
    async def scenario() -> list[bool]:
        pool = Pool(rearm=False)
        try:
            paused = []
            for n in range(1, 4):
                await asyncio.sleep(2 * RX_COALESCE)
                pool.rx.arrive(1)
                await wait_for(lambda n=n: len(pool.listener.received) == n)
                paused.append(pool.sockets.paused)
            return paused
        finally:
            pool.close()

    assert asyncio.run(scenario()) == [False, False, False]


def test_master_down_reads_a_paused_socket_first() -> None:
    async def scenario(rearm: bool) -> bool:
        pool = Pool(rearm)
        try:
            await pause(pool)
            heard = len(pool.listener.received)
            pool.rx.queue.append(_advert())  # arrives while paused
            pool.timers.cancel("VI_1", "master_down")  # as the heap does before it fires
            due = pool.sockets.master_down_due("VI_1", pool.timers)
            assert len(pool.listener.received) == heard + 1  # the waiting advert came first
            return due
        finally:
            pool.close()

    assert asyncio.run(scenario(rearm=True)) is False  # it re-armed the timer: no take-over
    assert asyncio.run(scenario(rearm=False)) is True


def _advert() -> Datagram:
    return Datagram(bytes([0x31, VRID, 100, 1]) + bytes(4), FACTS, "eth0")


def test_a_receive_socket_has_room_for_every_instances_advert_at_once() -> None:
    rx = Receiver(4, "lo", socket.if_nametoindex("lo"))  # opened only, nothing is sent
    try:
        # 255 adverts queued while the socket is paused, at up to 2 kB of accounting each
        assert rx.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 255 * 2048
    finally:
        rx.close()
