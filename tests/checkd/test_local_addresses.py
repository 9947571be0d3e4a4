"""ha_suspend follows the addresses netd reports on ``net.link.*``, as keepalived follows
the kernel's (docs/checkers.md, "ha_suspend")."""

from __future__ import annotations

from typing import Any

import core
from checkd.checkplan import plan_virtual_server
from checkd.local_addresses import LocalAddresses
from checkd.lvs_service import LvsService
from checkd.pool_actions import ActionRunner
from core.model import GlobalDefs, RealServer, VirtualServer
from tests.checkd.support import FakePublisher


def link(name: str, *addresses: str, up: bool = True) -> tuple[str, dict[str, Any]]:
    return f"net.link.{name}", {"ifindex": 2, "name": name, "up": up, "addresses": addresses}


def test_every_address_of_every_link_that_is_up() -> None:
    local = LocalAddresses()
    assert local.update(*link("eth0", "192.0.2.1/24")) == frozenset({"192.0.2.1"})
    # a static address or one an operator added counts as much as a VIP; IPv6 is normalised
    held = local.update(*link("eth1", "198.51.100.7/32", "2001:DB8:0::10/64"))
    assert held == frozenset({"192.0.2.1", "198.51.100.7", "2001:db8::10"})
    assert local.update(*link("eth0")) == frozenset({"198.51.100.7", "2001:db8::10"})  # removed
    # down (or removed: netd reports it down with its last addresses) holds nothing
    assert local.update(*link("eth1", "198.51.100.7/32", up=False)) == frozenset()


def test_an_unusable_report_changes_nothing() -> None:
    local = LocalAddresses()
    local.update(*link("eth0", "192.0.2.1/24"))
    assert local.update("net.link.eth0", {"name": "eth0"}) is None
    assert local.update(*link("eth0", "not-an-address")) is None
    assert local.held == frozenset({"192.0.2.1"})


def test_ha_suspend_is_cleared_on_a_fwmark_service() -> None:
    rs = (RealServer(ip="198.51.100.1", port=80),)
    fwm = plan_virtual_server(
        VirtualServer(name="fwmark 7", fwmark=7, ha_suspend=True, real_servers=rs), GlobalDefs()
    )
    assert not fwm.ha_suspend
    assert fwm.warnings == (
        "Virtual server FWM 7: cannot use ha_suspend with fwmarks - clearing ha_suspend",
    )
    addressed = VirtualServer(
        name="192.0.2.1 80", ip="192.0.2.1", port=80, ha_suspend=True, real_servers=rs
    )
    assert plan_virtual_server(addressed, GlobalDefs()).ha_suspend


def test_the_service_suspends_and_resumes_on_link_reports() -> None:
    conf = (
        "virtual_server 192.0.2.10 80 {\n  protocol TCP\n  ha_suspend\n"
        "  real_server 198.51.100.1 80 {\n    TCP_CHECK {\n    }\n  }\n}\n"
    )
    service = LvsService(FakePublisher(), actions=ActionRunner())
    assert service.dump_text() is None  # no virtual servers: keepalived writes no file either
    assert service.apply_model(core.to_wire(core.loads(conf, script_env=None).config), 1)
    vs = "[192.0.2.10]:tcp:80"
    assert service.runner.suspended(vs)  # until netd says the address is here
    service.link(*link("eth0", "192.0.2.10/32"))
    assert not service.runner.suspended(vs)
    assert "   Enabled = yes\n" in (service.dump_text() or "")
    service.link(*link("eth0"))
    assert service.runner.suspended(vs)
    assert "   Enabled = no\n" in (service.dump_text() or "")
