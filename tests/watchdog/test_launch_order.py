"""Which components the watchdog imports before its first fork and in which order it starts
them: those on the way to the first advert first, checkd after them (issue #15); stopping
stays the reverse of START_ORDER."""

from __future__ import annotations

import pytest

from watchdog.children import START_ORDER, launch_order, wanted


@pytest.mark.parametrize(
    ("vrrp_only", "check_only", "preloaded", "started"),
    [
        (
            False,
            False,
            ("bus", "core", "netd", "vrrpd"),
            ("bus", "core", "netd", "vrrpd", "checkd"),
        ),
        (True, False, ("bus", "core", "netd", "vrrpd"), ("bus", "core", "netd", "vrrpd")),
        # -C: netd programs the virtual servers' datapath (docs/lvs.md)
        (False, True, ("bus", "core", "netd"), ("bus", "core", "netd", "checkd")),
    ],
)
def test_checkd_is_imported_and_started_after_the_way_to_the_first_advert(
    vrrp_only: bool,
    check_only: bool,
    preloaded: tuple[str, ...],
    started: tuple[str, ...],
) -> None:
    assert launch_order(wanted(vrrp_only, check_only)) == (preloaded, started)


def test_every_component_is_started_once() -> None:
    _, started = launch_order(START_ORDER)
    assert sorted(started) == sorted(START_ORDER)
