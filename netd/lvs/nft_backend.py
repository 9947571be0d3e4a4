"""The LVS datapath on nftables: two tables of our own, changed only by atomic transactions.

This kernel-facing half runs what :mod:`netd.lvs.planner` decides, in two tables
(:class:`netd.lvs.nft_table.NftTable`): the ``inet`` table ``pykeepalived_lvs`` NATs the
``lvs_method NAT`` virtual servers, the ``netdev`` table ``pykeepalived_lvs_dr`` forwards the
``DR`` ones at ingress (the MAC of the real server, the VIP kept as destination). Each change,
of one table or both, is one transaction whose acknowledgements are all read (nftables batches
may span tables of several families), so either the kernel holds the whole new state of both
or nothing changed and the error names the operation and the kernel's reason.
It remembers what it applied, and :meth:`NftablesBackend.reconcile` reads the tables back and
rebuilds one in one transaction when someone changed it behind our back. The tables carry a
userdata marker; a table of that name without it is never touched, and marked leftovers of a
killed run are removed at start.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence
from typing import Final

from pyroute2.iproute import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.nftsocket import NFPROTO_INET, NFPROTO_NETDEV

from netd.errors import LvsConfigError, LvsUnsupportedError, NftError
from netd.lvs.layout import IngressChain, Obj, Objects, dr_base, layout
from netd.lvs.model import Forwarding, VirtualServer
from netd.lvs.nft_support import refuse_unsupported
from netd.lvs.nft_table import Applied, Fixed, NftTable, Pending, Signature, transact
from netd.lvs.render import DR_MARKER, MARKER, dr_skeleton, skeleton

__all__ = ["DEFAULT_DR_TABLE", "DEFAULT_TABLE", "Applied", "NftablesBackend", "Signature"]

DEFAULT_TABLE: Final = "pykeepalived_lvs"
DEFAULT_DR_TABLE: Final = "pykeepalived_lvs_dr"
_DISPATCH_MAPS: Final = ("svc4", "svc6", "fwm4", "fwm6")
_NAT_FIXED: Final = Fixed(
    frozenset({"dispatch", "prerouting", "output"}),
    frozenset(_DISPATCH_MAPS),
    frozenset(
        {("dispatch", t) for t in _DISPATCH_MAPS}
        | {("prerouting", "dispatch"), ("output", "dispatch")}
    ),
)
_DR_FIXED: Final = Fixed(
    frozenset({"dispatch"}),
    frozenset({"svc4", "svc6"}),
    frozenset({("dispatch", "svc4"), ("dispatch", "svc6")}),
)
_IFF_LOOPBACK: Final = 0x8
_RTN_UNICAST, _RTN_LOCAL = 1, 2


def _layout(
    desired: Sequence[VirtualServer], previous: Objects, routes: dict[str, int] | None = None
) -> dict[tuple[str, ...], Obj]:
    """The layout, its refusals given an errno like the kernel's (the driver then retries one
    virtual server at a time, and the refused one alone is reported)."""
    try:
        return layout(desired, previous, routes)
    except LvsUnsupportedError as exc:
        raise NftError("lvs layout", errno.EOPNOTSUPP, "EOPNOTSUPP", str(exc)) from exc
    except LvsConfigError as exc:
        raise NftError("lvs layout", errno.EINVAL, "EINVAL", str(exc)) from exc


def _merge(*results: Applied) -> Applied:
    ops = tuple(op for r in results for op in r.ops)
    return Applied(ops, max(r.generation for r in results), any(r.rebuilt for r in results))


class NftablesBackend:
    """The ``inet`` table ``table`` and the ``netdev`` table ``dr_table`` (netlink I/O; call
    from one thread only)."""

    name: Final = "nftables"

    def __init__(self, table: str = DEFAULT_TABLE, dr_table: str = DEFAULT_DR_TABLE) -> None:
        """Opens the sockets now: the tables live in the caller's network namespace."""
        self.table = table
        self.nat = NftTable(NFPROTO_INET, table, MARKER, skeleton, _NAT_FIXED)
        self.dr = NftTable(NFPROTO_NETDEV, dr_table, DR_MARKER, dr_skeleton, _DR_FIXED)
        self.sock = self.nat.sock
        self._ipr = IPRoute()
        # real server -> interface index: a route lookup costs ~0.5 ms, a 1,000-server pool's
        # would dominate a one-server change; looked up again at each reconcile
        self._routes: dict[str, int] = {}

    @property
    def applied(self) -> Objects:
        return self.nat.objects

    def rule_handles(self, chains: Iterable[str] | None = None) -> dict[tuple[str, str], int]:
        """(chain, rule tag) -> handle of the NAT table's rules (see NftTable.rule_handles)."""
        return self.nat.rule_handles(chains)

    def observe(self) -> Signature | None:
        return self.nat.observe()

    # ---- the DR table's view of the director's links ---------------------------------------

    def _devices(self) -> list[str]:
        """Every interface but loopback: a client's packet is taken where it arrives."""
        return [
            str(link.get_attr("IFLA_IFNAME"))
            for link in self._ipr.get_links()
            if not link["flags"] & _IFF_LOOPBACK
        ]

    def _route(self, vs: VirtualServer, address: str) -> int:
        """The interface index ``address`` is reached through, directly (DR rewrites only the
        MAC: a real server behind a gateway would get the gateway's)."""
        if (known := self._routes.get(address)) is not None:
            return known
        self._routes[address] = index = self._lookup(vs, address)
        return index

    def _lookup(self, vs: VirtualServer, address: str) -> int:
        what = f"{vs.name or vs.service}: lvs_method DR"
        try:
            (route,) = self._ipr.route("get", dst=address)[:1]
        except NetlinkError as exc:
            name = errno.errorcode.get(exc.code, "?")
            raise NftError(what, exc.code, name, f"no route to real server {address}") from exc
        gateway = route.get_attr("RTA_GATEWAY")
        if route["type"] == _RTN_LOCAL:
            reason = f"real server {address} is an address of the director itself"
        elif route["type"] != _RTN_UNICAST:
            reason = f"real server {address} has no unicast route (blackhole, unreachable, …)"
        elif gateway is not None:
            reason = (
                f"real server {address} is reached through the gateway {gateway}; DR needs "
                "real servers on a network the director is directly connected to (use NAT)"
            )
        else:
            return int(route.get_attr("RTA_OIF"))
        raise NftError(what, errno.EINVAL, "EINVAL", reason)

    def _dr_objects(self, desired: Sequence[VirtualServer]) -> dict[tuple[str, ...], Obj]:
        routes = {m.address: self._route(vs, m.address) for vs in desired for _, m in vs.pool()}
        return {**dr_base(self._devices()), **_layout(desired, self.dr.objects, routes)}

    # ---- changing them -------------------------------------------------------------------

    def start(self) -> list[str]:
        """Remove every table carrying our markers (a killed run's), in one transaction; return
        their names."""
        nat, nat_part = self.nat.plan_remove_marked()
        dr, dr_part = self.dr.plan_remove_marked()
        transact(self.sock, [nat_part, dr_part])
        return [*nat, *dr]

    def _plan_dr(self, desired: Sequence[VirtualServer], *, drift: bool) -> Pending | None:
        if not desired:
            # no DR virtual server: no ingress hooks either
            return self.dr.plan_withdraw() if self.dr.built else None
        objects = self._dr_objects(desired)

        def ingress(objs: Objects) -> set[Obj]:
            return {o for o in objs.values() if isinstance(o, IngressChain)}

        # An interface came or went (a chain of a gone device may be gone with it): rebuild.
        if drift or (self.dr.built and ingress(objects) != ingress(self.dr.objects)):
            return self.dr.plan_build(objects, drift=drift)
        return self.dr.plan_apply(objects)

    def check(self, vs: VirtualServer) -> None:
        """Raise :class:`netd.errors.LvsUnsupportedError` if this datapath cannot forward ``vs``."""
        refuse_unsupported(vs)

    def apply(self, desired: Sequence[VirtualServer]) -> Applied:
        """Make the tables implement ``desired``: both tables' changes in one transaction."""
        return self._apply(desired, drift_nat=False, drift_dr=False)

    def _apply(
        self, desired: Sequence[VirtualServer], *, drift_nat: bool, drift_dr: bool
    ) -> Applied:
        dr = [vs for vs in desired if vs.forwarding is Forwarding.DR]
        rest = [vs for vs in desired if vs.forwarding is not Forwarding.DR]
        # Everything is planned (layouts, the DR real servers' routes, rule handles) before
        # anything is sent: a refusal of either table's part leaves both as they were.
        objects = _layout(rest, self.nat.objects)
        parts = [
            self.nat.plan_build(objects, drift=True) if drift_nat else self.nat.plan_apply(objects)
        ]
        if (dr_part := self._plan_dr(dr, drift=drift_dr)) is not None:
            parts.append(dr_part)
        return _merge(*transact(self.sock, parts))

    def reconcile(self, desired: Sequence[VirtualServer]) -> Applied:
        """Read the tables back; rebuild one that drifted from what we applied, then apply
        (with the DR real servers' routes looked up again)."""
        self._routes.clear()
        return self._apply(desired, drift_nat=self.nat.drifted(), drift_dr=self.dr.drifted())

    def withdraw(self) -> None:
        """Remove our tables (nothing is balanced any more), in one transaction."""
        transact(self.sock, [self.nat.plan_withdraw(), self.dr.plan_withdraw()])

    def close(self) -> None:
        self.nat.close()
        self.dr.close()
        self._ipr.close()
