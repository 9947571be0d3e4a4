"""-X's choice of addresses: configured VIPs netd does not own (pure)."""

from __future__ import annotations

import core
from netd import foundvips
from netd.desired import Address, item_key
from netd.kernel import Observed

CONFIG = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.200/32
        192.0.2.201/32 dev eth1
    }
    virtual_ipaddress_excluded {
        2001:db8::200/128
    }
}
vrrp_instance VI_2 {
    interface eth0
    use_vmac
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.0.2.202/32
    }
}
"""


def _config() -> core.Config:
    return core.loads(CONFIG, config_id="n", script_env=None).config


def test_every_vip_on_its_interface_but_those_on_a_vmac() -> None:
    got = {(a.ip, a.dev) for a in foundvips.configured(_config())}
    assert got == {("192.0.2.200", "eth0"), ("192.0.2.201", "eth1"), ("2001:db8::200", "eth0")}


def test_only_what_netd_does_not_own() -> None:
    ours = Address(ip="192.0.2.201", prefix=32, dev="eth1")
    foreign = Address(ip="192.0.2.200", prefix=32, dev="eth0")
    other = Address(ip="198.51.100.5", prefix=32, dev="eth0")
    observed = Observed((ours, foreign, other), frozenset({item_key(ours)}))
    assert foundvips.unowned(foundvips.configured(_config()), observed) == [foreign]
