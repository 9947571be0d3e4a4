"""netd's process logic: desired state from the bus in, kernel changes and observations out.

Owners of desired state:

* ``static`` — ``static_ipaddress``/``static_routes``/``static_rules`` from ``config.current``;
  held for as long as the config says so.
* ``vrrp:<instance>`` — ``vrrp.intent.<instance>`` from vrrpd; held only for ``lease``
  seconds unless renewed, so a dead vrrpd cannot keep an address its peer has taken over.
  Leases only run while the bus demonstrably delivers (heartbeats of every component): a
  stalled bus stops renewals too, and vrrpd, still advertising, keeps the peer in backup.

An intent may name a VMAC (``use_vmac``): netd creates the macvlan before installing the
instance's VIPs on it and keeps it as long as the instance is configured (keepalived creates
it at start whatever the state), or only while the VIPs are held if the intent says
``always: false``. VMACs go at TERM; ones an earlier run left go when the grace ends unclaimed.
``addr_vmacs`` (``use_vmac_addr``) are more VMACs of the same instance, for its VIPs on other
interfaces. While the instance is not MASTER its VMACs that carry no adverts are kept
``protodown on`` (no carrier: they send nothing, neither ARP replies nor IGMP/MLD reports that
would teach the switch the virtual MAC, yet still receive); they are set back before the VIPs
and GARPs of a new MASTER, so a peer sees no difference. The VMAC the adverts leave from is
included only with ``PYKEEPALIVED_VMAC_PROTODOWN=all`` (see ``netd.vmacintent.PROTODOWN_DEFAULT``).
``garp_extra_if`` adds a GARP/NA every N seconds on the instance's VIP interfaces other than
its own while it is MASTER.

Every change marks the kernel "dirty"; one reconcile at a time merges all owners, observes the
kernel and applies the difference (idempotent: an add that exists and a delete that is missing
are successes). Netlink calls run on one worker thread: pyroute2's synchronous API cannot run
inside an asyncio loop, and a large dump must not stall the loop.

Owners, generations and leases live in a :class:`~netd.store.DesiredStore`. What an earlier
netd installed (found at start by its kernel marker or state file) is held by the pseudo-owner
``~leftover`` (sorting last, so a real owner wins any conflict) until every configured VRRP
instance has sent an intent or ``RESTART_GRACE`` has passed: a restarted netd does not flap
VIPs that a living vrrpd still holds, and after a whole-group crash the leftovers nobody claims
are removed as soon as the new vrrpd has spoken.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

import core
from bus import Component, MessageRejected, messages
from bus.envelope import Event as BusEvent
from netd import fromconfig
from netd.announce import AnnounceScheduler, FrameSender, Target
from netd.desired import Address, DesiredSet, Item, describe, item_key
from netd.errors import AnnounceError, InvalidItemError, KernelError, VmacError
from netd.firewall import Firewall, FirewallSettings, blocked_addresses
from netd.kernel import ApplyResult, KernelAdapter
from netd.linkstate import LinkState
from netd.lvs.driver import LvsDriver
from netd.monitor import AddrEvent, LinkEvent, Monitor, Overflow
from netd.reconcile import Merged
from netd.store import DesiredStore
from netd.vmac import Vmac, VmacManager
from netd.vmacintent import (
    PROTODOWN_ENV,
    ExtraIf,
    VmacSpec,
    extra_if_targets,
    protodown_policy,
    vmac_specs,
    wants_protodown,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")

RESTART_GRACE = 2.0  # longest we keep unclaimed leftovers after start (intents arrive first)
LEASE_SLACK = 0.0  # vrrpd leases for its own Master_Down_Interval, below the peer's
RECONCILE_EVERY = 5.0
TICK = 0.05
# Leases only mean "vrrpd is gone" while the bus works: without heartbeats (several a
# second from all components) for this long, the silence is the bus's, not vrrpd's.
BUS_SILENT_AFTER = 0.75
HOLD_AFTER_BUS = 2.0  # after a silent bus, time for the owners' republishes to arrive
LEFTOVER = "~leftover"  # '~' sorts after every real owner: they win conflicts
STATIC = "static"


@dataclass(slots=True)
class Announce:
    """vrrpd's GARP/NA request counter for one owner, per vrrpd start (``boot``)."""

    boot: str
    counter: int


def reported_item(item: Item) -> Mapping[str, Any]:
    """How a failure report names an item: as the intent (or, for ``static``, the
    configuration) gave it, ``{"kind": ..., "spec": <core model part>}``. An item netd did not
    get from one (a leftover it found in the kernel) is named by its kernel identity."""
    if item.origin is not None:
        return item.origin
    return {"kind": "kernel", "key": describe(item)}


def wants_burst(previous: Announce | None, boot: str, counter: int) -> bool:
    """A new GARP/NA burst is asked for when the counter moved on, or when a (re)started
    vrrpd (or netd: nothing known yet) reports a non-zero counter."""
    if counter <= 0:
        return False
    if previous is None or previous.boot != boot:
        return True
    return counter > previous.counter


def parse_renewal(renewal: messages.Renew) -> dict[str, tuple[int, float]]:
    """``vrrp.renew``'s leases (instance -> (generation, lease seconds)), checked whole: one
    implausible lease refuses the message (it is untrusted input)."""
    for instance, (_, lease) in renewal.leases.items():
        if not 0 < lease < 3600:
            raise ValueError(f"lease of {instance!r} is not a number of seconds")
    return {k: (generation, float(lease)) for k, (generation, lease) in renewal.leases.items()}


def _arg(comp: Component, flag: str) -> bool:
    """A flag of ``python -m netd`` (absent when netd runs without its own parser, in tests)."""
    return bool(getattr(comp.args, flag, False))


class NetDaemon:
    def __init__(self, comp: Component) -> None:
        self.comp = comp
        self._netlink = ThreadPoolExecutor(1, thread_name_prefix="netlink")
        self.kernel: KernelAdapter
        self.monitor = Monitor()
        self.scheduler = AnnounceScheduler()
        self.frames = FrameSender()
        self.store = DesiredStore()
        self.links: dict[int, LinkState] = {}
        self.started = time.monotonic()
        self.config_hash: str | None = None
        self.instances: frozenset[str] | None = None  # VRRP instances of the config
        self._heard: set[str] = set()  # instances whose intent arrived since start
        self._announce: dict[str, Announce] = {}
        self._pending_garps: dict[str, int] = {}
        self._published: dict[str, tuple[int, int, int, str]] = {}
        # owner -> the fingerprint of the intent held (echoed in net.applied, see vrrpd.resume)
        self._fingerprints: dict[str, str] = {}
        self._held: set[str] = set()  # owners whose current set is non-empty
        self._merged = Merged((), {}, ())
        self._owned: dict[str, list[Item]] = {}  # merged items by owner (see _set_merged)
        self.vmacs: VmacManager
        self._vmac_specs: dict[str, tuple[VmacSpec, ...]] = {}  # owner -> its intent's VMACs
        self._master: set[str] = set()  # owners whose intent says held (MASTER)
        self._protodown: dict[str, bool] = {}  # VMAC -> the protodown we last set
        # VMAC -> (owner, protodown asked, failure): reported in net.applied, not retried
        # until what is asked changes
        self._protodown_failed: dict[str, tuple[str, bool, messages.Failure]] = {}
        self._extra_if: dict[str, ExtraIf] = {}  # owner -> garp_extra_if
        self.protodown_policy = protodown_policy(os.environ.get(PROTODOWN_ENV))
        self._vmacs_made: dict[str, VmacSpec] = {}  # what exists because of us
        self._vmac_leftovers: set[str] = set()  # VMACs an earlier run left
        self.firewall = Firewall()  # Accept_Mode (no_accept) drop rules
        self._accepting: dict[str, bool] = {}  # owner -> its intent's accept
        self._unblocked: dict[str, KernelError] = {}  # owner -> why its drop rules failed
        self._grace_over = False
        self._bus_seen = time.monotonic()  # last message of any kind from the bus
        self._hold_leases_until = 0.0
        self._dirty = False
        self._resync = False
        self._reconciling: asyncio.Task[None] | None = None
        self._garp_handle: asyncio.TimerHandle | None = None
        # owner -> the last intent's (items, interface, VIP interface) and what they parse to
        self._parsed_items: dict[str, tuple[tuple[Any, ...], tuple[Item, ...]]] = {}
        self._links_changed: set[int] = set()  # ifindexes to publish at the end of this turn
        # virtual servers (docs/lvs.md); the watchdog's -P/-C say whether netd programs them
        self.lvs = LvsDriver(comp.publisher, self._kernel, enabled=not _arg(comp, "no_lvs"))

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def _kernel(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.loop.run_in_executor(self._netlink, functools.partial(fn, *args))

    async def run(self) -> None:
        self.kernel = await self._kernel(KernelAdapter, self.comp.runtime.path)
        self.vmacs = await self._kernel(VmacManager, self.kernel)
        await self._firewall(self.firewall.remove_leftovers)
        await self._adopt_leftovers()
        await self._read_links()
        for link in self.links.values():
            self._publish_link(link)
        self.loop.add_reader(self.monitor.fileno(), self._netlink_readable)
        sub = self.comp.subscribe(
            "config.current", "vrrp.intent.*", "vrrp.renew", "hb.*", "check.pool.*"
        )
        self.lvs.start()
        ticker = asyncio.create_task(self._tick(), name="netd.tick")
        try:
            while True:
                for event in await sub.recv_batch():
                    self._dispatch(event)
        finally:
            ticker.cancel()
            await self.shutdown()

    async def _adopt_leftovers(self) -> None:
        """What an earlier netd installed and left (it was killed, or the whole group was)."""
        try:
            leftovers = await self._kernel(self.kernel.find_leftovers)
        except KernelError as exc:
            log.error("netd.leftover.unreadable", reason=str(exc))
            return
        for item in leftovers:
            log.info(
                "netd.leftover.found",
                item=describe(item),
                detail="installed by an earlier run; kept until claimed or the grace ends",
            )
        try:
            found = await self._kernel(self.vmacs.find)
        except VmacError as exc:
            log.error("netd.leftover.unreadable", reason=str(exc))
            found = []
        for vmac in found:
            log.info("netd.leftover.found", vmac=vmac.ifname, base=vmac.base, mac=vmac.mac)
            self._vmac_leftovers.add(vmac.ifname)
        if leftovers:
            self.store.offer(
                DesiredSet(LEFTOVER, 0, tuple(leftovers), lease=RESTART_GRACE), time.monotonic()
            )
            self._held.add(LEFTOVER)

    # ---- inputs ------------------------------------------------------------------------------

    def _dispatch(self, event: BusEvent) -> None:
        self._bus_seen = time.monotonic()
        try:
            if event.topic.startswith("hb."):
                return  # only proof that the bus delivers
            topic, body, boot = event.topic, event.body, event.env.boot
            if topic == "config.current":
                self._config(messages.ConfigCurrent.decode(topic, body), boot)
            elif topic == "vrrp.renew":
                self._renew(messages.Renew.decode(topic, body), boot)
            elif topic.startswith("check.pool."):
                key = topic.removeprefix("check.pool.")
                self.lvs.pool(key, messages.PoolReport.decode(topic, body))
            else:
                self._intent(messages.Intent.decode(topic, body), boot)
        except (MessageRejected, ValueError, InvalidItemError, core.WireFormatError) as exc:
            log.error(
                "netd.input.invalid",
                topic=event.topic,
                src=event.env.src,
                reason=f"{type(exc).__name__}: {exc}",
            )

    def _config(self, msg: messages.ConfigCurrent, boot: str) -> None:
        if msg.hash == self.config_hash:
            return
        config = core.from_wire(dict(msg.model))
        self.config_hash = msg.hash
        self.lvs.configure(config, msg.generation)
        self.instances = frozenset(
            i.name for i in config.instances if i.interface and i.virtual_router_id is not None
        )
        self.firewall.configure(FirewallSettings.from_config(config))
        items = [] if _arg(self.comp, "lvs_only") else fromconfig.static_items(config)
        self._offer(DesiredSet(STATIC, msg.generation, tuple(items)), boot)
        # Pacing between announcements is global (vrrp_garp_interval / vrrp_gna_interval);
        # how many and when is vrrpd's machine's to say, one burst per request.
        g = config.global_defs
        self.scheduler.timing = dataclasses.replace(
            self.scheduler.timing,
            garp_interval=g.vrrp_garp_interval,
            gna_interval=g.vrrp_gna_interval,
        )
        self.scheduler.per_interface = {
            ifname: (group.garp_interval, group.gna_interval)
            for group in config.garp_groups
            for ifname in (*group.interfaces, *((group.interface,) if group.interface else ()))
        }
        for owner in list(self._vmac_specs):
            if owner.removeprefix("vrrp:") not in self.instances:
                del self._vmac_specs[owner]  # the instance left the config: so does its VMAC
                self._mark_dirty()
        self._end_grace_if_claimed()

    def _intent(self, intent: messages.Intent, boot: str) -> None:
        instance = intent.instance
        name = f"vrrp:{instance}"
        specs = vmac_specs(intent)
        vmac = specs[0] if intent.vmac is not None else None
        if specs != self._vmac_specs.get(name, ()):
            if specs:
                self._vmac_specs[name] = specs
            else:
                self._vmac_specs.pop(name, None)
            self._mark_dirty()
        extra_if = ExtraIf.from_intent(intent)
        if extra_if is None:
            self._extra_if.pop(name, None)
        else:
            self._extra_if[name] = extra_if
        master = intent.held
        if master != (name in self._master):
            (self._master.add if master else self._master.discard)(name)
            self._mark_dirty()  # protodown follows
        source = (intent.items, intent.interface, vmac.name if vmac else None)
        parsed = self._parsed_items.get(name)
        if parsed is not None and parsed[0] == source:
            items = parsed[1]  # the periodic republish of an unchanged intent: parsed already
        else:
            items = tuple(fromconfig.intent_items(*source))
            self._parsed_items[name] = (source, items)
        if self._accepting.get(name) != (accept := intent.accept):
            self._accepting[name] = accept
            self._mark_dirty()
        lease = float(intent.lease) + LEASE_SLACK
        if self._offer(DesiredSet(name, intent.generation, items, lease), boot):
            self._fingerprints[name] = intent.fingerprint or ""
        self._heard.add(instance)
        counter = intent.announce
        if intent.held and wants_burst(self._announce.get(name), boot, counter):
            # Addresses first, then tell the segment: sent right after the next reconcile.
            self._pending_garps[name] = max(1, intent.garp_count or 5)
            self._mark_dirty()
        self._announce[name] = Announce(boot, counter)
        if not items:
            self.scheduler.stop(name)
            self._pending_garps.pop(name, None)
        elif extra_if is None and self.scheduler.periodic(name) is not None:
            self.scheduler.every(name, self.loop.time(), 0, ())
        self._end_grace_if_claimed()

    def _renew(self, renewal: messages.Renew, boot: str) -> None:
        """Extend the leases of the intents a vrrpd start still holds, generation for
        generation; one it names at a generation we lack gets no extension (its full intent
        is re-sent right after every change, and every 5 s)."""
        leases = parse_renewal(renewal)
        now = time.monotonic()
        for instance, (generation, lease) in leases.items():
            self.store.renew(f"vrrp:{instance}", generation, boot, lease + LEASE_SLACK, now)

    def _offer(self, ds: DesiredSet, boot: str) -> bool:
        offer = self.store.offer(ds, time.monotonic(), boot=boot)
        if not offer.accepted:
            log.debug("netd.desired.refused", owner=ds.owner, reason=offer.reason)
            return False
        was_held = ds.owner in self._held
        (self._held.add if ds.items else self._held.discard)(ds.owner)
        # An empty set replacing nothing (a backup's periodic republish) changes no kernel.
        if offer.changed and (ds.items or was_held):
            self._mark_dirty()
        return True

    def _end_grace_if_claimed(self) -> None:
        """Every instance has spoken: leftovers it did not claim can go now."""
        if self.instances is None or not self.instances <= self._heard:
            return
        if not self._grace_over:
            self._grace_over = True
            self._mark_dirty()  # unclaimed leftover VMACs go
        if self.store.drop(LEFTOVER):
            self._held.discard(LEFTOVER)
            log.info("netd.leftover.grace_ended", reason="every VRRP instance sent its intent")
            self._mark_dirty()

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
                down = dataclasses.replace(gone.report(), up=False)
                self.comp.publisher.retain(f"net.link.{gone.name}", down.encode())
                if self._vmacs_made.pop(gone.name, None) is not None:
                    log.warning("netd.vmac.vanished", vmac=gone.name, detail="re-creating it")
                    self._mark_dirty()
            return
        link = self.links.get(ev.ifindex)
        name = ev.ifname or (link.name if link else str(ev.ifindex))
        if link is None:
            link = self.links[ev.ifindex] = LinkState.from_event(ev)
            link.name = name
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
        if link is None:
            return
        cidr = f"{ev.ip}/{ev.prefix}"
        present = cidr in link.addresses
        if not link.observe(ev):
            return
        self._link_changed_soon(link)  # also when only its flags changed (DAD over, promoted)
        if ev.added == present:
            return
        change = messages.AddrChange(ev.ifindex, cidr, ev.added, interface=link.name)
        self.comp.publisher.publish("net.addr", change.encode())
        if not ev.added:
            self._mark_dirty()  # if it was ours and still desired, the reconcile re-adds it

    # ---- kernel ------------------------------------------------------------------------------

    async def _read_links(self) -> None:
        """Every link and address as the kernel lists them now (start, or after Overflow)."""
        links = await self._kernel(self.kernel.links)
        addresses = await self._kernel(self.kernel.interface_addresses)
        self.links = {ev.ifindex: LinkState.from_event(ev) for ev in links}
        for addr in addresses:
            link = self.links.get(addr.ifindex)
            if link is not None:
                link.observe(addr)

    def _publish_link(self, link: LinkState) -> None:
        self._links_changed.discard(link.ifindex)
        self.comp.publisher.retain(f"net.link.{link.name}", link.report().encode())

    def _link_changed_soon(self, link: LinkState) -> None:
        """Publish ``net.link`` once at the end of this loop turn: installing 255 VIPs brings
        255 address notifications, and each message lists every address of the link."""
        if not self._links_changed:
            self.loop.call_soon(self._flush_links)
        self._links_changed.add(link.ifindex)

    def _flush_links(self) -> None:
        pending, self._links_changed = self._links_changed, set()
        for ifindex in sorted(pending):
            link = self.links.get(ifindex)
            if link is not None:  # a removed link was published as down when it went
                self._publish_link(link)

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
            await self._sync_vmacs()
            await self._reconcile()
            for owner, count in list(self._pending_garps.items()):
                del self._pending_garps[owner]
                self._announce_owner(owner, count)
            self._schedule_extra_if()

    def _wanted_vmacs(self) -> dict[str, tuple[str, VmacSpec]]:
        """VMAC name -> (owner, spec) for every VMAC that should exist now."""
        return {
            spec.name: (owner, spec)
            for owner, specs in sorted(self._vmac_specs.items())
            for spec in specs
            if spec.always or owner in self._held
        }

    async def _sync_vmacs(self) -> None:
        """Create the VMACs intents name (before their VIPs go on them); remove the rest."""
        wanted = self._wanted_vmacs()
        for name, (owner, spec) in wanted.items():
            down = wants_protodown(self.protodown_policy, spec, owner in self._master)
            if self._vmacs_made.get(name) != spec:
                family = socket.AF_INET6 if spec.family == 6 else socket.AF_INET
                try:
                    vmac = await self._kernel(
                        functools.partial(
                            self.vmacs.ensure,
                            spec.base,
                            spec.vrid,
                            family,
                            ifname=name,
                            mac=spec.mac,
                            protodown=down,
                        )
                    )
                except (VmacError, KernelError) as exc:
                    log.error("netd.vmac.failed", vmac=name, base=spec.base, reason=str(exc))
                    continue
                self._vmacs_made[name] = spec
                self._protodown[name] = vmac.protodown
                self._vmac_leftovers.discard(name)
                self._learn_vmac(vmac)
                if spec.family == 6:
                    self._vmac_link_local(spec)
            await self._sync_protodown(owner, name, down)
        doomed = [n for n in self._vmacs_made if n not in wanted]
        if self._grace_over:
            doomed += [n for n in self._vmac_leftovers if n not in wanted]
        for name in doomed:
            await self._remove_vmac(name)

    async def _sync_protodown(self, owner: str, name: str, down: bool) -> None:
        """A VMAC sends nothing unless its instance is MASTER (see the module docstring)."""
        # A macvlan gets its base's carrier back when it or its base goes up, protodown or
        # not (Linux 6.x); that link event brings us here, and setting it again takes the
        # carrier away.
        carrier = any(link.up for link in self.links.values() if link.name == name)
        if self._protodown.get(name) == down and not (down and carrier):
            return
        failed = self._protodown_failed.get(name)
        if failed is not None and failed[1] == down:
            return  # reported already; try again when what is asked changes
        try:
            await self._kernel(self.vmacs.set_protodown, name, down)
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
            self._protodown_failed[name] = (owner, down, failure)
            self._published.pop(owner, None)  # re-publish net.applied with the failure
            return
        self._protodown[name] = down
        if self._protodown_failed.pop(name, None) is not None:
            self._published.pop(owner, None)

    def _vmac_link_local(self, spec: VmacSpec) -> None:
        """An IPv6 VMAC is created without a link-local address (addrgenmode none: none may
        be derived from the virtual MAC, RFC 5798 7.4); as keepalived, give it the base's,
        the source of the instance's adverts."""
        base = next((link for link in self.links.values() if link.name == spec.base), None)
        # The one vrrpd sends from: the first usable one, not the lowest. A tentative one
        # will do (the VMAC's copy is added nodad): the base's DAD may still be running.
        local = base.link_local(tentative=True) if base else None
        if local is None:
            log.warning("netd.vmac.no_link_local", vmac=spec.name, base=spec.base)
            return
        ip, _, prefix = local.partition("/")
        item = Address(ip=ip, prefix=int(prefix), dev=spec.name)
        self.store.offer(DesiredSet(f"vmac:{spec.name}", 0, (item,)), time.monotonic())
        self._held.add(f"vmac:{spec.name}")

    async def _remove_vmac(self, name: str) -> None:
        # Forget it first: its RTM_DELLINK must not read as "vanished, re-create it".
        if self.store.drop(f"vmac:{name}"):
            self._held.discard(f"vmac:{name}")
        spec = self._vmacs_made.pop(name, None)
        self._protodown.pop(name, None)
        self._protodown_failed.pop(name, None)
        try:
            await self._kernel(self.vmacs.remove, name)
        except VmacError as exc:
            log.error("netd.vmac.remove_failed", vmac=name, reason=str(exc))
            if spec is not None:
                self._vmacs_made[name] = spec
            return
        self._vmac_leftovers.discard(name)

    def _learn_vmac(self, vmac: Vmac) -> None:
        """Know the VMAC's MAC at once: the GARPs right after this reconcile come from it."""
        if vmac.index not in self.links:
            link = LinkState(vmac.index, vmac.ifname, vmac.up, vmac.mac, None)
            self.links[vmac.index] = link
            self._publish_link(link)

    def _owned_by(self, owner: str) -> list[Item]:
        return self._owned.get(owner, [])

    def _set_merged(self, merged: Merged) -> None:
        """Index the merged items by owner once: asking per owner (announcements, reports)
        scanned every item for each of 255 owners."""
        self._merged = merged
        owned: dict[str, list[Item]] = {}
        for item in merged.items:
            for owner in merged.owners.get(item_key(item), ()):
                owned.setdefault(owner, []).append(item)
        self._owned = owned

    async def _reconcile(self) -> None:
        merged = self.store.merged()
        self._set_merged(merged)
        for c in merged.conflicts:
            log.error("netd.conflict", key=str(c.key), kept=c.kept_owner, dropped=c.dropped_owner)
        # keepalived: the drop rules go in before the VIPs and out after them.
        blocked = blocked_addresses(self._owned, self._accepting)
        failed = await self._firewall(self.firewall.sync, blocked, removing=False)
        try:
            result = await self._kernel(self.kernel.reconcile, list(merged.items))
        except KernelError as exc:
            log.error("netd.reconcile.failed", reason=str(exc))
            return
        failed = await self._firewall(self.firewall.sync, blocked, removing=True) or failed
        self._unblocked = {owner: failed for owner in blocked.values()} if failed else {}
        for op in result.done:
            log.info(f"netd.{op.action}", item=describe(op.item))
        self._report(result)

    async def _firewall(
        self, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> KernelError | None:
        try:
            await self._kernel(functools.partial(fn, *args, **kwargs))
        except KernelError as exc:
            log.error("netd.firewall.failed", reason=str(exc))
            return exc
        return None

    def _report(self, result: ApplyResult) -> None:
        merged = self._merged
        desired = {item_key(i): i for i in merged.items}
        failed: dict[str, list[messages.Failure]] = {}
        for f in result.failures:
            key = item_key(f.op.item)
            for owner in merged.owners.get(key, ()):
                failed.setdefault(owner, []).append(
                    messages.Failure(
                        item=reported_item(desired.get(key, f.op.item)),
                        action=str(f.op.action),
                        errno=f.errno_name,
                        reason=f.reason,
                    )
                )
        for owner, _, failure in self._protodown_failed.values():
            failed.setdefault(owner, []).append(failure)
        for c in merged.conflicts:
            failed.setdefault(c.dropped_owner, []).append(
                messages.Failure(
                    item=reported_item(c.dropped),
                    action="add",
                    errno="EEXIST",
                    reason=f"conflicts with {c.kept_owner}'s item of the same identity",
                )
            )
        for owner, exc in self._unblocked.items():  # no_accept not enforced: say so
            failed.setdefault(owner, []).append(
                messages.Failure(
                    item={"kind": "firewall", "table": self.firewall.settings.table},
                    action="add",
                    errno=exc.errno_name,
                    reason=exc.reason,
                )
            )
        for owner in self.store.owners():
            generation = self.store.generation(owner)
            if owner == LEFTOVER or generation is None:
                continue
            failures = failed.get(owner, [])
            items = len(self._owned_by(owner))
            fingerprint = self._fingerprints.get(owner, "")
            marker = (generation, len(failures), items, fingerprint)
            if self._published.get(owner) == marker:
                continue
            self._published[owner] = marker
            report = messages.Applied(
                owner, generation, tuple(failures), items=items, fingerprint=fingerprint or None
            )
            self.comp.publisher.retain(f"net.applied.{owner}", report.encode())

    def _report_expired(self, owner: str) -> None:
        """The retained report must not go on saying an expired owner's items are installed:
        a restarted vrrpd resumes only what netd still holds (vrrpd.resume)."""
        topic = f"net.applied.{owner}"
        self.comp.publisher.forget(topic)
        gone = messages.Applied(owner, -1, (), items=0, expired=True)
        self.comp.publisher.publish(topic, gone.encode())

    # ---- announcements -----------------------------------------------------------------------

    def _announce_owner(self, owner: str, count: int) -> None:
        by_name = {link.name: link for link in self.links.values()}
        targets = []
        for item in self._owned_by(owner):
            if isinstance(item, Address) and (link := by_name.get(item.dev)) and link.mac:
                targets.append(Target(ifname=item.dev, ip=item.ip, mac=link.mac))
        if not targets:
            return
        self.scheduler.burst(owner, self.loop.time(), targets, max(1, count))
        log.info("netd.announce", owner=owner, targets=len(targets), count=count)
        self._send_due()

    def _schedule_extra_if(self) -> None:
        """garp_extra_if: periodic announcements for every MASTER asking for them, re-armed
        only when what to announce changes (keepalived arms it on becoming MASTER)."""
        macs = {link.name: link.mac for link in self.links.values()}
        vmacs = set(self._vmacs_made)
        now = self.loop.time()
        changed = False
        for owner, extra in self._extra_if.items():
            targets: list[Target] = []
            if owner in self._held:
                targets = extra_if_targets(extra, self._owned_by(owner), vmacs, macs)
            want = (extra.interval, tuple(targets)) if targets else None
            if self.scheduler.periodic(owner) == want:
                continue
            self.scheduler.every(owner, now, extra.interval, targets)
            changed = True
            if targets:
                log.info(
                    "netd.announce.extra_if",
                    owner=owner,
                    interval=extra.interval,
                    interfaces=[t.ifname for t in targets],
                )
        if changed:
            self._arm_announcements()

    def _arm_announcements(self) -> None:
        if self._garp_handle is not None:
            self._garp_handle.cancel()
        self._garp_handle = None
        nxt = self.scheduler.next_due()
        if nxt is not None:
            self._garp_handle = self.loop.call_at(nxt, self._send_due)

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
            await asyncio.sleep(TICK)
            now = time.monotonic()
            if now - self._bus_seen > BUS_SILENT_AFTER:
                if self._hold_leases_until <= now and self.store.next_expiry() is not None:
                    log.warning(
                        "netd.bus.silent",
                        silent_for=round(now - self._bus_seen, 3),
                        detail="holding leases: renewals cannot arrive while the bus is down",
                    )
                self._hold_leases_until = now + HOLD_AFTER_BUS
            held = set(self._held)
            expired = [] if now < self._hold_leases_until else self.store.expire(now)
            for owner in expired:
                self._held.discard(owner)
                if owner == LEFTOVER:
                    log.info("netd.leftover.grace_ended", reason=f"{RESTART_GRACE}s passed")
                    self._grace_over = True
                elif owner in held:
                    log.warning(
                        "netd.lease.expired",
                        owner=owner,
                        detail="intent not renewed; withdrawing its addresses",
                    )
                    self.scheduler.stop(owner)
                    self._pending_garps.pop(owner, None)
                    self._published.pop(owner, None)
                    self._fingerprints.pop(owner, None)
                    self._report_expired(owner)
                if owner in self._master:  # its VMACs go quiet again (protodown)
                    self._master.discard(owner)
                    self._mark_dirty()
                if owner in held:
                    self._mark_dirty()
            if not self._grace_over and now - self.started >= RESTART_GRACE:
                self._grace_over = True
                self._mark_dirty()
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
        await self._firewall(self.firewall.close)
        await self.lvs.stop(withdraw=not _arg(self.comp, "dont_release_ipvs"))
        # keepalived deletes its VMACs at stop (after the VIPs) and restores the sysctls.
        # The named ones too: a reconcile cancelled by the TERM may have created one
        # without recording it.
        named = (spec.name for specs in self._vmac_specs.values() for spec in specs)
        for name in dict.fromkeys([*self._vmacs_made, *self._vmac_leftovers, *named]):
            await self._remove_vmac(name)
        try:
            await self._kernel(self.vmacs.restore_interfaces)
        except KernelError as exc:
            log.error("netd.devconf.restore_failed", reason=str(exc))
        self.frames.close()
        self.monitor.close()
        await self._kernel(self.kernel.close)
        self._netlink.shutdown(wait=True)
