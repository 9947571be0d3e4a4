"""The receive path's shortcut for a repeated advert (SocketPool._read → Runner.receive_repeat)
against the full path: the same datagrams leave an instance in the same state, with the same
timers, counters and bus output, whether repeats take the shortcut or every one is decoded and
validated afresh; and a datagram differing in any byte validation reads is not a repeat."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vrrpd.fakes import ONE_INSTANCE, FakeHost, runner_for
from tests.vrrpd.rawip import DONT_FRAGMENT, ipv4_datagram
from vrrpd.machine import Startup
from vrrpd.mmsg import ipv4_key
from vrrpd.packet import MCAST_V4, Advert, AuthType, encode
from vrrpd.runner import Runner
from vrrpd.socket_pool import SocketPool
from vrrpd.sockets import Datagram, Receiver
from vrrpd.validate import DropReason

VIP = IPv4Address("192.0.2.100")
ME = IPv4Address("192.0.2.10")
MASTER = IPv4Address("192.0.2.20")
OTHER = IPv4Address("192.0.2.21")
CONFIG = ONE_INSTANCE.format(options="    advert_int 1")


def ipv4(payload: bytes, *, src: IPv4Address = MASTER, ttl: int = 255, ident: int = 0) -> bytes:
    return ipv4_datagram(payload, src, MCAST_V4, ttl=ttl, ident=ident, flags=DONT_FRAGMENT)


def advert(priority: int = 150, addresses: tuple[IPv4Address, ...] = (VIP,), **kw: Any) -> bytes:
    return encode(Advert(2, 51, priority, addresses, 1, **kw))


STEADY = advert()
_corrupt = bytearray(STEADY)
_corrupt[6] ^= 0xFF  # the VRRP checksum
# (payload, source, TTL): the master's advert most often, then everything that must not pass
# as it: another priority (lower than ours, zero, higher), other addresses, a bad checksum,
# another source, a TTL below 255, a password where there is none.
VARIANTS = [
    (STEADY, MASTER, 255),
    (STEADY, MASTER, 255),
    (STEADY, MASTER, 255),
    (advert(50), MASTER, 255),
    (advert(0), MASTER, 255),
    (advert(200), MASTER, 255),
    (advert(addresses=(IPv4Address("192.0.2.101"),)), MASTER, 255),
    (bytes(_corrupt), MASTER, 255),
    (STEADY, OTHER, 255),
    (advert(150), OTHER, 255),
    (STEADY, MASTER, 254),
    (advert(auth_type=AuthType.PASS, auth_data=b"secret\0\0"), MASTER, 255),
]


def bare_receiver() -> Receiver:
    """A Receiver's decoding half (no socket): the pool reads the keys a test hands it."""
    rx = Receiver.__new__(Receiver)
    rx.family, rx.ifname, rx.ifindex = 4, "eth0", 2
    rx._seen = {}
    rx.unclaimed = Counter()
    return rx


class Queued:
    """What the pool reads from the fake socket: the keys of the datagrams queued."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []

    def __call__(self) -> list[bytes]:
        out, self.keys = self.keys, []
        return out


class Shortcut:
    """One instance behind a real SocketPool: repeats take Runner.receive_repeat."""

    def __init__(self) -> None:
        self.runner, _, self.host = runner_for(CONFIG, ME)
        self.pool = SocketPool(lambda: False)
        self.rx = bare_receiver()
        self.queued = Queued()
        self.rx.drain_keys = self.queued  # type: ignore[method-assign]
        self.pool.listen(self.runner.plan, self.runner)

    def deliver(self, data: bytes, now: float) -> None:
        self.queued.keys.append(ipv4_key(data))
        self.pool._read(self.rx, now)


class Full:
    """The same instance fed every datagram decoded afresh, with no key: always validated."""

    def __init__(self) -> None:
        self.runner, _, self.host = runner_for(CONFIG, ME)

    def deliver(self, data: bytes, now: float) -> None:
        dgram = bare_receiver()._from_ipv4(data)
        assert dgram is not None
        self.runner.receive(Datagram(dgram.payload, dgram.facts, dgram.ifname), now)


def observed(runner: Runner, host: FakeHost) -> dict[str, Any]:
    m = runner.machine
    return {
        "machine": {k: v for k, v in vars(m).items() if k not in ("params", "sync_gate")},
        "counters": runner.counters.snapshot(),
        "timers": dict(host.timers),
        "retained": dict(host.retained),
        "counts": dict(host.counts),
        "events": list(host.events),
        "jobs": list(host.jobs),
        "peers": dict(runner.last_peer_addresses),
    }


def fire_due(runner: Runner, host: FakeHost, now: float) -> None:
    for (instance, timer), deadline in sorted(host.timers.items(), key=lambda kv: kv[1]):
        if deadline <= now and host.timers.get((instance, timer)) == deadline:
            del host.timers[(instance, timer)]
            runner.timer_fired(timer, now)


_step = st.tuples(
    st.sampled_from(range(len(VARIANTS))),
    st.integers(0, 0xFFFF),  # IP identification: never part of what makes a repeat
    st.sampled_from([0.0, 0.01, 0.5, 1.0, 4.0]),  # time to the next datagram
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_step, min_size=1, max_size=40))
def test_repeats_through_the_shortcut_end_where_validating_every_one_ends(
    steps: list[tuple[int, int, float]],
) -> None:
    fast, full = Shortcut(), Full()
    now = 100.0
    for side in (fast, full):
        side.runner.feed(Startup(), now)
    for variant, ident, dt in steps:
        payload, src, ttl = VARIANTS[variant]
        data = ipv4(payload, src=src, ttl=ttl, ident=ident)
        for side in (fast, full):
            side.deliver(data, now)
        assert observed(fast.runner, fast.host) == observed(full.runner, full.host)
        now += dt
        for side in (fast, full):
            fire_due(side.runner, side.host, now)
        assert observed(fast.runner, fast.host) == observed(full.runner, full.host)


def test_the_masters_repeated_advert_takes_the_shortcut_and_drops_are_still_counted() -> None:
    side = Shortcut()
    side.runner.feed(Startup(), 100.0)
    taken = 0
    original = side.runner.receive_repeat

    def counting(key: bytes, now: float) -> bool:
        nonlocal taken
        took = original(key, now)
        taken += took
        return took

    side.runner.receive_repeat = counting  # type: ignore[method-assign]
    for i in range(5):
        side.deliver(ipv4(STEADY, ident=i), 100.0 + i)
    assert side.runner.machine.master_peer == MASTER
    assert taken == 4  # the first one went the whole way, and made the master known
    bad = ipv4(bytes(_corrupt), ident=9)
    for i in range(3):
        side.deliver(bad, 106.0 + i)
    assert side.runner.counters.drops[DropReason.CHECKSUM] == 3
    assert side.runner.counters.accepted == 5
    assert taken == 4
    # Still the master's advert afterwards: the shortcut again once it was seen in full.
    side.deliver(ipv4(STEADY, ident=10), 110.0)
    side.deliver(ipv4(STEADY, ident=11), 111.0)
    assert (taken, side.runner.counters.accepted) == (5, 7)
    assert side.host.timers[("VI_1", "master_down")] > 111.0


_NOT_KEYED = frozenset({4, 5, 6, 7, 9, 10, 11})  # IP id, fragment, protocol, header checksum


@given(st.integers(0, len(ipv4(STEADY)) - 1), st.integers(1, 255))
def test_a_changed_byte_is_a_repeat_only_where_validation_never_looks(
    index: int, flip: int
) -> None:
    data = bytearray(ipv4(STEADY))
    data[index] ^= flip
    assert (ipv4_key(bytes(data)) == ipv4_key(ipv4(STEADY))) == (index in _NOT_KEYED)
