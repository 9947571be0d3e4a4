"""What an earlier netd installed and left (it was killed, or the whole group was), found at
start: addresses, routes and rules by netd's kernel marker or state file, and VMACs by their
VRRP virtual MAC.

The daemon holds the items for the start-up grace as the pseudo-owner ``~leftover`` (see
:mod:`netd.leases`) and removes the VMACs nobody claims when the grace ends (see
:mod:`netd.vmacsync`); here they are only found and logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from netd.desired import Item, describe
from netd.errors import KernelError, VmacError
from netd.kernel import KernelAdapter
from netd.vmac import Vmac, VmacManager

__all__ = ["Leftovers", "find_leftovers"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Leftovers:
    items: list[Item] = field(default_factory=list)
    vmacs: list[Vmac] = field(default_factory=list)


async def find_leftovers(
    run: Callable[..., Awaitable[Any]], kernel: KernelAdapter, vmacs: VmacManager
) -> Leftovers:
    """Read both through ``run`` (the netlink worker). A kernel that cannot be read is logged
    and yields nothing: the next reconcile removes nothing it does not know as netd's."""
    try:
        items: list[Item] = await run(kernel.find_leftovers)
    except KernelError as exc:
        log.error("netd.leftover.unreadable", reason=str(exc))
        return Leftovers()
    for item in items:
        log.info(
            "netd.leftover.found",
            item=describe(item),
            detail="installed by an earlier run; kept until claimed or the grace ends",
        )
    try:
        found: list[Vmac] = await run(vmacs.find)
    except VmacError as exc:
        log.error("netd.leftover.unreadable", reason=str(exc))
        found = []
    for vmac in found:
        log.info("netd.leftover.found", vmac=vmac.ifname, base=vmac.base, mac=vmac.mac)
    return Leftovers(items, found)
