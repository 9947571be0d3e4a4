"""Fuzzing vrrpd's receive path: any bytes from the wire are an advert or a named drop.

Three depths, each from raw bytes:

* the IPv4 and IPv6 socket decoders (``vrrpd.sockets.Receiver``: IP header or ancillary data
  to payload and facts) and the AH decoder (``vrrpd.ah``): a datagram or ``DecodeError``;
* ``vrrpd.validate.validate`` under the expectations of the advert the bytes were mutated from
  (so the deep rules run, not only the size checks): ``Accepted`` or ``Drop``;
* a whole instance (``Runner.receive``: validation, the state machine, the actions), in
  BACKUP and in MASTER, fed a sequence of mutated adverts: never an exception.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import fuzz
from tests.vrrpd.fakes import runner_for
from tests.vrrpd.strategies import adverts, source_for
from vrrpd.ah import AhSession
from vrrpd.ah_sockets import vrid_of
from vrrpd.errors import DecodeError
from vrrpd.machine import Startup, State
from vrrpd.packet import MCAST_V4, MCAST_V6, Advert, AuthType, ChecksumForm, encode
from vrrpd.sockets import Datagram, Receiver
from vrrpd.validate import Accepted, Drop, Expectations, IpFacts, validate


@st.composite
def mutated(draw: st.DrawFn, wire: bytes) -> bytes:
    """``wire`` with a few bytes changed, cut off or inserted (or left alone)."""
    data = bytearray(wire)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["set", "cut", "insert", "xor"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "xor" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[i:]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def ipv4_datagram(payload: bytes, src: IPv4Address, ttl: int, proto: int = 112) -> bytes:
    header = bytearray(20)
    header[0] = 0x45
    header[2:4] = (20 + len(payload)).to_bytes(2, "big")
    header[8], header[9] = ttl, proto
    header[12:16] = src.packed
    header[16:20] = MCAST_V4.packed
    return bytes(header) + payload


def expectations(advert: Advert, data: st.DataObject) -> Expectations:
    """What an instance configured like ``advert``'s sender would expect (with odd options)."""
    draw = data.draw
    return Expectations(
        vrid=advert.vrid,
        version=advert.version,
        family=advert.family,
        interval_cs=advert.interval_cs,
        addresses=advert.addresses,
        priority=draw(st.integers(1, 255)),
        auth_type=AuthType(advert.auth_type),
        auth_pass=advert.auth_data,
        unicast=draw(st.booleans()),
        check_unicast_src=draw(st.booleans()),
        min_ttl=draw(st.integers(0, 255)),
        max_ttl=draw(st.integers(0, 255)),
        checksum_forms=frozenset(draw(st.sets(st.sampled_from(list(ChecksumForm))))),
        checksum_any=draw(st.booleans()),
        owner_ignore_adverts=draw(st.booleans()),
        strict_addresses=draw(st.booleans()),
    )


def bare_receiver(family: int) -> Receiver:
    """A Receiver's decoding half: no socket (the fuzzer hands it what recv would)."""
    rx = Receiver.__new__(Receiver)
    rx.family, rx.ifname, rx.ifindex = family, "eth0", 2
    rx._seen = {}
    return rx


@fuzz(ci=400)
@given(st.data())
def test_any_ipv4_datagram_is_an_advert_or_a_named_drop(data: st.DataObject) -> None:
    advert = data.draw(adverts(family=4, min_addrs=0))
    src = data.draw(source_for(4))
    assert isinstance(src, IPv4Address)
    wire = encode(advert, src=src, dst=MCAST_V4)
    raw = data.draw(
        st.one_of(
            mutated(ipv4_datagram(wire, src, data.draw(st.integers(0, 255)))),
            st.binary(max_size=120),
        )
    )
    dgram = bare_receiver(4)._from_ipv4(raw)
    if dgram is None:
        return
    result = validate(dgram.payload, dgram.facts, expectations(advert, data))
    assert isinstance(result, (Accepted, Drop))


@fuzz(ci=300)
@given(st.data())
def test_any_ipv6_datagram_is_an_advert_or_a_named_drop(data: st.DataObject) -> None:
    advert = data.draw(adverts(version=3, family=6, min_addrs=0))
    src = data.draw(source_for(6))
    wire = encode(advert, src=src, dst=MCAST_V6)
    payload = data.draw(st.one_of(mutated(wire), st.binary(max_size=120)))
    hops = data.draw(st.binary(max_size=6))
    pktinfo = data.draw(st.one_of(st.just(MCAST_V6.packed + bytes(4)), st.binary(max_size=24)))
    anc = [
        (socket.IPPROTO_IPV6, 52, hops),  # IPV6_HOPLIMIT
        (socket.IPPROTO_IPV6, 50, pktinfo),  # IPV6_PKTINFO
        (data.draw(st.integers(0, 300)), data.draw(st.integers(0, 100)), b"\x00" * 4),
    ]
    scope = data.draw(st.sampled_from(["", "%eth0", "%2"]))
    dgram = bare_receiver(6)._from_ipv6(payload, anc, (f"{src}{scope}", 0, 0, 2))
    if dgram is None:
        return
    result = validate(dgram.payload, dgram.facts, expectations(advert, data))
    assert isinstance(result, (Accepted, Drop))


@fuzz(ci=300)
@given(st.data())
def test_any_ah_datagram_is_opened_or_refused_with_a_reason(data: st.DataObject) -> None:
    src = data.draw(source_for(4))
    assert isinstance(src, IPv4Address)
    session = AhSession(auth_pass=b"secret", src=IPv4Address("192.0.2.1"))
    sender = AhSession(auth_pass=b"secret", src=src)
    advert = data.draw(adverts(version=2, min_addrs=1))
    (sealed,) = sender.seal(encode(advert), (MCAST_V4,))
    raw = data.draw(st.one_of(mutated(sealed), st.binary(max_size=100)))
    vrid_of(raw)
    try:
        got = session.open(raw)
    except DecodeError:
        return
    assert got.src == IPv4Address(raw[12:16])


CONFIGS = {
    2: """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    version 2
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
""",
    3: """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    version 3
    virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101/24
    }
}
""",
}
ME = IPv4Address("192.0.2.11")


@fuzz(ci=150)
@given(st.sampled_from([2, 3]), st.booleans(), st.data())
def test_an_instance_fed_mutated_adverts_never_fails(
    version: int, master: bool, data: st.DataObject
) -> None:
    runner, _, _ = runner_for(CONFIGS[version], ME)
    runner.feed(Startup(), 0.0)
    if master:
        runner.timer_fired("master_down", 4.0)
        assert runner.machine.state is State.MASTER
    now = 5.0
    for _ in range(data.draw(st.integers(1, 8))):
        advert = Advert(
            version=version,
            vrid=51,
            priority=data.draw(st.integers(0, 255)),
            addresses=(IPv4Address("192.0.2.100"),),
            interval=1 if version == 2 else data.draw(st.integers(1, 4095)),
            auth_type=AuthType.PASS if version == 2 else AuthType.NONE,
            auth_data=b"secret\x00\x00",
        )
        src = data.draw(st.sampled_from([IPv4Address("192.0.2.12"), IPv4Address("192.0.2.9")]))
        payload = data.draw(mutated(encode(advert, src=src, dst=MCAST_V4)))
        ttl = data.draw(st.sampled_from([255, 255, 1]))
        runner.receive(Datagram(payload, IpFacts(src=src, dst=MCAST_V4, ttl=ttl), "eth0"), now)
        now += data.draw(st.floats(0, 5))
        if data.draw(st.booleans()):
            runner.timer_fired(data.draw(st.sampled_from(["master_down", "adver"])), now)
    assert runner.machine.state in (State.BACKUP, State.MASTER)


def test_an_ipv6_source_with_a_scope_is_decoded_without_it() -> None:
    anc = [(socket.IPPROTO_IPV6, 50, MCAST_V6.packed + bytes(4))]
    dgram = bare_receiver(6)._from_ipv6(b"\x31", anc, ("fe80::1%eth0", 0, 0, 2))
    assert dgram is not None and dgram.facts.src == IPv6Address("fe80::1")


def test_a_datagram_cut_by_the_receive_buffer_is_dropped_as_oversized() -> None:
    advert = Advert(2, 51, 254, (IPv4Address("192.0.2.100"),), 1)
    payload = encode(advert) + bytes(5000)
    raw = ipv4_datagram(payload, IPv4Address("192.0.2.12"), 255)[:4096]  # what recv returns
    dgram = bare_receiver(4)._from_ipv4(raw)
    assert dgram is not None
    expect = Expectations(vrid=51, version=2, addresses=advert.addresses)
    result = validate(dgram.payload, dgram.facts, expect)
    assert isinstance(result, Drop) and result.reason == "length", result
