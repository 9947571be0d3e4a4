"""Which components the watchdog imports before its first fork and in which order it starts
them: the bus and core at once (their modules are the watchdog's own), netd and vrrpd each as
soon as imported, checkd after them (issue #15); stopping stays the reverse of START_ORDER."""

from __future__ import annotations

import pytest

from watchdog.children import START_ORDER, launch_order, wanted


@pytest.mark.parametrize(
    ("vrrp_only", "check_only", "preloaded", "started"),
    [
        (False, False, ("bus", "core"), ("bus", "core", "netd", "vrrpd", "checkd")),
        (True, False, ("bus", "core"), ("bus", "core", "netd", "vrrpd")),
        # -C: netd programs the virtual servers' datapath (docs/lvs.md)
        (False, True, ("bus", "core"), ("bus", "core", "netd", "checkd")),
    ],
)
def test_bus_and_core_start_first_and_checkd_after_the_way_to_the_first_advert(
    vrrp_only: bool,
    check_only: bool,
    preloaded: tuple[str, ...],
    started: tuple[str, ...],
) -> None:
    assert launch_order(wanted(vrrp_only, check_only)) == (preloaded, started)


def test_every_component_is_started_once() -> None:
    _, started = launch_order(START_ORDER)
    assert sorted(started) == sorted(START_ORDER)
