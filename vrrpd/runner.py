"""One running VRRP instance: its machine, its advert bytes, and what it tells the bus.

A ``Runner`` turns the machine's actions into adverts on the wire, ``vrrp.state.<instance>``,
``vrrp.intent.<instance>`` (what netd must install), ``vrrp.event.<instance>`` and notify
scripts. Everything outside the instance (timers, the bus, notify/FIFO/mail, its sync group) it
reaches through a :class:`vrrpd.host.RunnerHost`; what the daemon changes about it (sockets,
link, source address, trackers, group) it is told through methods, never by having its
attributes set.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import structlog

from bus import messages
from bus.notices import NoticeLimiter
from vrrpd import dumps, notify
from vrrpd.ah import AhError, AhSession
from vrrpd.host import AdvertSender, AhAdvertSender, RunnerHost
from vrrpd.links import Link
from vrrpd.machine import (
    Action,
    AdvertReceived,
    CancelTimer,
    CauseKind,
    Event,
    FaultChanged,
    Log,
    Machine,
    Notify,
    PriorityChanged,
    RxLowerPriority,
    SendAdvert,
    SendGarp,
    SetTimer,
    SetVips,
    Shutdown,
    State,
    TimerFired,
    TimerName,
)
from vrrpd.packet import Advert, AuthType, ChecksumForm, IPAddress, PreparedAdvert, prepare
from vrrpd.plan import InstancePlan
from vrrpd.priority import PriorityVerdict, Tracker, TrackerKind, evaluate
from vrrpd.resume import fingerprint
from vrrpd.sockets import Datagram
from vrrpd.unicast_checksum import UnicastChecksum
from vrrpd.validate import (
    Accepted,
    Drop,
    DropReason,
    Expectations,
    IpFacts,
    ReceiveCounters,
    validate,
)

log = structlog.get_logger(__name__)

# After each change an intent is re-sent whole this many renewal rounds, so a lost one costs
# one round as before; later rounds renew it by generation only (one vrrp.renew for all).
FULL_ROUNDS = 4
MIN_LEASE = 1.0
_DROP_LOG_EVERY = 5.0
# Notices a peer can trigger with every advert (split brain: 10 a second at advert_int 0.1)
# are logged, and published on vrrp.event, at most this often per (instance, notice, peer);
# the next one says how many were held back (RFC 9568 asks to rate-limit such logs).
_NOTICE_EVERY = 1.0
_PER_ADVERT_NOTICES = frozenset(
    {"vrrpd.split_brain", "vrrpd.advert.lower_prio_discarded", "vrrpd.advert.own_address"}
)


# Timer events are immutable: one per timer name, not one per expiry.
TIMER_FIRED = {t.value: TimerFired(t) for t in TimerName}
_MASTER_DOWN = TimerName.MASTER_DOWN.value
_ADVER = TimerName.ADVER.value


class Runner:
    """One running instance: its machine, its advert bytes and what it told the bus."""

    def __init__(
        self,
        host: RunnerHost,
        plan: InstancePlan,
        link: Link,
        primary: IPAddress,
        sender: AdvertSender,
    ) -> None:
        self.host = host
        self.plan = plan
        self.link = link
        self.primary = primary
        self.sender = sender
        self.machine = Machine(plan.params_for(primary))
        self.counters = ReceiveCounters()
        self.checksum = self._checksum_policy()
        self.expect = self._expectations()
        self.adverts = self._prepare(plan.params.priority)
        self.fingerprint = fingerprint(plan)
        self.held = False
        self.accept = self.machine.accept
        self.intent_generation = 0
        self.full_rounds = 0  # renewal rounds left that re-send the whole intent
        self.announce = 0
        self.garp_count = 0
        self.status: dict[Tracker, bool | int | None] = {}
        self.priority_verdict = PriorityVerdict(self.plan.params.priority, frozenset(), "")
        self.faults: frozenset[str] = frozenset()
        self.disabled: set[Tracker] = set()
        self.assumed: dict[Tracker, str] = {}
        self.last_peer_addresses: dict[IPAddress, tuple[IPAddress, ...]] = {}
        self.last_transition: dict[str, Any] = {}
        #: the sync group this instance moves with, once the group has formed (vrrpd.groups)
        self.group: str | None = None
        self.sent = dumps.SendCounters()
        self.last_transition_at = host.wall_time()
        self._published: tuple[State, int, IPAddress | None] | None = None
        self._drop_logged: dict[str, float] = {}
        self.notices = NoticeLimiter(_NOTICE_EVERY)
        # the last datagram's verdict (see receive)
        self._rx_key = b""
        self._rx_expect: Expectations | None = None
        self._rx_result: Accepted | Drop | None = None
        self._rx_event: AdvertReceived | None = None
        #: that verdict is an advert without notes: its repeats may take receive_repeat
        self._rx_plain = False
        self._rx_form: ChecksumForm | None = None
        # auth_type AH: the anti-replay counter and the socket (see attach_ah)
        self.ah: AhSession | None = None
        self.ah_sender: AhAdvertSender | None = None
        #: set when a reload removes the instance: what its last transition reports
        #: (keepalived: DELETED with notify_deleted, else FAULT)
        self.removed_as: str | None = None
        #: the interface's index when the sockets were opened: a re-created interface has
        #: another one, and this instance's sockets are deaf and mute on it
        self.bound_ifindex = link.ifindex

    @property
    def name(self) -> str:
        return self.plan.name

    # ---- what the daemon changes about it ----------------------------------------------------

    def attach_sender(self, sender: AdvertSender) -> None:
        """Send from now on through ``sender`` (its interface was re-created)."""
        self.sender = sender

    def attach_ah(self, session: AhSession, sender: AhAdvertSender) -> None:
        """``auth_type AH``: adverts go out wrapped by ``session`` through ``sender``."""
        self.ah, self.ah_sender = session, sender

    def attach_ah_sender(self, sender: AhAdvertSender) -> None:
        """AH adverts go out through ``sender``; the session and its sequence numbers stay."""
        self.ah_sender = sender

    def set_link(self, link: Link) -> None:
        """netd's latest report on the instance's interface (see :meth:`trackers_changed`)."""
        self.link = link

    def rebind(self, ifindex: int) -> None:
        """The sockets now follow the interface under its new index ``ifindex``."""
        self.bound_ifindex = ifindex

    def track(
        self,
        status: dict[Tracker, bool | int | None],
        disabled: set[Tracker],
        assumed: dict[Tracker, str] | None = None,
    ) -> None:
        """The trackers' current status, those checkd refused to run, and why a status was
        assumed (``vrrpd.health``); applied by the next :meth:`trackers_changed`."""
        self.status, self.disabled, self.assumed = status, disabled, assumed or {}

    def join_group(self, group: str) -> None:
        """From now on the sync group ``group`` decides for this instance (vrrpd.groups)."""
        self.group = group

    def leave_group(self) -> None:
        self.group = None

    def stop(self, reason: str, now: float, *, removed: bool = False, release: bool = True) -> None:
        """keepalived's stop: shut the machine down and cancel its timers. ``removed``: a
        reload dropped the instance, reported as DELETED with notify_deleted, else FAULT.
        ``release`` False (keepalived's -V): a master keeps its VIPs, no priority-0 advert."""
        if removed:
            self.removed_as = "DELETED" if self.plan.notify_deleted else "FAULT"
        self.feed(Shutdown(reason, release=release), now)
        self.close()

    def _expectations(self) -> Expectations:
        p = self.plan
        return Expectations(
            vrid=p.vrid,
            version=p.version,
            family=p.family,
            interval_cs=p.params.interval_cs,
            addresses=p.vips,
            priority=p.params.priority,
            auth_type=p.auth_type,
            auth_pass=p.auth_pass,
            unicast=p.unicast,
            check_unicast_src=p.check_unicast_src,
            unicast_peers=frozenset(p.unicast_peers),
            peer_ttls={peer: (lo, hi) for peer, lo, hi in p.peer_ttls},
            own_addresses=frozenset({self.primary}),
            checksum_forms=self.checksum.rx_forms,
            checksum_any=p.checksum_as_v2,
        )

    def _checksum_policy(self) -> UnicastChecksum:
        p = self.plan
        return UnicastChecksum(p.old_unicast_checksum, unicast=p.unicast, as_v2=p.checksum_as_v2)

    def _prepare(self, priority: int) -> dict[IPAddress, PreparedAdvert]:
        """One prepared advert per destination: the v3 pseudo-header covers the destination."""
        p = self.plan
        form = self.checksum.tx_form
        advert = Advert(
            version=p.version,
            vrid=p.vrid,
            priority=priority,
            addresses=p.vips,
            interval=p.params.interval_cs if p.version == 3 else p.params.interval_cs // 100,
            family=p.family,
            auth_type=p.auth_type,
            auth_data=p.auth_pass.ljust(8, b"\0") if p.auth_pass else bytes(8),
        )
        dsts = p.unicast_peers if p.unicast else (p.mcast_group,)
        return {dst: prepare(advert, src=self.primary, dst=dst, form=form) for dst in dsts}

    def compatible(self, new: InstancePlan) -> bool:
        """Can ``new`` be applied without restarting the election (keepalived keeps state)?"""
        old = self.plan
        if (old.auth_type == AuthType.AH) != (new.auth_type == AuthType.AH):
            return False  # AH adverts use other sockets (IP protocol 51)
        return (
            old.interface,
            old.family,
            old.vrid,
            old.version,
            old.unicast_src,
            old.vmac,
            old.unicast_ttl,  # the send socket carries it
        ) == (
            new.interface,
            new.family,
            new.vrid,
            new.version,
            new.unicast_src,
            new.vmac,
            new.unicast_ttl,
        )

    def update(self, new: InstancePlan, now: float) -> None:
        """A reload changed this instance: keep its state, adopt priority, VIPs, trackers."""
        new_vips = set(new.vips) - set(self.plan.vips)
        self.plan = new
        self.machine.params = new.params_for(self.primary)
        checksum = self._checksum_policy()
        # A reload that leaves the mode alone keeps what auto mode learnt about the peers.
        checksum.switched = self.checksum.switched and checksum.mode == self.checksum.mode
        self.checksum = checksum
        self.expect = self._expectations()
        if self.ah is not None:
            self.ah.auth_pass, self.ah.unicast = new.auth_pass, new.unicast
        self.adverts = self._prepare(self.machine.priority)
        self.fingerprint = fingerprint(new)
        self.intent_generation += 1
        if self.held:
            if new_vips:  # as keepalived: a master announces VIPs a reload added
                self.announce += 1
                self.garp_count = new.params.garp_master_repeat
            self.publish_intent()
        self.trackers_changed(now)
        log.info("vrrpd.instance.updated", instance=self.name, state=self.machine.state.value)

    def move_source(self, primary: IPAddress, sender: AdvertSender) -> None:
        """The interface's primary address changed: adverts leave from ``primary`` now, and
        the election carries on (keepalived follows its interface's address too)."""
        self.primary, self.sender = primary, sender
        self.machine.params = self.plan.params_for(primary)
        self.expect = self._expectations()
        if self.ah is not None:
            assert isinstance(primary, ipaddress.IPv4Address)  # AH is IPv4 only (plan)
            self.ah.src = primary
        self.adverts = self._prepare(self.machine.priority)

    # ---- inputs ------------------------------------------------------------------------------

    def feed(self, event: Event, now: float) -> None:
        if self.group is None:
            self.execute(self.machine.handle(event, now), now)
            self.after_actions()
            return
        # A sync group member: the group decides, and its actions may belong to any member.
        self.host.route(self.name, event, now)

    def after_actions(self) -> None:
        m = self.machine
        if (m.state, m.priority, m.master_peer) != self._published:
            self.publish_state()

    def receive(self, dgram: Datagram, now: float) -> None:
        key = dgram.key
        # validate() is pure: the same bytes under the same expectations get the same verdict,
        # and a master sends the same advert every interval.
        if key and key == self._rx_key and self.expect is self._rx_expect:
            if self.receive_repeat(key, now):
                return
            result, event = self._rx_result, self._rx_event
            assert result is not None
        else:
            result = validate(dgram.payload, dgram.facts, self.expect)
            event = None
            if isinstance(result, Accepted):
                event = AdvertReceived.from_advert(result.advert, result.source)
                self.last_peer_addresses[result.source] = result.advert.addresses
                if result.checksum_form is ChecksumForm.OLD_UNICAST:
                    self._old_checksum_seen(result.source)
            self._rx_key, self._rx_expect = key, self.expect
            self._rx_result, self._rx_event = result, event
            self._rx_plain = isinstance(result, Accepted) and not result.notes
            self._rx_form = result.checksum_form if isinstance(result, Accepted) else None
        self.counters.record(result)
        if event is None:
            assert isinstance(result, Drop)
            self._log_drop(result, now)
            return
        assert isinstance(result, Accepted)
        for note in result.notes:
            self._log_drop(note, now, accepted=True)
        self.feed(event, now)

    def receive_repeat(self, key: bytes, now: float) -> bool:
        """A backup's steady state: its master's advert again, byte for byte in everything
        validation reads (``key``), under the same expectations. Only the master-down deadline
        moves; state, priority and master stay, so nothing is published or logged. False,
        having done nothing, unless ``key`` is the last datagram's, that was an accepted
        advert without notes, and :meth:`Machine.renew_master` takes it (no sync group)."""
        if (
            key != self._rx_key
            or self.expect is not self._rx_expect
            or not self._rx_plain
            or self.group is not None
        ):
            return False
        event = self._rx_event
        assert event is not None
        deadline = self.machine.renew_master(event, now)
        if deadline is None:
            return False
        # What counters.record does for an accepted advert without notes and with a non-zero
        # priority (renew_master takes no other).
        counters = self.counters
        counters.accepted += 1
        if self._rx_form is not None:
            counters.checksum_forms[self._rx_form] += 1
        self.host.set_timer(self.plan.name, _MASTER_DOWN, deadline)
        return True

    def _old_checksum_seen(self, peer: IPAddress) -> None:
        if not self.checksum.observe(ChecksumForm.OLD_UNICAST):
            return
        self.adverts = self._prepare(self.machine.priority)
        log.warning(
            "vrrpd.checksum.old_unicast",
            instance=self.name,
            peer=str(peer),
            detail="peer uses the keepalived <= 1.3.6 unicast VRRPv3 checksum; sending that "
            "form from now on (set old_unicast_checksum never to refuse it instead)",
        )

    def receive_ah(self, raw: bytes, now: float) -> None:
        """A whole IPv4 datagram of protocol 51 (IP header first) for this instance's VRID."""
        src = ipaddress.IPv4Address(raw[12:16]) if len(raw) >= 20 else ipaddress.IPv4Address(0)
        if self.ah is None:
            # keepalived: "Received AH header but auth type not AH"
            drop = Drop(DropReason.AUTH_TYPE, f"AH datagram from {src}, we use no AH", src)
        else:
            try:
                got = self.ah.open(raw)
            except AhError as exc:
                drop = Drop(DropReason.AUTH, f"advert from {src} dropped: {exc.detail}", src)
            else:
                facts = IpFacts(
                    src=got.src,
                    dst=got.dst,
                    ttl=got.ttl,
                    declared_len=len(got.payload),
                    ah_seq=got.seq,
                )
                self.receive(Datagram(got.payload, facts, self.plan.advert_interface), now)
                return
        self.counters.record(drop)
        self._log_drop(drop, now)

    def timer_fired(self, timer: str, now: float) -> None:
        if timer == _ADVER and self.group is None:
            # A master's steady state: one advert per interval, nothing else changes.
            deadline = self.machine.renew_adver(now)
            if deadline is not None:
                self.send_advert(self.machine.priority)
                self.host.set_timer(self.plan.name, _ADVER, deadline)
                return
        self.feed(TIMER_FIRED[timer], now)

    def _log_drop(self, item: Drop | Any, now: float, accepted: bool = False) -> None:
        reason = str(item.reason)
        if now - self._drop_logged.get(reason, -_DROP_LOG_EVERY) < _DROP_LOG_EVERY:
            return
        self._drop_logged[reason] = now
        event = "vrrpd.advert.mismatch" if accepted else "vrrpd.advert.dropped"
        counts = self.counters.notes if accepted else self.counters.drops
        log.warning(
            event, instance=self.name, reason=reason, detail=item.detail, count=counts[item.reason]
        )

    def trackers_changed(self, now: float) -> None:
        # A check checkd refused to run (script security) is dropped from tracking, as
        # keepalived drops it, rather than counted as failed.
        trackers = [t for t in self.plan.trackers if t not in self.disabled]
        verdict = evaluate(self.plan.params.priority, trackers, self.status, self.assumed)
        breakdown_changed = verdict.contributions != self.priority_verdict.contributions
        self.priority_verdict = verdict
        faults = set(verdict.faults)
        if self.plan.track_own_interface and not self.link.up:
            faults.add(f"interface {self.plan.interface}")
        faults.update(self.plan.config_faults)
        if self.link.ifindex != self.bound_ifindex:
            faults.add(f"interface {self.plan.interface} re-created (dynamic_interfaces not set)")
        src = self.plan.unicast_src
        if self.plan.track_src_ip and src is not None and src not in self.link.ips:
            faults.add(f"source address {src} on {self.plan.interface} (track_src_ip)")
        for source in sorted(faults - self.faults):
            self.feed(FaultChanged(source, faulty=True), now)
        for source in sorted(self.faults - faults):
            self.feed(FaultChanged(source, faulty=False), now)
        changed = faults != self.faults
        self.faults = frozenset(faults)
        if verdict.priority != self.machine.priority:
            self.feed(PriorityChanged(verdict.priority, verdict.reason), now)
        if changed or breakdown_changed:
            # No transition may publish it, but the operator should see at once why the
            # instance is in FAULT, or what makes its priority what it is.
            self.publish_state()

    # ---- outputs -----------------------------------------------------------------------------

    def execute(self, actions: list[Action], now: float) -> None:
        host = self.host
        # A takeover's SetVips and SendGarp come in one batch: netd gets one intent for both.
        intent_dirty = False
        for action in actions:
            match action:
                case SendAdvert(priority=prio):
                    self.send_advert(prio)
                case SetTimer(timer=timer, deadline=deadline):
                    host.set_timer(self.name, timer.value, deadline)
                case CancelTimer(timer=timer):
                    host.cancel_timer(self.name, timer.value)
                case SetVips(held=held, accept=accept):
                    self.held, self.accept = held, accept
                    self.intent_generation += 1
                    intent_dirty = True
                case SendGarp(count=count, reason=reason):
                    self.announce += 1
                    self.garp_count = count
                    log.info("vrrpd.garp", instance=self.name, count=count, reason=reason)
                    intent_dirty = True
                case Notify():
                    self.notify(action)
                case RxLowerPriority(peer=peer, priority=prio):
                    held_back = self.notices.due(("vrrp.event.split_brain", peer), now)
                    if held_back is not None:
                        self.publish_event(
                            "split_brain", peer=peer, priority=prio, repeated=held_back
                        )
                    host.run_notify(notify.rx_lower_jobs(self.name, self.plan.notify))
                case Log(event=event, detail=detail, peer=peer):
                    fields: dict[str, Any] = {}
                    if peer is not None and event in _PER_ADVERT_NOTICES:
                        held_back = self.notices.due((event, peer), now)
                        if held_back is None:
                            continue
                        if held_back:
                            fields["repeated"] = held_back
                    level = "warning" if "split_brain" in event else "info"
                    getattr(log, level)(
                        event,
                        instance=self.name,
                        detail=detail,
                        peer=str(peer) if peer else None,
                        **fields,
                    )
        if intent_dirty:
            self.publish_intent()

    def send_advert(self, priority: int) -> None:
        if self.ah is not None:
            self.send_ah_advert(priority)
            return
        sent = 0
        for dst, prepared in self.adverts.items():
            advert = prepared
            if priority != prepared.wire[2]:  # its priority (that property costs a call)
                advert = self.adverts[dst] = prepared.with_priority(priority)
            sent += self.sender.send(advert.wire, dst)
        self.sent.advert_sent += sent
        if priority == 0:
            self.sent.pri_zero_sent += sent

    def send_ah_advert(self, priority: int) -> None:
        """One advert round wrapped in AH: one sequence number for every destination."""
        assert self.ah is not None and self.ah_sender is not None
        dsts = tuple(d for d in self.adverts if isinstance(d, ipaddress.IPv4Address))
        for dst in dsts:
            if priority != self.adverts[dst].priority:
                self.adverts[dst] = self.adverts[dst].with_priority(priority)
        # v2 has no pseudo-header: the VRRP bytes are the same for every destination.
        datagrams = self.ah.seal(self.adverts[dsts[0]].wire, dsts)
        sender = self.ah_sender
        sent = sum(sender.send(d, dst) for d, dst in zip(datagrams, dsts, strict=True))
        self.sent.advert_sent += sent
        if priority == 0:
            self.sent.pri_zero_sent += sent

    def clear_stats(self) -> None:
        """keepalived's STATS_CLEAR: the counters of the USR2 and JSON dumps start again."""
        self.counters.clear()
        self.sent.clear()

    def view(self) -> dumps.InstanceView:
        m, p = self.machine, self.plan
        return dumps.InstanceView(
            name=p.name,
            version=p.version,
            state=m.state,
            vrid=p.vrid,
            base_priority=p.params.priority,
            effective_priority=m.priority,
            interface=p.interface,
            src_ip=str(self.primary),
            mcast=str(p.mcast_group),
            interval=p.params.interval_cs / 100,
            master_adver_int=m.master_adver_int_cs / 100,
            master_down=m.master_down_interval,
            master_priority=m.master_priority or 0,
            preempt=p.params.preempt,
            preempt_delay=p.params.preempt_delay,
            accept=self.accept,
            vips=tuple(str(v) for v in p.vips),
            vips_set=self.held,
            auth_type=int(p.auth_type),
            track_scripts=tuple(t.name for t in p.trackers if t.kind is TrackerKind.SCRIPT),
            last_transition=self.last_transition_at,
            received=self.counters,
            sent=self.sent,
        )

    @property
    def lease(self) -> float:
        return max(MIN_LEASE, self.machine.master_down_interval)

    def intent_body(self) -> dict[str, Any]:
        return self.plan.intent(
            generation=self.intent_generation,
            held=self.held,
            lease=self.lease,
            accept=self.accept,
            announce=self.announce,
            garp_count=self.garp_count,
            # netd copies it into net.applied: a restarted vrrpd resumes only its own items
            fingerprint=self.fingerprint,
        ).encode()

    def publish_intent(self, *, changed: bool = True) -> None:
        if changed:
            self.full_rounds = FULL_ROUNDS
        self.host.publish_intent(self.name, self.intent_body())

    def renewal(self) -> tuple[int, float] | None:
        """This round's compact renewal ([generation, lease]), or None after re-sending the
        whole intent (still in the rounds right after a change) or when nothing is held."""
        if not self.held:
            return None
        if self.full_rounds > 0:
            self.full_rounds -= 1
            self.publish_intent(changed=False)
            return None
        return (self.intent_generation, self.lease)

    def publish_state(self) -> None:
        m = self.machine
        self._published = (m.state, m.priority, m.master_peer)
        # Re-sends rebuild the body, so its receive counters are current every 5 s although
        # they change with every advert.
        self.host.publish_state(self.name, self.state_body(), self.state_body)

    def state_body(self) -> dict[str, Any]:
        """Current state plus the last transition's old/new/cause (retained on the bus)."""
        m = self.machine
        return messages.StateReport(
            instance=self.name,
            state=m.state.value,
            priority=m.priority,
            base_priority=self.plan.params.priority,
            vrid=self.plan.vrid,
            interface=self.plan.interface,
            family=self.plan.family,
            version=self.plan.version,
            master=str(m.master_peer) if m.state is State.BACKUP and m.master_peer else None,
            vips=tuple(str(v) for v in self.plan.vips),
            faults=tuple(sorted(self.faults)),
            # how the effective priority is made: base plus each tracker's contribution
            trackers=tuple(
                messages.TrackerShare(
                    tracker=c.tracker.label,
                    weight=c.tracker.weight,
                    reverse=c.tracker.reverse,
                    status=c.status,
                    delta=c.delta,
                    fault=c.fault,
                    assumed=c.assumed,
                )
                for c in self.priority_verdict.contributions
            ),
            drops=self.drops(),
            # keepalived's USR2/JSON statistics, for metrics (docs/operations.md)
            stats=dumps.stats_fields(self.view()),
            transitions=m.transitions,
            **self.last_transition,
        ).encode()

    def drops(self) -> dict[str, int]:
        """Receive counters, plus what this instance's socket got that no instance took."""
        out = self.counters.snapshot()
        unclaimed = self.host.unclaimed(self.plan.family, self.plan.advert_interface)
        for reason, n in unclaimed.items():
            out[f"drop.{reason.value}"] = out.get(f"drop.{reason.value}", 0) + n
        return out

    def notify(self, action: Notify) -> None:
        cause = action.cause
        fields = {
            "old": action.old.value,
            "new": action.new.value,
            "cause": cause.detail,
            "cause_kind": cause.kind.value,
        }
        if cause.peer is not None:
            fields["peer"] = str(cause.peer)
        if cause.timer is not None:
            fields["timer"] = cause.timer.value
        if cause.source is not None:
            fields["tracker"] = cause.source
        self.last_transition = fields
        self.last_transition_at = self.host.wall_time()
        if action.new is State.MASTER:
            self.sent.become_master += 1
        elif action.old is State.MASTER:
            self.sent.release_master += 1
        self.publish_state()
        log.info("vrrp.state", instance=self.name, priority=action.priority, **fields)
        state = "STOP" if self.host.stopping else self.removed_as or action.new.value
        if cause.kind is CauseKind.RESUMED:
            # Nothing changed on the network or for the operator: the previous vrrpd already
            # ran notify_master for this mastership (see docs/architecture.md).
            return
        if state in ("MASTER", "BACKUP", "FAULT", "STOP", "DELETED"):
            self.host.run_notify(
                notify.jobs_for(self.name, self.plan.notify, state, action.priority)
            )
            self.host.fifo_write(notify.fifo_line(self.name, state, action.priority))
            self.host.mail_alert("INSTANCE", self.name, state)

    def publish_event(
        self, kind: str, *, peer: IPAddress, priority: int, repeated: int = 0
    ) -> None:
        """``vrrp.event.<instance>``: a notice about ``peer`` (logged as well)."""
        addrs = self.last_peer_addresses.get(peer, ())
        body = messages.SplitBrain(
            instance=self.name,
            kind=kind,
            peer=str(peer),
            peer_priority=priority,
            peer_vips=tuple(str(a) for a in addrs),
            priority=self.machine.priority,
            vips=tuple(str(v) for v in self.plan.vips),
            # held back by the rate limit since the last one
            repeated=repeated or None,
        ).encode()
        log.error(
            "vrrp.event.split_brain",
            **{k: v for k, v in body.items() if k != "instance"},
            instance=self.name,
        )
        self.host.publish_event(self.name, body)

    def close(self) -> None:
        self.host.cancel_timers(self.name)
