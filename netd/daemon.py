"""netd's process: the event loop that drives the kernel from the bus.

Desired state comes in from the bus (``config.current``, ``vrrp.intent.*``, ``vrrp.renew``;
``hb.*`` only proves the bus delivers); kernel observations (links, addresses) come in from
the netlink monitor; kernel changes, GARP/NA and ``net.link``/``net.addr``/``net.applied`` go
out. Owners of desired state:

* ``static`` — ``static_ipaddress``/``static_routes``/``static_rules`` from ``config.current``;
  held for as long as the config says so.
* ``vrrp:<instance>`` — ``vrrp.intent.<instance>`` from vrrpd; held only for ``lease``
  seconds unless renewed, so a dead vrrpd cannot keep an address its peer has taken over.
* ``vmac:<ifname>`` — an IPv6 VMAC's link-local address (its base's), while the VMAC exists.
* ``~leftover`` — what an earlier netd installed, held for the start-up grace
  (:mod:`netd.leftovers`).

The jobs around the loop, each in its module:

* :mod:`netd.owners` — one :class:`~netd.owners.OwnerState` per owner (its intent's VMACs,
  MASTER or not, the fingerprint, the last report, pending GARPs, ...);
* :mod:`netd.store` and :mod:`netd.leases` — generations, and when leases, the hold while the
  bus is silent and the start-up grace run out (pure; the loop sleeps until the next one);
* :mod:`netd.vmacsync` — the VMACs intents name, and their protodown;
* :mod:`netd.announcer` — GARP/NA bursts and ``garp_extra_if``;
* :mod:`netd.applied` — the ``net.applied`` reports;
* :mod:`netd.links` — every interface and its addresses, ``net.link``/``net.addr``.

Every change marks the kernel "dirty"; one reconcile at a time merges all owners, observes the
kernel and applies the difference (idempotent: an add that exists and a delete that is missing
are successes). Netlink calls run on one worker thread: pyroute2's synchronous API cannot run
inside an asyncio loop, and a large dump must not stall the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

import core
from bus import Component, MessageRejected, Subscriber, messages
from bus.envelope import Event as BusEvent
from bus.notices import InvalidInput
from netd import foundvips, fromconfig
from netd.announcer import Announcer, burst_targets
from netd.applied import HeldSummary, failures_by_owner, publish_applied, publish_expired
from netd.desired import Address, DesiredSet, Item, describe, item_key
from netd.errors import InvalidItemError, KernelError, NftError
from netd.firewall import Firewall, FirewallSettings, blocked_addresses
from netd.kernel import ApplyResult, KernelAdapter
from netd.leases import LEASE_SLACK, RESTART_GRACE, Leases
from netd.leftovers import find_leftovers
from netd.links import Links
from netd.lvsdemand import driver_needed, marked_tables
from netd.monitor import AddrEvent, LinkEvent, Monitor, Overflow
from netd.owners import LEFTOVER, STATIC, Announce, Owners, vrrp_owner, wants_burst
from netd.reconcile import Action, Merged, Operation
from netd.store import DesiredStore
from netd.vmac import Vmac, VmacManager
from netd.vmacintent import (
    PROTODOWN_ENV,
    ExtraIf,
    VmacSpec,
    protodown_policy,
    vmac_specs,
)
from netd.vmacsync import VmacSync

if TYPE_CHECKING:
    from netd.lvs.driver import LvsDriver

log = structlog.get_logger(__name__)
T = TypeVar("T")

RECONCILE_EVERY = 5.0
RESYNC_EVERY = 1.0  # at most this often we ask vrrpd again for an intent we lack


def parse_renewal(renewal: messages.Renew) -> dict[str, tuple[int, float]]:
    """``vrrp.renew``'s leases (instance -> (generation, lease seconds)), checked whole: one
    implausible lease refuses the message (it is untrusted input)."""
    for instance, (_, lease) in renewal.leases.items():
        if not 0 < lease < 3600:
            raise ValueError(f"lease of {instance!r} is not a number of seconds")
    return {k: (generation, float(lease)) for k, (generation, lease) in renewal.leases.items()}


class NetDaemon:
    def __init__(
        self,
        comp: Component,
        *,
        release_at_stop: bool = True,
        address_monitoring: bool = False,
        release_vips: bool = False,
        lvs: bool = True,
        lvs_only: bool = False,
        release_lvs_at_stop: bool = True,
    ) -> None:
        self.comp = comp
        #: keepalived's -X: configured VIPs found at start-up, not installed by us, go
        self.release_vips = release_vips
        #: False with keepalived's -V: what VRRP instances hold stays when the daemon stops
        self.release_at_stop = release_at_stop
        #: keepalived's -a: every address event netlink reports is logged
        self.address_monitoring = address_monitoring
        #: the watchdog's -C: only the virtual servers' datapath, no static items
        self.lvs_only = lvs_only
        #: False with keepalived's -I: the LVS table stays in the kernel at stop
        self.release_lvs_at_stop = release_lvs_at_stop
        self._netlink = ThreadPoolExecutor(1, thread_name_prefix="netlink")
        self.kernel: KernelAdapter
        self.monitor = Monitor()
        self.announcer = Announcer()
        self.store = DesiredStore()
        self.links = Links(comp.publisher)
        self.config_hash: str | None = None
        self.instances: frozenset[str] | None = None  # VRRP instances of the config
        self.owners = Owners()
        self._merged = Merged((), {}, ())
        self.vmacs = VmacSync(
            self.owners,
            self._kernel,
            protodown_policy(os.environ.get(PROTODOWN_ENV)),
            made=self._vmac_made,
            gone=self._vmac_gone,
            carrier=self.links.carrier,
        )
        self.held = HeldSummary()  # net.held
        #: messages refused by their class's decode
        self.invalid = InvalidInput("netd")
        self.firewall = Firewall()  # Accept_Mode (no_accept) drop rules
        self._unblocked: dict[str, KernelError] = {}  # owner -> why its drop rules failed
        self.leases = Leases(self.store, time.monotonic)
        self._lease_timer: asyncio.TimerHandle | None = None
        self._lease_at: float | None = None  # when the armed lease timer fires
        self._dirty = False
        self._resync = False
        self._reconciling: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # virtual servers (docs/lvs.md); the watchdog's -P/-C say whether netd programs them.
        # Loaded on first need (netd.lvsdemand): a VRRP-only node never imports it.
        self.lvs_enabled = lvs
        self.lvs: LvsDriver | None = None
        self._lvs_probed = False
        self._sub: Subscriber | None = None
        self._asked: dict[str, float] = {}  # instance -> when we last asked for its intent

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def _kernel(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.loop.run_in_executor(self._netlink, functools.partial(fn, *args))

    async def run(self) -> None:
        # At once, before any intent: a starting vrrpd need not wait for the report of an
        # instance this netd holds nothing for (on a cold start, none).
        self.held.publish(self.comp.publisher, self.owners)
        self.kernel = await self._kernel(KernelAdapter, self.comp.runtime.path)
        # The links next, before the clean-up below (~20-35 ms): a starting vrrpd waits for
        # them to open its instances. What changes meanwhile reaches the monitor, subscribed
        # since __init__ and read from once the clean-up is done.
        await self._read_links()
        self.vmacs.manager = await self._kernel(VmacManager, self.kernel)
        await self._firewall(self.firewall.remove_leftovers)
        await self._adopt_leftovers()
        self.loop.add_reader(self.monitor.fileno(), self._netlink_readable)
        sub = self._sub = self.comp.subscribe(
            "config.current", "vrrp.intent.*", "vrrp.renew", "hb.*", "check.pool.*"
        )
        self._arm_leases()
        recheck = asyncio.create_task(self._recheck(), name="netd.recheck")
        try:
            await sub.serve(self._inputs)
        finally:
            recheck.cancel()
            await self.shutdown()

    async def _adopt_leftovers(self) -> None:
        found = await find_leftovers(self._kernel, self.kernel, self.vmacs.manager)
        self.vmacs.leftovers.update(vmac.ifname for vmac in found.vmacs)
        if found.items:
            self.leases.offer_leftovers(found.items)
            self.owners.of(LEFTOVER).held = True

    # ---- inputs ------------------------------------------------------------------------------

    def _inputs(self, events: list[BusEvent]) -> None:
        for event in events:
            self._dispatch(event)
        self._arm_leases()

    def _dispatch(self, event: BusEvent) -> None:
        self.leases.bus_heard()
        try:
            if event.topic.startswith("hb."):
                return  # only proof that the bus delivers
            topic, body, boot = event.topic, event.body, event.env.boot
            # The subscriber's schema check decoded the required fields (a renewal's whole
            # body): taken as they are, not checked twice (docs/bus.md, "Topics").
            checked = event.checked
            if topic == "config.current":
                self._config(messages.ConfigCurrent.decode(topic, body, checked=checked), boot)
            elif topic == "vrrp.renew":
                self._renew(messages.Renew.decode(topic, body, checked=checked), boot)
            elif topic.startswith("check.pool."):
                key = topic.removeprefix("check.pool.")
                report = messages.PoolReport.decode(topic, body, checked=checked)
                if self.lvs_enabled:
                    self._lvs_driver().pool(key, report)
            else:
                self._intent(messages.Intent.decode(topic, body, checked=checked), boot)
        except (MessageRejected, ValueError, InvalidItemError, core.WireFormatError) as exc:
            self.invalid.refused(event.topic, event.env.src, exc, time.monotonic())

    def _config(self, msg: messages.ConfigCurrent, boot: str) -> None:
        if msg.hash == self.config_hash:
            return
        config = core.from_wire(dict(msg.model))
        self.config_hash = msg.hash
        self._configure_lvs(config, msg.generation)
        self.instances = frozenset(
            i.name for i in config.instances if i.interface and i.virtual_router_id is not None
        )
        self.leases.expect(frozenset(vrrp_owner(i) for i in self.instances))
        self.firewall.configure(FirewallSettings.from_config(config))
        items = [] if self.lvs_only else fromconfig.static_items(config)
        self._offer(DesiredSet(STATIC, msg.generation, tuple(items)), boot)
        if self.release_vips:
            self.release_vips = False  # at start-up only
            task = asyncio.create_task(self._release_found_vips(config), name="netd.release")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self.announcer.configure(config)
        for state in self.owners:
            if state.vmacs and state.name.removeprefix("vrrp:") not in self.instances:
                state.vmacs = ()  # the instance left the config: so does its VMAC
                self._mark_dirty()
        self._end_grace_if_claimed()

    def _lvs_driver(self) -> LvsDriver:
        """The LVS driver, imported and started the first time there is work for it."""
        if self.lvs is None:
            from netd.lvs.driver import LvsDriver

            log.info("netd.lvs.loaded")
            self.lvs = LvsDriver(self.comp.publisher, self._kernel)
            self.lvs.start()
        return self.lvs

    def _configure_lvs(self, config: core.Config, generation: int) -> None:
        if not self.lvs_enabled:
            return
        if self.lvs is not None or driver_needed(config):
            self._lvs_driver().configure(config, generation)
        elif not self._lvs_probed:
            # Nothing to program; only a table an earlier run left would need the driver
            # (it removes it on a configuration without virtual servers).
            self._lvs_probed = True
            task = asyncio.create_task(self._probe_lvs(config, generation), name="netd.lvs.probe")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _probe_lvs(self, config: core.Config, generation: int) -> None:
        try:
            left = await self._kernel(marked_tables)
        except NftError as exc:
            log.warning("netd.lvs.probe_failed", reason=str(exc))
            left = ["?"]  # cannot tell: let the driver look, as it always did
        if not left:
            log.info("netd.lvs.unneeded", reason="no virtual server, no table left")
        elif self.lvs is None and not self.comp.stopping.is_set():
            log.info("netd.lvs.leftovers_found", tables=left)
            self._lvs_driver().configure(config, generation)

    def _intent(self, intent: messages.Intent, boot: str) -> None:
        instance = intent.instance
        name = vrrp_owner(instance)
        specs = vmac_specs(intent)
        vmac = specs[0] if intent.vmac is not None else None
        extra_if = ExtraIf.from_intent(intent)
        state = self.owners.of(name)
        if specs != state.vmacs:
            state.vmacs = specs
            self._mark_dirty()
        state.extra_if = extra_if
        master = intent.held
        if master != state.master:
            state.master = master
            self._mark_dirty()  # protodown follows
        source = (intent.items, intent.interface, vmac.name if vmac else None)
        if state.parsed is not None and state.parsed[0] == source:
            items = state.parsed[1]  # the periodic republish of an unchanged intent: parsed
        else:
            items = tuple(fromconfig.intent_items(*source))
            state.parsed = (source, items)
        if state.accept != (accept := intent.accept):
            state.accept = accept
            self._mark_dirty()
        lease = float(intent.lease) + LEASE_SLACK
        if self._offer(DesiredSet(name, intent.generation, items, lease), boot):
            state.fingerprint = intent.fingerprint or ""
        self.leases.heard_from(name)
        counter = intent.announce
        if master and wants_burst(state.announce, boot, counter):
            # Addresses first, then tell the segment: sent right after the next reconcile.
            state.pending_garps = max(1, intent.garp_count or 5)
            self._mark_dirty()
        state.announce = Announce(boot, counter)
        if not items:
            self.announcer.stop(name)
            state.pending_garps = 0
        elif extra_if is None:
            self.announcer.stop_periodic(name)
        self._end_grace_if_claimed()

    def _renew(self, renewal: messages.Renew, boot: str) -> None:
        """Extend the leases of the intents a vrrpd start still holds, generation for
        generation; one it names at a generation we lack gets no extension, and we ask
        vrrpd for that intent again (its full intent is re-sent right after every change,
        but nothing re-sends it on a timer: a lost last copy would otherwise stay lost)."""
        leases = parse_renewal(renewal)
        owners = {vrrp_owner(i): i for i in leases}
        # A set: every held instance is named each round, and list membership was quadratic.
        extended = set(self.leases.renew(boot, {o: leases[i] for o, i in owners.items()}))
        now = self.leases.clock()
        lacking = sorted(
            i
            for o, i in owners.items()
            if o not in extended and now - self._asked.get(i, -RESYNC_EVERY) >= RESYNC_EVERY
        )
        if lacking and self._sub is not None:
            log.info("netd.intent.resync", instances=lacking)
            self._asked.update(dict.fromkeys(lacking, now))
            self._sub.resync(*(f"vrrp.intent.{i}" for i in lacking))

    def _offer(self, ds: DesiredSet, boot: str) -> bool:
        offer = self.leases.offer(ds, boot)
        if not offer.accepted:
            log.debug("netd.desired.refused", owner=ds.owner, reason=offer.reason)
            return False
        state = self.owners.of(ds.owner)
        was_held, state.held = state.held, bool(ds.items)
        if state.held != was_held:
            self.held.publish(self.comp.publisher, self.owners)
        # An empty set replacing nothing (a backup's periodic republish) changes no kernel.
        if offer.changed and (ds.items or was_held):
            self._mark_dirty()
        return True

    def _end_grace_if_claimed(self) -> None:
        """Every instance has spoken: leftovers it did not claim can go now."""
        if not self.leases.all_claimed():
            return
        was_running, dropped = self.leases.end_grace()
        if was_running:
            self._mark_dirty()  # unclaimed leftover VMACs go
        if dropped:
            self.owners.forget(LEFTOVER)
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
                if self.address_monitoring:
                    self._log_address(ev)
                if self.links.addr_event(ev):
                    self._mark_dirty()  # if it was ours and still desired, it goes back
            elif isinstance(ev, Overflow):
                log.warning("netd.netlink.overflow", detail="notifications lost; re-reading")
                self._resync = True
                self._mark_dirty()

    def _log_address(self, ev: AddrEvent) -> None:
        log.info(
            "netd.address.added" if ev.added else "netd.address.deleted",
            address=f"{ev.ip}/{ev.prefix}",
            interface=self.links.name_of(ev.ifindex),
            ifindex=ev.ifindex,
        )

    def _link_event(self, ev: LinkEvent) -> None:
        changed, gone = self.links.link_event(ev)
        if gone is not None and self.vmacs.vanished(gone):
            log.warning("netd.vmac.vanished", vmac=gone, detail="re-creating it")
            changed = True
        if changed:
            self._mark_dirty()

    # ---- kernel ------------------------------------------------------------------------------

    async def _read_links(self) -> None:
        """Every link and address as the kernel lists them now (start, or after Overflow)."""
        links = await self._kernel(self.kernel.links)
        addresses = await self._kernel(self.kernel.interface_addresses)
        self.links.reset(links, addresses)

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
            await self.vmacs.sync(self.leases.grace_over)
            await self._reconcile()
            for state in self.owners:
                if state.pending_garps:
                    count, state.pending_garps = state.pending_garps, 0
                    self._announce_owner(state.name, count)
            self.announcer.extra_if(self.owners, set(self.vmacs.made), self.links.macs())
        # pyroute2's decoded link and rule dumps leave a few hundred objects per pass in
        # reference cycles (messages, NLA slots, request processors) that only the cyclic
        # collector frees. Left to its thresholds, part of each pass is promoted to the old
        # generation first, and netd's heap crept ~5 KiB/s for minutes (docs/benchmarks.md,
        # "Memory since"). A full collection here frees each pass's cycles at once; the image
        # is frozen (watchdog.spawn), so it walks only netd's own objects (0.1 ms measured).
        gc.collect()

    def _vmac_made(self, vmac: Vmac, spec: VmacSpec) -> None:
        self.links.learn(vmac.index, vmac.ifname, vmac.up, vmac.mac)
        if spec.family == 6:
            self._vmac_link_local(spec)

    def _vmac_gone(self, name: str) -> None:
        self.store.drop(f"vmac:{name}")
        self.owners.forget(f"vmac:{name}")

    def _vmac_link_local(self, spec: VmacSpec) -> None:
        """An IPv6 VMAC is created without a link-local address (addrgenmode none: none may
        be derived from the virtual MAC, RFC 5798 7.4); as keepalived, give it the base's,
        the source of the instance's adverts."""
        base = self.links.named(spec.base)
        # The one vrrpd sends from: the first usable one, not the lowest. A tentative one
        # will do (the VMAC's copy is added nodad): the base's DAD may still be running.
        local = base.link_local(tentative=True) if base else None
        if local is None:
            log.warning("netd.vmac.no_link_local", vmac=spec.name, base=spec.base)
            return
        ip, _, prefix = local.partition("/")
        item = Address(ip=ip, prefix=int(prefix), dev=spec.name)
        self.leases.offer(DesiredSet(f"vmac:{spec.name}", 0, (item,)))
        self.owners.of(f"vmac:{spec.name}").held = True

    def _set_merged(self, merged: Merged) -> None:
        """Index the merged items by owner once: asking per owner (announcements, reports)
        scanned every item for each of 255 owners."""
        self._merged = merged
        owned: dict[str, list[Item]] = {}
        for item in merged.items:
            for owner in merged.owners.get(item_key(item), ()):
                owned.setdefault(owner, []).append(item)
        self.owners.set_owned(owned)

    async def _reconcile(self) -> None:
        merged = self.store.merged()
        self._set_merged(merged)
        for c in merged.conflicts:
            log.error("netd.conflict", key=str(c.key), kept=c.kept_owner, dropped=c.dropped_owner)
        # keepalived: the drop rules go in before the VIPs and out after them.
        blocked = blocked_addresses(self.owners.owned_map(), self.owners.accepting())
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
        failed = failures_by_owner(
            result,
            self._merged,
            self.vmacs.failures(),
            self._unblocked,
            self.firewall.settings.table,
        )
        publish_applied(self.comp.publisher, self.store, self.owners, failed)
        self.held.publish(self.comp.publisher, self.owners)

    # ---- announcements -----------------------------------------------------------------------

    def _announce_owner(self, owner: str, count: int) -> None:
        targets = burst_targets(self.owners.owned(owner), self.links.macs())
        self.announcer.burst(owner, targets, count)

    # ---- time --------------------------------------------------------------------------------

    def _arm_leases(self) -> None:
        """Sleep until a lease or the grace may run out: an idle netd does not tick. A timer
        that fires early (a renewal moved the lease on) finds nothing and re-arms."""
        at = self.leases.next_wakeup()
        if at is None or (self._lease_at is not None and self._lease_at <= at):
            return
        if self._lease_timer is not None:
            self._lease_timer.cancel()
        self._lease_at = at
        delay = max(0.0, at - self.leases.clock())
        self._lease_timer = self.loop.call_later(delay, self._leases_due)

    def _leases_due(self) -> None:
        self._lease_timer = self._lease_at = None
        lapse = self.leases.due()
        if lapse.bus_silent_for is not None:
            log.warning(
                "netd.bus.silent",
                silent_for=round(lapse.bus_silent_for, 3),
                detail="holding leases: renewals cannot arrive while the bus is down",
            )
        for owner in lapse.expired:
            self._lease_ran_out(owner)
        if lapse.expired:
            self.held.publish(self.comp.publisher, self.owners)  # after the expired reports
        if lapse.grace_ended:
            self._mark_dirty()
        self._arm_leases()

    def _lease_ran_out(self, owner: str) -> None:
        state = self.owners.of(owner)
        if owner == LEFTOVER:
            log.info("netd.leftover.grace_ended", reason=f"{RESTART_GRACE}s passed")
            self.owners.forget(owner)
        elif state.held:
            log.warning(
                "netd.lease.expired",
                owner=owner,
                detail="intent not renewed; withdrawing its addresses",
            )
            self.announcer.stop(owner)
            publish_expired(self.comp.publisher, owner)
        if state.held or state.master:  # its addresses go; its VMACs go quiet (protodown)
            self._mark_dirty()
        if state.held:
            state.lapse()
        state.master = False

    async def _recheck(self) -> None:
        """Re-check the kernel now and then (someone may have changed it)."""
        while True:
            await asyncio.sleep(RECONCILE_EVERY)
            self._mark_dirty()

    async def shutdown(self) -> None:
        """keepalived removes what it installed when it stops."""
        self.announcer.close()
        if self._lease_timer is not None:
            self._lease_timer.cancel()
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.monitor.fileno())
        if self._reconciling is not None:
            self._reconciling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciling
        # keepalived's -V keeps what the VRRP instances hold (and the VMACs and drop rules
        # they need); static items go either way.
        kept = [] if self.release_at_stop else self._vrrp_items()
        try:
            result = await self._kernel(self.kernel.reconcile, kept)
            log.info(
                "netd.withdrawn",
                removed=len(result.done),
                failed=len(result.failures),
                kept=len(kept),
            )
        except KernelError as exc:
            log.error("netd.withdraw.failed", reason=str(exc))
        if self.lvs is not None:
            await self.lvs.stop(withdraw=self.release_lvs_at_stop)
        if self.release_at_stop:
            await self._release_vrrp_extras()
        self.monitor.close()
        await self._kernel(self.kernel.close)
        self._netlink.shutdown(wait=True)

    async def _release_found_vips(self, config: core.Config) -> None:
        vips = foundvips.configured(config)
        try:
            observed = await self._kernel(self.kernel.observe)
            found = foundvips.unowned(vips, observed)
            if not found:
                return
            ops = [Operation(Action.DELETE, item) for item in found]
            result = await self._kernel(self.kernel.apply, ops)
        except KernelError as exc:
            log.error("netd.vip.release_failed", reason=str(exc))
            return
        for op in result.done:
            log.info("netd.vip.released", item=describe(op.item), reason="found at start-up (-X)")
        for failure in result.failures:
            log.error(
                "netd.vip.release_failed", item=describe(failure.op.item), reason=failure.reason
            )

    def _vrrp_items(self) -> list[Item]:
        """What the VRRP instances' intents (and their VMACs) hold as last reconciled."""
        return [
            item
            for owner, items in self.owners.owned_map().items()
            if owner.startswith(("vrrp:", "vmac:"))
            for item in items
        ]

    async def _release_vrrp_extras(self) -> None:
        await self._firewall(self.firewall.close)
        # keepalived deletes its VMACs at stop (after the VIPs) and restores the sysctls.
        await self.vmacs.remove_all()
        try:
            await self._kernel(self.vmacs.manager.restore_interfaces)
        except KernelError as exc:
            log.error("netd.devconf.restore_failed", reason=str(exc))
