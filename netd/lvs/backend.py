"""What every LVS datapath backend offers, and the choice between them.

IPVS is keepalived's own datapath and is preferred where the kernel has it (its generic
netlink family ``IPVS`` exists); otherwise the nftables backend does the same job (see
docs/lvs.md for what differs). ``lvs_backend`` in ``global_defs`` overrides the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from netd.lvs.ipvs_backend import IpvsBackend, ipvs_available
from netd.lvs.model import VirtualServer
from netd.lvs.nft_backend import NftablesBackend
from netd.lvs.settings import LvsSettings

__all__ = ["LvsBackend", "Outcome", "choose_backend", "ipvs_available"]


class Outcome(Protocol):
    """What an apply did: its operations, a generation and whether all was rebuilt."""

    @property
    def ops(self) -> Sequence[object]: ...

    @property
    def generation(self) -> int: ...

    @property
    def rebuilt(self) -> bool: ...


class LvsBackend(Protocol):
    """A kernel datapath for virtual servers (one thread only)."""

    @property
    def name(self) -> str: ...

    def check(self, vs: VirtualServer) -> None:
        """Raise :class:`netd.errors.LvsUnsupportedError` if this datapath cannot forward
        ``vs`` (the driver reports that virtual server alone)."""
        ...

    def start(self) -> list[str]:
        """Remove what a killed earlier run left; return what was removed."""
        ...

    def apply(self, desired: Sequence[VirtualServer]) -> Outcome:
        """Make the kernel forward as ``desired`` says, changing only what differs."""
        ...

    def reconcile(self, desired: Sequence[VirtualServer]) -> Outcome:
        """Like :meth:`apply`, after reading the kernel back and repairing any drift."""
        ...

    def withdraw(self) -> None:
        """Remove every virtual server we programmed."""
        ...

    def close(self) -> None: ...


def choose_backend(settings: LvsSettings | None = None, table: str | None = None) -> LvsBackend:
    """``lvs_backend``: ``ipvs``, ``nftables``, or ``auto`` (IPVS if this kernel has it)."""
    settings = settings or LvsSettings()
    use_ipvs = settings.backend == "ipvs" or (settings.backend == "auto" and ipvs_available())
    if use_ipvs:
        return IpvsBackend(
            flush_at_start=settings.flush_at_start,
            flush_on_stop=settings.flush_on_stop,
            timeouts=settings.timeouts,
        )
    return NftablesBackend(table) if table else NftablesBackend()
