"""Accept_Mode as keepalived resolves it: configured value shown, owner always accepting."""

from __future__ import annotations

import pytest

import core
from vrrpd.machine import Machine
from vrrpd.plan import plan

BASE = """
global_defs {{
    {glob}
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    version {version}
    priority {priority}
    {option}
    virtual_ipaddress {{
        192.0.2.1/24
    }}
}}
"""


@pytest.mark.parametrize(
    ("glob", "version", "priority", "option", "shown", "machine"),
    [
        ("", 3, 100, "", True, True),  # accept is the default outside strict mode
        ("vrrp_strict", 3, 100, "", False, False),  # strict implies no_accept...
        ("vrrp_strict", 3, 255, "", True, True),  # ...but not for the owner
        ("vrrp_strict", 3, 100, "accept", True, True),
        ("", 3, 100, "no_accept", False, False),
        ("", 3, 255, "no_accept", False, True),  # shown disabled, no drop rules (keepalived)
        ("vrrp_strict", 2, 100, "accept", False, False),  # v2 cannot accept in strict mode
        ("", 2, 100, "accept", True, True),
    ],
)
def test_accept_mode_resolution(
    glob: str, version: int, priority: int, option: str, shown: bool, machine: bool
) -> None:
    text = BASE.format(glob=glob, version=version, priority=priority, option=option)
    config = core.loads(text).config
    inst = config.instances[0]
    assert core.vrrp_settings(config, inst).accept is shown
    assert Machine(plan(config)[0].params).accept is machine
