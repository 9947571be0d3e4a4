"""Batched receive (vrrpd.mmsg) through a real kernel: the keys recvmmsg delivers are exactly
what recv and mmsg.ipv4_key make of the same datagrams, across several batches, with a
datagram cut by the buffer, and the Receiver decodes them to what it decoded before."""

from __future__ import annotations

import contextlib
import socket
from ipaddress import IPv4Address

import pytest

from tests.lab import Lab, wait_until
from vrrpd.mmsg import BatchReader, ipv4_key, recvmmsg_available
from vrrpd.packet import MCAST_V4, Advert, encode
from vrrpd.sockets import Receiver

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not recvmmsg_available(), reason="libc has no recvmmsg"),
]


def test_batched_keys_are_recvs_datagrams_keyed(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    payloads = [encode(Advert(2, vrid, 100 + vrid % 50, (), 1)) for vrid in range(1, 151)]
    payloads.append(encode(Advert(2, 7, 100, (), 1)) + bytes(5000))  # cut at 4096 bytes
    with contextlib.ExitStack() as stack:
        with n0.inside():
            tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        with n1.inside():
            rx = Receiver(4, n1.ifname, n1.ifindex())
            plain = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        stack.callback(tx.close)
        stack.callback(rx.close)
        stack.callback(plain.close)
        rx.join(MCAST_V4)
        plain.setblocking(False)
        plain.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(n0.ip4))
        mreq = MCAST_V4.packed + socket.inet_aton(n1.ip4)
        plain.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        for payload in payloads:
            tx.sendto(payload, (str(MCAST_V4), 0))
        # Both sockets get a copy of each: one read with recv, the other in batches.
        reference: list[bytes] = []
        batched: list[bytes] = []

        def all_in() -> bool:
            with contextlib.suppress(BlockingIOError):
                while True:
                    reference.append(plain.recv(4096))
            batched.extend(rx.drain_keys())
            return len(reference) >= len(payloads) and len(batched) >= len(payloads)

        wait_until(all_in, 10, message=f"{len(payloads)} datagrams on both sockets")
        assert batched == [ipv4_key(data) for data in reference]
        assert len(reference[-1]) == 4096
        decoded = [rx.datagram(key) for key in batched]
        # Decoded apart, as recv's datagrams were decoded before batches (own cache).
        apart = Receiver.__new__(Receiver)
        apart.family, apart.ifname, apart._seen = 4, n1.ifname, {}
        before = [apart._from_ipv4(data) for data in reference]
        assert decoded == before
        assert decoded[0] is not None and decoded[0].facts.src == IPv4Address(n0.ip4)
        assert decoded[0].payload == payloads[0]
        assert decoded[-1] is not None and decoded[-1].facts.declared_len is None  # cut


def test_nothing_queued_is_no_keys_not_an_error() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        a.setblocking(False)
        reader = BatchReader(a.fileno(), 4, 64)
        assert reader.read() == []
        b.send(bytes(range(30)))
        (key,) = reader.read()
        assert key == ipv4_key(bytes(range(30)))
