"""vrrpd's choice of advert source from netd's link report, and the back-off of instances
that cannot start yet (pure: a fake clock)."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bus.messages import LinkReport
from vrrpd.links import Link
from vrrpd.pending import Backoff, PendingStarts, fault_state

ip = ipaddress.ip_address


def _link(**extra: Any) -> Link:
    body = {"name": "eth0", "ifindex": 2, "up": True, **extra}
    return Link.from_event(LinkReport.decode("net.link.eth0", body))


def test_ipv4_source_is_the_primary_not_the_lowest_address() -> None:
    link = _link(addresses=["192.0.2.10/24", "192.0.2.11/24"], primary=["192.0.2.11/24"])
    assert link.primary(4) == ip("192.0.2.11")


def test_ipv4_source_skips_a_vip_that_is_primary_of_its_own_prefix() -> None:
    link = _link(
        addresses=["192.0.2.11/24", "203.0.113.1/32"], primary=["203.0.113.1/32", "192.0.2.11/24"]
    )
    assert link.primary(4, exclude={ip("203.0.113.1")}) == ip("192.0.2.11")


def test_a_report_from_an_older_netd_falls_back_to_the_first_address() -> None:
    link = _link(addresses=["192.0.2.10/24", "192.0.2.11/24", "fe80::1/64"])
    assert link.primary(4) == ip("192.0.2.10")
    assert link.primary(6) == ip("fe80::1")


def test_ipv6_source_is_a_link_local_out_of_dad() -> None:
    link = _link(addresses=["2001:db8::10/64", "fe80::1/64"], tentative=["fe80::1/64"])
    assert link.primary(6) is None
    assert "fe80::1" in link.why_no_source(6) and "tentative" in link.why_no_source(6)
    ready = _link(addresses=["2001:db8::10/64", "fe80::1/64"], tentative=[])
    assert ready.primary(6) == ip("fe80::1")
    assert ready.sources != link.sources  # vrrpd retries on this change


def test_reasons_name_the_interface() -> None:
    assert _link(up=False).why_no_source(6) == "interface eth0 is down"
    assert _link().why_no_source(4) == "no IPv4 address on eth0"
    assert _link().why_no_source(6) == "no IPv6 link-local address on eth0"


@given(st.integers(0, 40))
def test_backoff_doubles_and_is_bounded(n: int) -> None:
    b = Backoff(0.5, 8.0)
    delays = [b.next_delay() for _ in range(n)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert delays == sorted(delays)
    assert delays[:5] == [0.5, 1.0, 2.0, 4.0, 8.0][: len(delays)]
    b.reset()
    assert b.next_delay() == 0.5


def test_pending_retries_back_off_and_a_new_reason_starts_over() -> None:
    clock = 100.0
    pending = PendingStarts(0.5, 8.0)
    assert pending.failed("VI_1", "tentative", clock)  # new: published and logged
    assert pending.next_retry() == 100.5
    retries = []
    for _ in range(6):
        clock = pending.next_retry() or 0.0
        assert not pending.failed("VI_1", "tentative", clock)  # same reason: quiet
        retries.append((pending.next_retry() or 0.0) - clock)
    assert retries == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert pending.failed("VI_1", "interface eth0 is down", clock)
    assert pending.next_retry() == clock + 0.5
    assert pending.reason("VI_1") == "interface eth0 is down"
    assert pending.started("VI_1") and not pending.started("VI_1")
    assert pending.next_retry() is None and "VI_1" not in pending


def test_fault_state_is_a_valid_vrrp_state_with_the_reason() -> None:
    from bus.schemas import check

    body = fault_state(
        instance="VI_1",
        reason="link-local fe80::1 on eth0 is tentative (DAD)",
        priority=200,
        vrid=51,
        interface="eth0",
        family=6,
        version=3,
        vips=["2001:db8::100"],
    )
    check("vrrp.state.VI_1", body)
    assert body["state"] == "FAULT" and body["faults"] == [body["cause"]]
