"""What netd publishes about a link: primary and tentative facts, and republishing when only
an address's flags change (no kernel needed: the monitor's events are built by hand)."""

from __future__ import annotations

import socket

from netd.linkstate import LinkState
from netd.monitor import IFA_F_SECONDARY, IFA_F_TENTATIVE, AddrEvent

V4, V6 = socket.AF_INET, socket.AF_INET6


def _addr(ip: str, prefix: int, flags: int = 0, added: bool = True) -> AddrEvent:
    family = V6 if ":" in ip else V4
    return AddrEvent(added, 2, family, ip, prefix, None, None, flags)


def _link() -> LinkState:
    return LinkState(2, "eth0", True, "02:00:00:00:00:01", "UP")


def test_primary_is_the_kernels_not_the_lowest_sorting_address() -> None:
    link = _link()
    link.observe(_addr("192.0.2.11", 24))
    link.observe(_addr("192.0.2.10", 24, IFA_F_SECONDARY))
    body = link.report().encode()
    assert body["addresses"] == ["192.0.2.10/24", "192.0.2.11/24"]  # unchanged: sorted
    assert body["primary"] == ["192.0.2.11/24"]


def test_primaries_keep_kernel_order() -> None:
    link = _link()
    link.observe(_addr("198.51.100.9", 24))
    link.observe(_addr("192.0.2.11", 24))
    assert link.report().encode()["primary"] == ["198.51.100.9/24", "192.0.2.11/24"]


def test_a_promoted_secondary_is_a_change_and_becomes_primary() -> None:
    link = _link()
    link.observe(_addr("192.0.2.11", 24))
    link.observe(_addr("192.0.2.10", 24, IFA_F_SECONDARY))
    assert link.observe(_addr("192.0.2.11", 24, added=False))
    # The kernel re-announces the promoted address with the secondary flag cleared.
    assert link.observe(_addr("192.0.2.10", 24))
    assert link.report().encode()["primary"] == ["192.0.2.10/24"]


def test_dad_ending_is_a_change_although_no_address_came_or_went() -> None:
    link = _link()
    assert link.observe(_addr("fe80::1", 64, IFA_F_TENTATIVE))
    assert link.report().encode()["tentative"] == ["fe80::1/64"]
    assert link.link_local() is None
    assert link.link_local(tentative=True) == "fe80::1/64"
    assert link.observe(_addr("fe80::1", 64))
    assert link.report().encode()["tentative"] == []
    assert link.link_local() == "fe80::1/64"
    assert not link.observe(_addr("fe80::1", 64))  # the same again: nothing to publish


def test_link_local_is_the_first_usable_not_the_lowest() -> None:
    link = _link()
    link.observe(_addr("fe80::9", 64))
    link.observe(_addr("fe80::1", 64, IFA_F_TENTATIVE))
    assert link.link_local() == "fe80::9/64"


def test_unrelated_flag_bits_do_not_republish() -> None:
    link = _link()
    link.observe(_addr("192.0.2.11", 24))
    assert not link.observe(_addr("192.0.2.11", 24, 0x80))  # IFA_F_PERMANENT
    assert not link.observe(_addr("192.0.2.99", 24, added=False))  # never there
