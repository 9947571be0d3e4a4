"""netd's process logic: desired state from the bus in, kernel changes and observations out.

Owners of desired state:

* ``static`` — ``static_ipaddress``/``static_routes``/``static_rules`` from ``config.current``;
  held for as long as the config says so.
* ``vrrp:<instance>`` — ``vrrp.intent.<instance>`` from vrrpd; held only for ``lease``
  seconds unless renewed, so a dead vrrpd cannot keep an address its peer has taken over.

Every change marks the kernel "dirty"; one reconcile at a time merges all owners, observes the
kernel and applies the difference (idempotent: an add that exists and a delete that is missing
are successes). Netlink calls run on one worker thread: pyroute2's synchronous API cannot run
inside an asyncio loop, and a large dump must not stall the loop. For a short grace after
start, addresses this netd installed in an earlier life are kept, so a restarted netd does not
flap VIPs that vrrpd still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

import core
from bus import Component
from bus.envelope import Event as BusEvent
from netd import fromconfig
from netd.announce import AnnounceScheduler, FrameSender, Target
from netd.desired import Address, DesiredSet, Item, item_key, item_to_wire
from netd.errors import AnnounceError, InvalidItemError, KernelError
from netd.kernel import ApplyResult, KernelAdapter
from netd.monitor import AddrEvent, LinkEvent, Monitor, Overflow
from netd.reconcile import merge

log = structlog.get_logger(__name__)
T = TypeVar("T")

RESTART_GRACE = 2.0  # keep our own leftovers this long after start (intents arrive first)
LEASE_SLACK = 0.25
RECONCILE_EVERY = 5.0


@dataclass(slots=True)
class Owner:
    name: str
    generation: int
    items: list[Item]
    expires: float | None = None  # monotonic; None = no lease (static)
    announce: int = 0
    pending_garps: int = 0  # announce this many per address after the next reconcile
    published: tuple[int, int] | None = None  # (generation, failures) last reported


@dataclass(slots=True)
class LinkState:
    ifindex: int
    name: str
    up: bool
    mac: str | None
    oper_state: str | None
    addresses: set[str] = field(default_factory=set)

    def body(self) -> dict[str, Any]:
        return {
            "ifindex": self.ifindex,
            "name": self.name,
            "up": self.up,
            "mac": self.mac,
            "oper_state": self.oper_state,
            "addresses": sorted(self.addresses),
        }


class NetDaemon:
    def __init__(self, comp: Component) -> None:
        self.comp = comp
        self._netlink = ThreadPoolExecutor(1, thread_name_prefix="netlink")
        self.kernel: KernelAdapter
        self.monitor = Monitor()
        self.scheduler = AnnounceScheduler()
        self.frames = FrameSender()
        self.owners: dict[str, Owner] = {}
        self.links: dict[int, LinkState] = {}
        self.started = time.monotonic()
        self.config_hash: str | None = None
        self._dirty = False
        self._resync = False
        self._reconciling: asyncio.Task[None] | None = None
        self._garp_handle: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def _kernel(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.loop.run_in_executor(self._netlink, functools.partial(fn, *args))

    async def run(self) -> None:
        self.kernel = await self._kernel(KernelAdapter, self.comp.runtime.path)
        await self._read_links()
        for link in self.links.values():
            self._publish_link(link)
        self.loop.add_reader(self.monitor.fileno(), self._netlink_readable)
        sub = self.comp.subscribe("config.current", "vrrp.intent.*")
        ticker = asyncio.create_task(self._tick(), name="netd.tick")
        try:
            while True:
                for event in await sub.recv_batch():
                    self._dispatch(event)
        finally:
            ticker.cancel()
            await self.shutdown()

    # ---- inputs ------------------------------------------------------------------------------

    def _dispatch(self, event: BusEvent) -> None:
        try:
            if event.topic == "config.current":
                self._config(event.body)
            else:
                self._intent(event.body)
        except (KeyError, TypeError, ValueError, InvalidItemError, core.WireFormatError) as exc:
            log.error(
                "netd.input.invalid",
                topic=event.topic,
                src=event.env.src,
                reason=f"{type(exc).__name__}: {exc}",
            )

    def _config(self, body: Mapping[str, Any]) -> None:
        if body["hash"] == self.config_hash:
            return
        config = core.from_wire(body["model"])
        self.config_hash = body["hash"]
        items = fromconfig.static_items(config)
        self.owners["static"] = Owner("static", int(body["generation"]), items)
        self._mark_dirty()

    def _intent(self, body: Mapping[str, Any]) -> None:
        name = f"vrrp:{body['instance']}"
        generation = int(body["generation"])
        now = time.monotonic()
        owner = self.owners.get(name)
        expires = now + float(body["lease"]) + LEASE_SLACK
        if owner is not None and owner.generation == generation:
            owner.expires = expires  # a renewal
        else:
            items = fromconfig.intent_items(list(body["items"]), body.get("interface"))
            previous = owner.announce if owner else 0
            owner = Owner(name, generation, items, expires, announce=previous)
            self.owners[name] = owner
            if not items:
                self.scheduler.stop(name)
            self._mark_dirty()
        announce = int(body.get("announce", 0))
        if announce > owner.announce and body.get("held"):
            # Addresses first, then tell the segment: sent right after the next reconcile.
            owner.pending_garps = max(1, int(body.get("garp_count", 5)))
            self._mark_dirty()
        owner.announce = max(owner.announce, announce)

    def _netlink_readable(self) -> None:
        try:
            events = self.monitor.read()
        except KernelError as exc:
            log.error("netd.netlink.error", reason=str(exc))
            return
        for ev in events:
            if isinstance(ev, LinkEvent):
                self._link_event(ev)
            elif isinstance(ev, AddrEvent):
                self._addr_event(ev)
            elif isinstance(ev, Overflow):
                log.warning("netd.netlink.overflow", detail="notifications lost; re-reading")
                self._resync = True
                self._mark_dirty()

    def _link_event(self, ev: LinkEvent) -> None:
        if ev.removed:
            gone = self.links.pop(ev.ifindex, None)
            if gone:
                self.comp.publisher.retain(f"net.link.{gone.name}", {**gone.body(), "up": False})
            return
        link = self.links.get(ev.ifindex)
        name = ev.ifname or (link.name if link else str(ev.ifindex))
        if link is None:
            link = self.links[ev.ifindex] = LinkState(
                ev.ifindex, name, ev.usable, ev.mac, ev.oper_state
            )
            self._publish_link(link)
            self._mark_dirty()
            return
        changed = (link.up, link.mac, link.name) != (ev.usable, ev.mac, name)
        link.up, link.mac, link.name, link.oper_state = ev.usable, ev.mac, name, ev.oper_state
        if changed:
            log.info("net.link", name=name, up=link.up, oper_state=ev.oper_state)
            self._publish_link(link)
            self._mark_dirty()

    def _addr_event(self, ev: AddrEvent) -> None:
        link = self.links.get(ev.ifindex)
        cidr = f"{ev.ip}/{ev.prefix}"
        if link is None:
            return
        present = cidr in link.addresses
        if ev.added == present:
            return
        (link.addresses.add if ev.added else link.addresses.discard)(cidr)
        self.comp.publisher.publish(
            "net.addr",
            {"ifindex": ev.ifindex, "address": cidr, "present": ev.added, "interface": link.name},
        )
        self._publish_link(link)
        if not ev.added:
            self._mark_dirty()  # if it was ours and still desired, the reconcile re-adds it

    # ---- kernel ------------------------------------------------------------------------------

    async def _read_links(self) -> None:
        ipr = self.kernel.ipr
        links_dump = await self._kernel(lambda: list(self.kernel.call(ipr.link, "dump")))
        addr_dump = await self._kernel(lambda: list(self.kernel.call(ipr.addr, "dump")))
        self.links = {}
        for msg in links_dump:
            flags = int(msg["flags"])
            up = bool(flags & 0x1) and bool(flags & 0x40)  # IFF_UP and IFF_RUNNING
            self.links[int(msg["index"])] = LinkState(
                int(msg["index"]),
                str(msg.get("IFLA_IFNAME")),
                up,
                msg.get("IFLA_ADDRESS"),
                msg.get("IFLA_OPERSTATE"),
            )
        for msg in addr_dump:
            link = self.links.get(int(msg["index"]))
            if link is not None:
                link.addresses.add(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}")

    def _publish_link(self, link: LinkState) -> None:
        self.comp.publisher.retain(f"net.link.{link.name}", link.body())

    def _mark_dirty(self) -> None:
        self._dirty = True
        if self._reconciling is None or self._reconciling.done():
            self._reconciling = asyncio.create_task(self._reconcile_loop(), name="netd.reconcile")

    async def _reconcile_loop(self) -> None:
        """Reconcile until nothing new came in meanwhile (changes coalesce into one pass)."""
        while self._dirty:
            self._dirty = False
            if self._resync:
                self._resync = False
                await self._read_links()
                for link in self.links.values():
                    self._publish_link(link)
            await self._reconcile()
            for owner in self.owners.values():
                if owner.pending_garps:
                    self._announce(owner, owner.pending_garps)
                    owner.pending_garps = 0

    def _desired(self) -> list[Item]:
        merged = merge(
            DesiredSet(o.name, o.generation, tuple(o.items)) for o in self.owners.values()
        )
        for c in merged.conflicts:
            log.error("netd.conflict", key=str(c.key), kept=c.kept_owner, dropped=c.dropped_owner)
        return list(merged.items)

    async def _reconcile(self) -> None:
        desired = self._desired()
        grace = time.monotonic() - self.started < RESTART_GRACE
        try:
            if grace:
                wanted = {item_key(i) for i in desired}
                leftovers = await self._kernel(self.kernel.find_leftovers)
                desired += [i for i in leftovers if item_key(i) not in wanted]
            result = await self._kernel(self.kernel.reconcile, desired)
        except KernelError as exc:
            log.error("netd.reconcile.failed", reason=str(exc))
            return
        for op in result.done:
            log.info(f"netd.{op.action}", item=item_to_wire(op.item))
        self._report(result)

    def _report(self, result: ApplyResult) -> None:
        failed: dict[Any, list[dict[str, Any]]] = {}
        for f in result.failures:
            failed.setdefault(item_key(f.op.item), []).append(
                {
                    "item": item_to_wire(f.op.item),
                    "action": str(f.op.action),
                    "errno": f.errno_name,
                    "reason": f.reason,
                }
            )
        for owner in self.owners.values():
            failures = [x for i in owner.items for x in failed.get(item_key(i), [])]
            marker = (owner.generation, len(failures))
            if owner.published == marker:
                continue
            owner.published = marker
            self.comp.publisher.retain(
                f"net.applied.{owner.name}",
                {
                    "owner": owner.name,
                    "generation": owner.generation,
                    "failures": failures,
                    "items": len(owner.items),
                },
            )

    # ---- announcements -----------------------------------------------------------------------

    def _announce(self, owner: Owner, count: int) -> None:
        by_name = {link.name: link for link in self.links.values()}
        targets = []
        for item in owner.items:
            if isinstance(item, Address) and (link := by_name.get(item.dev)) and link.mac:
                targets.append(Target(ifname=item.dev, ip=item.ip, mac=link.mac))
        if not targets:
            return
        self.scheduler.burst(owner.name, self.loop.time(), targets, max(1, count))
        log.info("netd.announce", owner=owner.name, targets=len(targets), count=count)
        self._send_due()

    def _send_due(self) -> None:
        self._garp_handle = None
        now = self.loop.time()
        for planned in self.scheduler.due(now):
            try:
                self.frames.send(planned.target.ifname, planned.frame)
            except AnnounceError as exc:
                log.warning("netd.announce.failed", reason=str(exc))
        nxt = self.scheduler.next_due()
        if nxt is not None:
            self._garp_handle = self.loop.call_at(nxt, self._send_due)

    # ---- time --------------------------------------------------------------------------------

    async def _tick(self) -> None:
        """Expire leases; re-check the kernel now and then (someone may have changed it)."""
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for owner in list(self.owners.values()):
                if owner.expires is not None and owner.expires < now and owner.items:
                    log.warning(
                        "netd.lease.expired",
                        owner=owner.name,
                        items=len(owner.items),
                        detail="intent not renewed; withdrawing its addresses",
                    )
                    owner.items = []
                    self.scheduler.stop(owner.name)
                    self._mark_dirty()
            if now - self.started >= RESTART_GRACE and self.started + RESTART_GRACE > now - 0.1:
                self._mark_dirty()  # the grace just ended: leftovers nobody claimed go now
            if now - last_full >= RECONCILE_EVERY:
                last_full = now
                self._mark_dirty()

    async def shutdown(self) -> None:
        """keepalived removes what it installed when it stops."""
        if self._garp_handle is not None:
            self._garp_handle.cancel()
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.monitor.fileno())
        if self._reconciling is not None:
            self._reconciling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciling
        try:
            result = await self._kernel(self.kernel.reconcile, [])
            log.info("netd.withdrawn", removed=len(result.done), failed=len(result.failures))
        except KernelError as exc:
            log.error("netd.withdraw.failed", reason=str(exc))
        self.frames.close()
        self.monitor.close()
        await self._kernel(self.kernel.close)
        self._netlink.shutdown(wait=True)
