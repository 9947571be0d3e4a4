"""The four interop set-ups of issue #4 and the config each side of a two-node lab gets.

Node 0 always runs pykeepalived, node 1 always runs keepalived; both get the text of
:func:`tests.interop.peers.vrrp_config` with only router_id, priority and (for unicast) the
addresses swapped, so what is tested is keepalived.conf compatibility as well as the wire.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from _pytest.mark.structures import ParameterSet

from tests.daemon import DaemonGroup, daemon_group
from tests.interop.peers import BusWatch, KeepalivedPeer, vrrp_config
from tests.lab import Lab, Node

__all__ = ["OURS", "THEIRS", "VARIANTS", "Ours", "Variant", "keepalived", "pykeepalived"]

OURS = 0  # node index running pykeepalived
THEIRS = 1  # node index running keepalived


@dataclass(frozen=True, slots=True)
class Variant:
    id: str
    version: int
    family: int
    vip: str
    advert_int: float
    auth_pass: str | None = None
    unicast: bool = False
    auth_type: str = "PASS"  # with auth_pass: PASS or AH

    @property
    def master_down(self) -> float:
        """The worst Master_Down_Interval for any priority (3 x interval + skew < 1 interval)."""
        return 4 * self.advert_int

    def address(self, node: Node) -> str:
        return node.ip4 if self.family == 4 else node.ip6

    def config(self, lab: Lab, index: int, priority: int, **extra: Any) -> str:
        me, peer = lab.node(index), lab.node(1 - index)
        unicast: dict[str, Any] = {}
        if self.unicast:
            unicast = {"unicast_src": self.address(me), "unicast_peers": [self.address(peer)]}
        return vrrp_config(
            router_id=("pk" if index == OURS else "ka") + str(index),
            priority=priority,
            vips=(self.vip,),
            advert_int=self.advert_int,
            version=self.version,
            auth_pass=self.auth_pass,
            auth_type=self.auth_type,
            **unicast,
            **extra,
        )


VARIANTS = [
    pytest.param(
        Variant("v2-auth", 2, 4, "192.0.2.100/24", 1, auth_pass="s3cret"), id="v2-auth-pass"
    ),
    pytest.param(Variant("v3-ipv4", 3, 4, "192.0.2.100/24", 0.1), id="v3-ipv4"),
    pytest.param(Variant("v3-ipv6", 3, 6, "2001:db8::100/64", 0.1), id="v3-ipv6"),
    pytest.param(Variant("unicast", 3, 4, "192.0.2.100/24", 0.1, unicast=True), id="v3-unicast"),
]


def variant_of(param: ParameterSet) -> Variant:
    """The Variant a VARIANTS entry carries (pytest types a param's values as object)."""
    variant = param.values[0]
    assert isinstance(variant, Variant)
    return variant


@dataclass(slots=True)
class Ours:
    """A running pykeepalived group on node 0 and a watch on its ``vrrp.state.VI_1``."""

    group: DaemonGroup
    watch: BusWatch


@contextlib.contextmanager
def pykeepalived(lab: Lab, variant: Variant, priority: int, **extra: Any) -> Iterator[Ours]:
    config = variant.config(lab, OURS, priority, **extra)
    with daemon_group(lab.node(OURS), config, "-l") as group:
        group.wait_started()
        with BusWatch(group.runtime) as watch:
            try:
                yield Ours(group, watch)
            except BaseException:
                print("--- pykeepalived log ---\n" + group.log_text()[-20000:])
                raise


def keepalived(lab: Lab, variant: Variant, priority: int, **extra: Any) -> KeepalivedPeer:
    return KeepalivedPeer(lab.node(THEIRS), variant.config(lab, THEIRS, priority, **extra))
