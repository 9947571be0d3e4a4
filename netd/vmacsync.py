"""The VMACs the intents name, kept in the kernel: created before their VIPs, proto-down while
their instance is not MASTER, removed when no longer wanted (and, at stop, all of them).

An intent may name a VMAC (``use_vmac``): it is created before the instance's VIPs go on it
and kept as long as the instance is configured (keepalived creates it at start whatever the
state), or only while the VIPs are held if the intent says ``always: false``. ``addr_vmacs``
(``use_vmac_addr``) are more VMACs of the same instance, for its VIPs on other interfaces.
While the instance is not MASTER its VMACs that carry no adverts are kept ``protodown on``
(no carrier: they send nothing, neither ARP replies nor IGMP/MLD reports that would teach the
switch the virtual MAC, yet still receive); they are set back before the VIPs and GARPs of a
new MASTER, so a peer sees no difference. The VMAC the adverts leave from is included only
with ``PYKEEPALIVED_VMAC_PROTODOWN=all`` (see ``netd.vmacintent.PROTODOWN_DEFAULT``). VMACs
an earlier run left go when the start-up grace ends unclaimed.

Kernel calls go through the daemon's netlink worker (``run``); what happens to the links and
owners around a VMAC (its link learnt, its IPv6 link-local address) is the daemon's, through
``made`` and ``gone``.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog

from bus import messages
from netd.errors import KernelError, VmacError
from netd.owners import Owners
from netd.vmac import Vmac, VmacManager
from netd.vmacintent import VmacSpec, wants_protodown

__all__ = ["VmacSync"]

log = structlog.get_logger(__name__)
Runner = Callable[..., Awaitable[Any]]


class VmacSync:
    def __init__(
        self,
        owners: Owners,
        run: Runner,
        policy: str,
        made: Callable[[Vmac, VmacSpec], None],
        gone: Callable[[str], None],
        carrier: Callable[[str], bool],
    ) -> None:
        self.owners = owners
        self.manager: VmacManager  # set once the kernel is open
        self._run = run
        self.policy = policy
        self._made = made
        self._gone = gone
        self._carrier = carrier
        self.made: dict[str, VmacSpec] = {}  # what exists because of us
        self.leftovers: set[str] = set()  # VMACs an earlier run left
        self._protodown: dict[str, bool] = {}  # VMAC -> the protodown we last set
        # VMAC -> (owner, protodown asked, failure): reported in net.applied, not retried
        # until what is asked changes
        self._failed: dict[str, tuple[str, bool, messages.Failure]] = {}

    def failures(self) -> Iterator[tuple[str, messages.Failure]]:
        """(owner, failure) for net.applied: protodown the kernel refused."""
        for owner, _, failure in self._failed.values():
            yield owner, failure

    def vanished(self, name: str) -> bool:
        """A link went away: True if it was one of ours (the next sync re-creates it)."""
        return self.made.pop(name, None) is not None

    def wanted(self) -> dict[str, tuple[str, VmacSpec]]:
        """VMAC name -> (owner, spec) for every VMAC that should exist now."""
        return {
            spec.name: (state.name, spec)
            for state in self.owners.sorted()
            for spec in state.vmacs
            if spec.always or state.held
        }

    async def sync(self, grace_over: bool) -> None:
        """Create the VMACs intents name (before their VIPs go on them); remove the rest."""
        wanted = self.wanted()
        for name, (owner, spec) in wanted.items():
            down = wants_protodown(self.policy, spec, self.owners.of(owner).master)
            if self.made.get(name) != spec and not await self._create(name, spec, down):
                continue
            await self.protodown(owner, name, down)
        doomed = [n for n in self.made if n not in wanted]
        if grace_over:
            doomed += [n for n in self.leftovers if n not in wanted]
        for name in doomed:
            await self.remove(name)

    async def _create(self, name: str, spec: VmacSpec, down: bool) -> bool:
        family = socket.AF_INET6 if spec.family == 6 else socket.AF_INET
        ensure = functools.partial(
            self.manager.ensure,
            spec.base,
            spec.vrid,
            family,
            ifname=name,
            mac=spec.mac,
            protodown=down,
        )
        try:
            vmac: Vmac = await self._run(ensure)
        except (VmacError, KernelError) as exc:
            log.error("netd.vmac.failed", vmac=name, base=spec.base, reason=str(exc))
            return False
        self.made[name] = spec
        self._protodown[name] = vmac.protodown
        self.leftovers.discard(name)
        self._made(vmac, spec)
        return True

    async def protodown(self, owner: str, name: str, down: bool) -> None:
        """A VMAC sends nothing unless its instance is MASTER (see the module docstring)."""
        # A macvlan gets its base's carrier back when it or its base goes up, protodown or
        # not (Linux 6.x); that link event brings us here, and setting it again takes the
        # carrier away.
        if self._protodown.get(name) == down and not (down and self._carrier(name)):
            return
        failed = self._failed.get(name)
        if failed is not None and failed[1] == down:
            return  # reported already; try again when what is asked changes
        try:
            await self._run(self.manager.set_protodown, name, down)
        except VmacError as exc:
            log.error(
                "netd.vmac.protodown_failed",
                vmac=name,
                on=down,
                reason=str(exc),
                detail="this kernel or interface refuses protodown (macvlan needs Linux 5.1)",
            )
            failure = messages.Failure(
                item={"kind": "vmac", "ifname": name},
                action=f"protodown {'on' if down else 'off'}",
                errno=exc.errno_name,
                reason=exc.reason,
            )
            self._failed[name] = (owner, down, failure)
            self.owners.of(owner).published = None  # re-publish net.applied with the failure
            return
        self._protodown[name] = down
        if self._failed.pop(name, None) is not None:
            self.owners.of(owner).published = None

    async def remove(self, name: str) -> None:
        # Forget it first: its RTM_DELLINK must not read as "vanished, re-create it".
        self._gone(name)
        spec = self.made.pop(name, None)
        self._protodown.pop(name, None)
        self._failed.pop(name, None)
        try:
            await self._run(self.manager.remove, name)
        except VmacError as exc:
            log.error("netd.vmac.remove_failed", vmac=name, reason=str(exc))
            if spec is not None:
                self.made[name] = spec
            return
        self.leftovers.discard(name)

    async def remove_all(self) -> None:
        """keepalived deletes its VMACs at stop (after the VIPs). The named ones too: a sync
        cancelled by the TERM may have created one without recording it."""
        named = (spec.name for state in self.owners for spec in state.vmacs)
        for name in dict.fromkeys([*self.made, *self.leftovers, *named]):
            await self.remove(name)
