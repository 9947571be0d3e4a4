"""What every LVS datapath backend offers, and the automatic choice between them.

IPVS is keepalived's own datapath and is preferred where the kernel has it (its generic
netlink family ``IPVS`` exists); otherwise the nftables backend does the same job (see
docs/lvs.md for what differs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import GenericNetlinkSocket

from netd.lvs.model import VirtualServer
from netd.lvs.nft_backend import Applied, NftablesBackend

__all__ = ["LvsBackend", "choose_backend", "ipvs_available"]


class LvsBackend(Protocol):
    """A kernel datapath for virtual servers (one thread only)."""

    @property
    def name(self) -> str: ...

    def start(self) -> list[str]:
        """Remove what a killed earlier run left; return what was removed."""
        ...

    def apply(self, desired: Sequence[VirtualServer]) -> Applied:
        """Make the kernel forward as ``desired`` says, changing only what differs."""
        ...

    def reconcile(self, desired: Sequence[VirtualServer]) -> Applied:
        """Like :meth:`apply`, after reading the kernel back and repairing any drift."""
        ...

    def withdraw(self) -> None:
        """Remove every virtual server we programmed."""
        ...

    def close(self) -> None: ...


def ipvs_available() -> bool:
    """Whether the kernel has IPVS (its generic netlink family resolves)."""
    sock = GenericNetlinkSocket()
    try:
        sock.bind("IPVS", object)
    except NetlinkError:
        return False
    finally:
        sock.close()
    return True


def choose_backend(table: str | None = None) -> LvsBackend:
    """IPVS if this kernel has it and it is implemented, else nftables."""
    # The IPVS backend is not written yet (this project's target kernels have no IPVS);
    # ipvs_available() is what will pick it.
    return NftablesBackend(table) if table else NftablesBackend()
