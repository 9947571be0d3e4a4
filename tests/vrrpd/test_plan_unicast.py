"""From config to plan: per-peer TTL bounds and the old_unicast_checksum mode."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from core import loads
from vrrpd.plan import InstancePlan, plan

CONFIG = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    version 3
    unicast_src_ip 192.0.2.11
    unicast_peer {{
{peers}
    }}
    {option}
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
"""


def plan_of(peers: str, option: str = "") -> InstancePlan:
    result = loads(CONFIG.format(peers=peers, option=option), script_env=None)
    assert not [p for p in result.problems if p.severity == "error"], result.problems
    (p,) = plan(result.config)
    return p


def test_peer_ttls_fill_in_keepalived_defaults_and_imply_check_unicast_src() -> None:
    p = plan_of(
        "        192.0.2.12 min_ttl 64\n"
        "        192.0.2.13 max_ttl 200\n"
        "        192.0.2.14 min_ttl 10 max_ttl 20\n"
        "        192.0.2.15\n"
    )
    assert p.peer_ttls == (
        (IPv4Address("192.0.2.12"), 64, 255),
        (IPv4Address("192.0.2.13"), 0, 200),
        (IPv4Address("192.0.2.14"), 10, 20),
    )
    assert p.check_unicast_src


def test_no_peer_ttls_leaves_source_checking_off() -> None:
    p = plan_of("        192.0.2.12\n")
    assert p.peer_ttls == ()
    assert not p.check_unicast_src


@pytest.mark.parametrize(
    ("option", "mode"),
    [("", "auto"), ("old_unicast_checksum", "always"), ("old_unicast_checksum never", "never")],
)
def test_old_unicast_checksum_mode(option: str, mode: str) -> None:
    assert plan_of("        192.0.2.12\n", option).old_unicast_checksum == mode
