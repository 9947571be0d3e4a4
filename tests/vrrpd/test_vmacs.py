"""VMAC naming and placement (vrrpd.vmacs), and the intent fields plan() derives from them."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from core import Config, loads
from vrrpd.plan import plan
from vrrpd.vmacs import assign_vmacs, vmac_name_candidates


def instance(name: str, vrid: int, body: str, interface: str = "eth0") -> str:
    return f"""
vrrp_instance {name} {{
    interface {interface}
    virtual_router_id {vrid}
    priority 100
{body}
}}
"""


def parsed(text: str) -> Config:
    result = loads(text)
    errors = [p for p in result.problems if p.severity == "error"]
    assert not errors, errors
    return result.config


def test_candidates_follow_keepalived_order() -> None:
    v4 = list(itertools.islice(vmac_name_candidates("vrrp", 51, 4), 4))
    v6 = list(itertools.islice(vmac_name_candidates("vrrp", 51, 6), 8))
    assert v4 == ["vrrp.51", "vrrp1.51", "vrrp2.51", "vrrp3.51"]
    # IPv6 tries vrrp6 right after the plain name, then 1..5, 7, ... (never 6 twice)
    assert v6 == [
        "vrrp.51",
        "vrrp6.51",
        "vrrp1.51",
        "vrrp2.51",
        "vrrp3.51",
        "vrrp4.51",
        "vrrp5.51",
        "vrrp7.51",
    ]


@given(
    prefix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20),
    vrid=st.integers(1, 255),
    family=st.sampled_from([4, 6]),
)
def test_candidates_fit_ifnamsiz_keep_the_vrid_and_never_repeat(
    prefix: str, vrid: int, family: int
) -> None:
    names = list(itertools.islice(vmac_name_candidates(prefix, vrid, family), 30))
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name) <= 15
        assert name.endswith(f".{vrid}")
        assert prefix.startswith(name.split(".")[0].rstrip("0123456789"))


def test_long_prefix_is_shortened_not_the_vrid() -> None:
    first = next(vmac_name_candidates("averyverylongprefix", 255, 4))
    assert first == "averyverylo.255" and len(first) == 15


def test_names_as_keepalived_2_2_7_gave_them_in_a_namespace() -> None:
    """keepalived 2.2.7 with this file created vx.51 and va.51 (VI_1), vx.52 (VI_2) and
    vx1.52 (VI_3: vx.52 was taken), with both eth1 VIPs on va.51."""
    text = (
        """
global_defs {
    vmac_prefix vx
    vmac_addr_prefix va
}
"""
        + instance(
            "VI_1",
            51,
            """    use_vmac
    use_vmac_addr
    virtual_ipaddress {
        192.0.2.10/24
        198.51.100.10/24 dev eth1
        198.51.100.11/24 dev eth1
    }""",
        )
        + instance(
            "VI_2", 52, "    use_vmac\n    virtual_ipaddress {\n        192.0.2.11/24\n    }"
        )
        + instance(
            "VI_3",
            52,
            "    use_vmac\n    virtual_ipaddress {\n        198.51.100.12/24\n    }",
            interface="eth1",
        )
    )
    vm = assign_vmacs(parsed(text))
    assert vm["VI_1"].own is not None and vm["VI_1"].own["name"] == "vx.51"
    assert [(v["name"], v["base"], v["mac"]) for v in vm["VI_1"].extra] == [
        ("va.51", "eth1", "00:00:5e:00:01:33")
    ]
    assert vm["VI_1"].devs == {("vip", 0): "vx.51", ("vip", 1): "va.51", ("vip", 2): "va.51"}
    assert vm["VI_2"].own is not None and vm["VI_2"].own["name"] == "vx.52"
    assert vm["VI_3"].own is not None and vm["VI_3"].own["name"] == "vx1.52"


def test_explicit_names_and_configured_interfaces_are_taken() -> None:
    text = (
        instance("VI_A", 7, "    use_vmac\n    virtual_ipaddress {\n        192.0.2.1/24\n    }")
        + instance(
            "VI_B",
            7,
            "    use_vmac vrrp.7\n    virtual_ipaddress {\n        192.0.2.2/24\n    }",
            interface="eth1",
        )
        + instance("VI_C", 8, "    use_vmac\n    virtual_ipaddress {\n        192.0.2.3/24\n    }")
        + instance(
            "VI_D", 9, "    virtual_ipaddress {\n        192.0.2.4/24\n    }", interface="vrrp.8"
        )
    )
    vm = assign_vmacs(parsed(text))
    # VI_B named vrrp.7 explicitly, so VI_A (first in the file) moves on
    assert vm["VI_A"].own is not None and vm["VI_A"].own["name"] == "vrrp1.7"
    assert vm["VI_B"].own is not None and vm["VI_B"].own["name"] == "vrrp.7"
    # an interface the configuration uses is not a free name
    assert vm["VI_C"].own is not None and vm["VI_C"].own["name"] == "vrrp1.8"


def test_use_vmac_addr_without_use_vmac_and_for_the_other_family() -> None:
    text = instance(
        "VI_1",
        51,
        """    use_vmac_addr
    virtual_ipaddress {
        192.0.2.10/24
        198.51.100.10/24 dev eth1
    }
    virtual_ipaddress_excluded {
        2001:db8::10/64
    }""",
    )
    vm = assign_vmacs(parsed(text))["VI_1"]
    assert vm.own is None
    # The instance's own-family VIP on its interface stays there (no use_vmac) ...
    assert ("vip", 0) not in vm.devs
    # ... the eth1 VIP and the other-family eVIP on eth0 each get a VMAC.
    assert [(v["name"], v["base"], v["family"], v["mac"]) for v in vm.extra] == [
        ("vrrp.51", "eth1", 4, "00:00:5e:00:01:33"),
        ("vrrp6.51", "eth0", 6, "00:00:5e:00:02:33"),
    ]
    assert vm.devs == {("vip", 1): "vrrp.51", ("evip", 0): "vrrp6.51"}


def test_plan_puts_vmac_devs_in_the_items_and_vmac_fields_in_the_intent() -> None:
    text = (
        """
global_defs {
    vrrp_garp_extra_if all 30
}
"""
        + instance(
            "VI_1",
            51,
            """    use_vmac
    use_vmac_addr
    virtual_ipaddress {
        192.0.2.10/24
        198.51.100.10/24 dev eth1
    }
    virtual_ipaddress_excluded {
        192.0.2.20/24
    }""",
        )
        + instance(
            "VI_2",
            52,
            "    garp_extra_if 5\n    virtual_ipaddress {\n        192.0.2.11/24\n    }",
        )
        + instance(
            "VI_3",
            53,
            "    garp_extra_if 0\n    virtual_ipaddress {\n        192.0.2.12/24\n    }",
        )
    )
    plans = {p.name: p for p in plan(parsed(text))}
    p1 = plans["VI_1"]
    devs = [(i["kind"], i["spec"]["dev"]) for i in p1.net_items]
    # keepalived puts same-family eVIPs on the VMAC too
    assert devs == [("vip", "vrrp.51"), ("vip", "vrrp1.51"), ("evip", "vrrp.51")]
    fields = p1.vmac_fields
    assert fields["vmac"]["name"] == "vrrp.51"
    assert [v["name"] for v in fields["addr_vmacs"]] == ["vrrp1.51"]
    # global vrrp_garp_extra_if applies where the instance says nothing; 0 turns it off
    assert fields["garp_extra_if"] == {"interval": 30.0, "all": True}
    assert plans["VI_2"].vmac_fields["garp_extra_if"] == {"interval": 5.0, "all": False}
    assert plans["VI_3"].vmac_fields["garp_extra_if"] is None
    assert plans["VI_2"].vmac_fields["vmac"] is None
    assert plans["VI_2"].vmac_fields["addr_vmacs"] == []
