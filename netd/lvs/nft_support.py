"""What the nftables datapath cannot forward, said before anything is laid out.

The model (:mod:`netd.lvs.model`) accepts every forwarding method, since IPVS has all three;
this is the nftables backend's own refusal, per virtual server, so that the driver reports it
for that one alone and programs the others.
"""

from __future__ import annotations

from netd.errors import LvsUnsupportedError
from netd.lvs.model import Forwarding, VirtualServer

__all__ = ["refuse_unsupported"]


def refuse_unsupported(vs: VirtualServer) -> None:
    """Raise :class:`LvsUnsupportedError` if the nftables datapath cannot forward ``vs``."""
    where = vs.name or str(vs.service)
    if vs.forwarding is Forwarding.TUN:
        raise LvsUnsupportedError(
            f"{where}: lvs_method TUN is not supported by the nftables datapath "
            "(nftables has no IP-in-IP encapsulation; use NAT or DR, or lvs_backend ipvs)"
        )
    if vs.service.fwmark is None and vs.service.port == 0:
        raise LvsUnsupportedError(
            f"{where}: port 0 services (every port, with persistence) are not supported by the "
            "nftables datapath (use a fwmark service, or lvs_backend ipvs)"
        )
    fwmark = any(s.fwmark is not None for s in (vs.service, *vs.aliases))
    if vs.forwarding is Forwarding.DR and fwmark:
        raise LvsUnsupportedError(
            f"{where}: lvs_method DR with a fwmark service is not implemented by the nftables "
            "datapath (marks are set after its ingress hook); use an address and port"
        )
