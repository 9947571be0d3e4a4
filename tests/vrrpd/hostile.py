"""A hostile neighbour on the lab segment: crafted VRRP frames (built with scapy) and a sender.

The victim (node 0) runs three instances, each MASTER at priority 200 (see :data:`VICTIM`).
Every crafted advert claims priority 254 for one of them and differs from a valid advert in
exactly one field, so if the receive path ever accepted it the victim would give up its
addresses. The few accepted "controls" claim priority 100 and prove the frames are otherwise
well formed.

Used by ``tests/vrrpd/test_hostile_wire.py`` and ``bench/hostile.py``.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Packet, Raw

from tests.lab import Node

__all__ = [
    "PASSWORD",
    "VICTIM",
    "VIPS",
    "Case",
    "Injector",
    "cases",
    "flood_frame",
    "link_local",
    "victim_config",
]

PASSWORD = b"secret1"
#: instance -> (VRID, VIP); every one MASTER at priority 200 on the victim
VIPS = {
    "V2": (21, "192.0.2.121/24"),
    "V3": (31, "192.0.2.131/24"),
    "V6": (61, "2001:db8::61/64"),
}
VICTIM = 200
_MCAST4, _MAC4 = "224.0.0.18", "01:00:5e:00:00:12"
_MCAST6, _MAC6 = "ff02::12", "33:33:00:00:00:12"


def victim_config() -> str:
    blocks = [
        "global_defs {\n    router_id victim\n}\n",
        f"""vrrp_instance V2 {{
    state MASTER
    interface eth0
    virtual_router_id {VIPS["V2"][0]}
    priority {VICTIM}
    advert_int 1
    version 2
    authentication {{
        auth_type PASS
        auth_pass {PASSWORD.decode()}
    }}
    virtual_ipaddress {{
        {VIPS["V2"][1]}
    }}
}}
""",
    ]
    for name in ("V3", "V6"):
        vrid, vip = VIPS[name]
        blocks.append(
            f"""vrrp_instance {name} {{
    state MASTER
    interface eth0
    virtual_router_id {vrid}
    priority {VICTIM}
    advert_int 1
    version 3
    virtual_ipaddress {{
        {vip}
    }}
}}
"""
        )
    return "".join(blocks)


@dataclass(frozen=True, slots=True)
class Case:
    """One crafted frame and the counter it must land in (``drop.*``, ``note.*``, ``accepted``).

    A frame accepted with a note counts under both the note and ``accepted``.
    """

    name: str
    instance: str
    counter: str
    frame: bytes

    @property
    def counted_as(self) -> tuple[str, ...]:
        return (self.counter, "accepted") if self.counter.startswith("note.") else (self.counter,)


def _vip(name: str) -> str:
    return VIPS[name][1].split("/")[0]


def _auth(password: bytes) -> dict[str, int]:
    data = password[:8].ljust(8, b"\x00")
    return {"auth1": int.from_bytes(data[:4], "big"), "auth2": int.from_bytes(data[4:], "big")}


def _v2(**fields: Any) -> Packet:
    base: dict[str, Any] = {
        "vrid": VIPS["V2"][0],
        "priority": 254,
        "authtype": 1,
        "adv": 1,
        "addrlist": [_vip("V2")],
        **_auth(PASSWORD),
    }
    base.update(fields)
    return VRRP(**base)


def _v3(name: str, **fields: Any) -> Packet:
    base: dict[str, Any] = {
        "vrid": VIPS[name][0],
        "priority": 254,
        "adv": 100,
        "addrlist": [_vip(name)],
    }
    base.update(fields)
    return VRRPv3(**base)


def _bad_checksum(frame: Packet, layer: type[Packet] | None = None) -> bytes:
    """The same frame with its VRRP checksum wrong (every other field right)."""
    wire = bytearray(bytes(frame))
    vrrp = len(bytes(frame[layer if layer is not None else Raw]))
    wire[len(wire) - vrrp + 7] ^= 0xFF  # the checksum's low byte
    return bytes(wire)


class _Frames:
    """Frame builders for one neighbour (its MAC, IPv4 and link-local source)."""

    def __init__(self, mac: str, ip4: str, ll6: str) -> None:
        self.mac, self.ip4, self.ll6 = mac, ip4, ll6

    def v4(self, vrrp: Packet | bytes, *, ttl: int = 255, dst: str = _MCAST4) -> Packet:
        mac = _MAC4 if dst == _MCAST4 else "ff:ff:ff:ff:ff:ff"
        return Ether(src=self.mac, dst=mac) / IP(src=self.ip4, dst=dst, ttl=ttl, proto=112) / vrrp

    def v6(self, vrrp: Packet, *, hlim: int = 255, ext: Packet | None = None) -> Packet:
        eth = Ether(src=self.mac, dst=_MAC6)
        if ext is None:
            return eth / IPv6(src=self.ll6, dst=_MCAST6, hlim=hlim, nh=112) / vrrp
        # The pseudo-header is the same behind extension headers (RFC 8200 §8.1), so the
        # checksum scapy computes without them stays right.
        plain = IPv6(bytes(IPv6(src=self.ll6, dst=_MCAST6) / vrrp))
        ext = ext.copy()
        ext.nh = 112
        return eth / IPv6(src=self.ll6, dst=_MCAST6, hlim=hlim) / ext / Raw(bytes(plain.payload))


def cases(mac: str, ip4: str, ll6: str, victim_ip4: str) -> list[Case]:
    """Every receive rule broken once, plus accepted controls (see the module docstring)."""
    f = _Frames(mac, ip4, ll6)
    v4, v6, v3 = f.v4, f.v6, _v3
    two = [_vip("V2"), "192.0.2.99"]
    v2_valid = v4(_v2())
    raw_v2 = bytes(v2_valid[VRRP])
    raw_v6 = bytes(v6(v3("V6"))[VRRPv3])
    hbh, dstopt, frag = IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrFragment(id=7)
    table: list[tuple[str, str, str, Packet | bytes]] = [
        ("ttl", "V2", "drop.ttl", v4(_v2(), ttl=64)),
        ("checksum", "V2", "drop.checksum", _bad_checksum(v2_valid, VRRP)),
        ("auth", "V2", "drop.auth", v4(_v2(**_auth(b"guessed")))),
        ("auth_type", "V2", "drop.auth_type", v4(_v2(authtype=0, auth1=0, auth2=0))),
        ("interval", "V2", "drop.interval", v4(_v2(adv=3))),
        ("type", "V2", "drop.type", v4(_v2(type=2))),
        ("version_nibble", "V2", "drop.version", v4(_v2(version=4))),
        ("addr_count_zero", "V2", "drop.addr_count", v4(_v2(ipcount=0, addrlist=[]))),
        ("length_count", "V2", "drop.length", v4(_v2(ipcount=1, addrlist=two))),
        ("truncated", "V2", "drop.too_short", v4(Raw(raw_v2[:4]))),
        ("oversized", "V2", "drop.length", v4(Raw(raw_v2 + bytes(1400)))),
        ("destination", "V2", "drop.destination", v4(_v2(), dst=victim_ip4)),
        # Accepted with a note at a lower priority: keepalived and FRR do not drop these.
        ("addr_list", "V2", "note.addr_mismatch", v4(_v2(priority=100, addrlist=two[1:]))),
        ("addr_count", "V2", "note.addr_count", v4(_v2(priority=100, addrlist=two))),
        # No instance on the socket takes these: counted under every instance on it.
        ("other_vrid", "V2", "drop.vrid", v4(_v2(vrid=99))),
        ("one_byte", "V2", "drop.too_short", v4(Raw(b"\x21"))),
        ("v3_ttl", "V3", "drop.ttl", v4(v3("V3"), ttl=1)),
        ("v3_checksum", "V3", "drop.checksum", _bad_checksum(v4(v3("V3")), VRRPv3)),
        ("v3_version", "V3", "drop.version", v4(_v2(vrid=VIPS["V3"][0]))),
        ("v3_interval_zero", "V3", "drop.interval", v4(v3("V3", adv=0))),
        ("v3_addr_count_zero", "V3", "drop.addr_count", v4(v3("V3", ipcount=0, addrlist=[]))),
        ("v3_control", "V3", "accepted", v4(v3("V3", priority=100))),
        ("v6_hop_limit", "V6", "drop.ttl", v6(v3("V6"), hlim=64)),
        ("v6_checksum", "V6", "drop.checksum", _bad_checksum(v6(v3("V6")), VRRPv3)),
        ("v6_version", "V6", "drop.version", v6(v3("V6", version=2))),
        ("v6_type", "V6", "drop.type", v6(v3("V6", type=3))),
        ("v6_truncated", "V6", "drop.too_short", v6(Raw(raw_v6[:4]))),
        ("v6_oversized", "V6", "drop.length", v6(Raw(raw_v6 + bytes(512)))),
        ("v6_other_vrid", "V6", "drop.vrid", v6(v3("V6", vrid=98))),
        # Extension headers: the kernel hands the raw socket what follows them, so the rules
        # are the same behind a Hop-by-Hop, Destination Options or (atomic) Fragment header.
        ("v6_hbh_hop_limit", "V6", "drop.ttl", v6(v3("V6"), hlim=1, ext=hbh)),
        ("v6_dstopt_checksum", "V6", "drop.checksum", _bad_checksum(v6(v3("V6"), ext=dstopt))),
        ("v6_frag_interval_zero", "V6", "drop.interval", v6(v3("V6", adv=0), ext=frag)),
        # Accepted: a first address that is not link-local is a note (FRR sends those).
        ("v6_hbh_control", "V6", "note.link_local", v6(v3("V6", priority=100), ext=hbh)),
    ]
    return [Case(name, inst, counter, bytes(frame)) for name, inst, counter, frame in table]


def flood_frame(mac: str, ip4: str) -> bytes:
    """V2's advert at priority 254 with a guessed password: what a flood repeats."""
    return bytes(_Frames(mac, ip4, "fe80::1").v4(_v2(**_auth(b"guessed"))))


class Injector:
    """An AF_PACKET socket on the neighbour's eth0: sends whole Ethernet frames."""

    def __init__(self, node: Node) -> None:
        with node.inside():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            self.sock.bind((node.ifname, 0))
        except OSError:
            self.sock.close()
            raise

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def flood(self, frame: bytes, rate: float, seconds: float) -> int:
        """Send ``frame`` at about ``rate`` per second for ``seconds``; how many were sent."""
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic() - start) < seconds:
            due = int(now * rate) + 1
            while sent < due:
                try:
                    self.sock.send(frame)
                except BlockingIOError:  # the qdisc is full: pace rather than fail
                    break
                sent += 1
            time.sleep(0.001)
        return sent

    def close(self) -> None:
        self.sock.close()


def link_local(node: Node) -> str:
    """The node's fe80:: address on eth0 (the kernel made it when the link came up)."""
    for a in node.addresses(node.ifname, socket.AF_INET6):
        if IPv6Address(a["address"]).is_link_local:
            return str(a["address"])
    raise LookupError(f"no link-local address on {node.netns} {node.ifname}")
