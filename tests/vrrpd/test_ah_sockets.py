"""AH adverts through real kernels: vrrpd.ah_sockets in namespaces, and two pykeepalived groups.

These run without keepalived installed (tests/interop covers keepalived itself).
"""

from __future__ import annotations

import contextlib
import re
import socket
from ipaddress import IPv4Address

import pytest

from tests.daemon import daemon_group
from tests.lab import Lab, wait_until
from vrrpd.ah import AhError, AhSession
from vrrpd.ah_sockets import AhReceiver, AhSender, vrid_of
from vrrpd.packet import MCAST_V4, Advert, AuthType, encode

pytestmark = pytest.mark.netns

VIP = "192.0.2.100/24"
PAYLOAD = encode(Advert(2, 51, 150, (IPv4Address("192.0.2.100"),), 1, auth_type=AuthType.AH))


def _drain_until(receiver: AhReceiver, count: int) -> list[bytes]:
    got: list[bytes] = []

    def enough() -> bool:
        got.extend(receiver.drain())
        return len(got) >= count

    wait_until(enough, 5, message=f"{count} AH datagram(s)")
    return got


def test_sender_and_receiver_carry_sealed_adverts_across_the_wire(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    with contextlib.ExitStack() as stack:
        with n0.inside():
            sender = AhSender(n0.ifname, n0.ifindex())
            own = AhReceiver(n0.ifname, n0.ifindex())
        with n1.inside():
            receiver = AhReceiver(n1.ifname, n1.ifindex())
            plain = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        for closeable in (sender, own, receiver, plain):
            stack.callback(closeable.close)
        receiver.join(MCAST_V4)
        own.join(MCAST_V4)
        tx = AhSession(auth_pass=b"s3cret", src=IPv4Address(n0.ip4))
        rx = AhSession(auth_pass=b"s3cret", src=IPv4Address(n1.ip4))
        (multicast,) = tx.seal(PAYLOAD, (MCAST_V4,))
        assert sender.send(multicast, MCAST_V4)
        (first,) = _drain_until(receiver, 1)
        # The kernel delivers the whole datagram as sent (it only filled in the IP checksum).
        assert first[:10] == multicast[:10] and first[12:] == multicast[12:]
        assert vrid_of(first) == 51
        got = rx.open(first)
        assert (got.payload, got.seq, str(got.src), got.dst) == (PAYLOAD, 1, n0.ip4, MCAST_V4)
        # Unicast goes to the peer's address; a replay of the first one is refused.
        tx.unicast = rx.unicast = True
        peer = IPv4Address(n1.ip4)
        (unicast,) = tx.seal(PAYLOAD, (peer,))
        assert sender.send(unicast, peer) and sender.send(multicast, MCAST_V4)
        second, replay = _drain_until(receiver, 2)
        assert rx.open(second).seq == 2
        rx.unicast = False
        with pytest.raises(AhError, match="already seen"):
            rx.open(replay)
        # No multicast loop back to the sender's own host, and nothing for protocol 112.
        assert own.drain() == []
        plain.setblocking(False)
        with pytest.raises(BlockingIOError):
            plain.recv(4096)
        assert sender.errors == 0


def _config(priority: int, password: str = "s3cret") -> str:
    return f"""
global_defs {{
    router_id ah{priority}
    vrrp_version 2
    vrrp_garp_master_delay 0
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    authentication {{
        auth_type AH
        auth_pass {password}
    }}
    virtual_ipaddress {{
        {VIP}
    }}
}}
"""


def test_two_pykeepalived_groups_elect_and_fail_over_with_ah(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    with daemon_group(n1, _config(100), "-l") as low:
        low.wait_started()
        with daemon_group(n0, _config(150), "-l") as high:
            high.wait_started()
            wait_until(
                lambda: VIP in n0.address_set() and VIP not in n1.address_set(),
                20,
                message="node 0 alone holds the VIP",
            )
            for group in (high, low):
                dropped = [ln for ln in group.log_text().splitlines() if ".dropped" in ln]
                assert dropped == [], dropped
        # The master stopped in order (priority 0 under AH): the backup takes over.
        wait_until(lambda: VIP in n1.address_set(), 5, message="node 1 takes the VIP")
        log = low.log_text()
        assert re.search(r"vrrp\.state .*new=MASTER", log), log[-3000:]
        assert ".dropped" not in log
