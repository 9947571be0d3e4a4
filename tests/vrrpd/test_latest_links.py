"""vrrpd skips ``net.link`` events that a later one in the same batch supersedes."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bus.envelope import Envelope, Event
from vrrpd.engine import latest_links


def _event(topic: str, seq: int, **body: Any) -> Event:
    return Event(topic, Envelope(1, "netd", 1, "b", seq, 0.0), dict(body))


def _link(name: str, seq: int, up: bool = True, ifindex: int = 2, n: int = 1) -> Event:
    addrs = [f"198.51.100.{i + 1}/32" for i in range(n)]
    return _event(f"net.link.{name}", seq, name=name, ifindex=ifindex, up=up, addresses=addrs)


def test_address_only_updates_collapse_to_the_newest() -> None:
    batch = [_link("eth0", i, n=i) for i in range(1, 200)]
    batch.insert(50, _event("health.chk", 500, name="chk", ok=True))
    kept = latest_links(batch)
    assert [e.topic for e in kept] == ["health.chk", "net.link.eth0"]
    assert kept[-1].env.seq == 199  # the newest state, with every address


def test_a_flap_inside_one_batch_is_not_hidden() -> None:
    batch = [_link("eth0", 1), _link("eth0", 2, up=False), _link("eth0", 3), _link("eth0", 4)]
    assert [e.env.seq for e in latest_links(batch)] == [1, 2, 4]


@given(
    st.lists(
        st.tuples(st.sampled_from(["eth0", "eth1"]), st.booleans(), st.integers(0, 3)),
        max_size=40,
    )
)
def test_the_last_state_of_every_link_survives_in_order(
    items: list[tuple[str, bool, int]],
) -> None:
    batch = [_link(name, i, up=up, n=n) for i, (name, up, n) in enumerate(items)]
    kept = latest_links(batch)
    seqs = [e.env.seq for e in kept]
    assert seqs == sorted(seqs)  # order preserved, nothing invented
    for name in ("eth0", "eth1"):
        mine = [e for e in batch if e.topic == f"net.link.{name}"]
        if mine:
            assert mine[-1] in kept
        # Every up/down change in the original sequence is still visible.
        ups = [e.body["up"] for e in mine]
        kept_ups = [e.body["up"] for e in kept if e.topic == f"net.link.{name}"]
        changes = [a for a, b in itertools.pairwise(ups) if a != b]
        kept_changes = [a for a, b in itertools.pairwise(kept_ups) if a != b]
        assert changes == kept_changes
