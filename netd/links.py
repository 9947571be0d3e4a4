"""Every interface netd knows, kept from the kernel's dumps and notifications and published as
``net.link.<ifname>`` (retained) and ``net.addr`` (each address that comes or goes).

The daemon reads the kernel through its adapter (``KernelAdapter.links()`` and
``interface_addresses()``) at start and after a netlink overflow, and hands every monitor
notification in; here they become :class:`~netd.linkstate.LinkState` records and bus messages.
What a change means for the kernel (a reconcile, a VMAC to re-create) is the daemon's: the
methods say what changed and leave it to the caller.

Address notifications come in bursts (installing 255 VIPs brings 255 of them, and each
``net.link`` message lists every address of its link), so a link whose addresses changed is
published once, at the end of the loop turn.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import structlog

from bus import messages
from netd.linkstate import LinkState
from netd.monitor import AddrEvent, LinkEvent

__all__ = ["Links", "Publisher"]

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, body: Mapping[str, Any]) -> None: ...

    def retain(self, topic: str, body: Mapping[str, Any]) -> None: ...


class Links:
    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._links: dict[int, LinkState] = {}
        self._changed: set[int] = set()  # ifindexes to publish at the end of this turn

    def __iter__(self) -> Iterator[LinkState]:
        return iter(self._links.values())

    def name_of(self, ifindex: int) -> str | None:
        link = self._links.get(ifindex)
        return link.name if link is not None else None

    def named(self, name: str) -> LinkState | None:
        return next((link for link in self._links.values() if link.name == name), None)

    def macs(self) -> dict[str, str | None]:
        """Interface name -> MAC: where GARP/NA frames come from."""
        return {link.name: link.mac for link in self._links.values()}

    def carrier(self, name: str) -> bool:
        return any(link.up for link in self._links.values() if link.name == name)

    # ---- what the kernel says ---------------------------------------------------------------

    def reset(self, links: Iterable[LinkEvent], addresses: Iterable[AddrEvent]) -> None:
        """Every link and address as the kernel lists them now (start, or after Overflow),
        all published."""
        self._links = {ev.ifindex: LinkState.from_event(ev) for ev in links}
        for addr in addresses:
            link = self._links.get(addr.ifindex)
            if link is not None:
                link.observe(addr)
        for link in self._links.values():
            self._publish(link)

    def link_event(self, ev: LinkEvent) -> tuple[bool, str | None]:
        """Apply one link notification: (the links changed, the name of a link that went)."""
        if ev.removed:
            gone = self._links.pop(ev.ifindex, None)
            if gone is None:
                return False, None
            down = dataclasses.replace(gone.report(), up=False)
            self._publisher.retain(f"net.link.{gone.name}", down.encode())
            return False, gone.name
        link = self._links.get(ev.ifindex)
        name = ev.ifname or (link.name if link else str(ev.ifindex))
        if link is None:
            link = self._links[ev.ifindex] = LinkState.from_event(ev)
            link.name = name
            self._publish(link)
            return True, None
        changed = (link.up, link.mac, link.name) != (ev.usable, ev.mac, name)
        link.up, link.mac, link.name, link.oper_state = ev.usable, ev.mac, name, ev.oper_state
        if changed:
            log.info("net.link", name=name, up=link.up, oper_state=ev.oper_state)
            self._publish(link)
        return changed, None

    def addr_event(self, ev: AddrEvent) -> bool:
        """Apply one address notification; True when an address went away (if it was
        netd's and is still desired, the next reconcile puts it back)."""
        link = self._links.get(ev.ifindex)
        if link is None:
            return False
        cidr = f"{ev.ip}/{ev.prefix}"
        present = cidr in link.addresses
        if not link.observe(ev):
            return False
        self._publish_soon(link)  # also when only its flags changed (DAD over, promoted)
        if ev.added == present:
            return False
        change = messages.AddrChange(ev.ifindex, cidr, ev.added, interface=link.name)
        self._publisher.publish("net.addr", change.encode())
        return not ev.added

    def learn(self, ifindex: int, name: str, up: bool, mac: str | None) -> None:
        """A link netd just made (a VMAC): known at once, before its notification arrives,
        so the GARPs right after this reconcile come from its MAC."""
        if ifindex not in self._links:
            link = self._links[ifindex] = LinkState(ifindex, name, up, mac, None)
            self._publish(link)

    # ---- publishing -------------------------------------------------------------------------

    def _publish(self, link: LinkState) -> None:
        self._changed.discard(link.ifindex)
        self._publisher.retain(f"net.link.{link.name}", link.report().encode())

    def _publish_soon(self, link: LinkState) -> None:
        if not self._changed:
            asyncio.get_running_loop().call_soon(self._flush)
        self._changed.add(link.ifindex)

    def _flush(self) -> None:
        pending, self._changed = self._changed, set()
        for ifindex in sorted(pending):
            link = self._links.get(ifindex)
            if link is not None:  # a removed link was published as down when it went
                self._publish(link)
