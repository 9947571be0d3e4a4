"""From the configuration model to what vrrpd runs: one ``InstancePlan`` per vrrp_instance.

Pure: no sockets and no link state. The parts that depend on the running system (the
interface's index and primary address) are filled in when netd has reported the link; see
``InstancePlan.params_for``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

from bus import messages
from core import (
    Config,
    GlobalDefs,
    Script,
    VrrpInstance,
    part_to_wire,
    script_spec,
    vrrp_settings,
)
from scripts import ScriptSpec
from vrrpd.machine import InstanceParams
from vrrpd.packet import MCAST_V4, MCAST_V6, AuthType, IPAddress
from vrrpd.priority import Tracker, TrackerKind
from vrrpd.vmacs import InstanceVmacs, assign_vmacs


@dataclass(frozen=True, slots=True)
class InstancePlan:
    name: str
    interface: str
    family: int
    vrid: int
    version: int
    params: InstanceParams  # primary_address is a placeholder until params_for()
    vips: tuple[IPAddress, ...]
    auth_type: AuthType
    auth_pass: bytes
    mcast_group: IPAddress
    unicast_src: IPAddress | None
    unicast_peers: tuple[IPAddress, ...]
    check_unicast_src: bool
    checksum_as_v2: bool
    trackers: tuple[Tracker, ...]
    track_own_interface: bool
    sync_group: str | None
    #: what netd installs while we are MASTER: core model parts as plain data
    net_items: tuple[dict[str, Any], ...]
    garp: dict[str, float]
    #: notify scripts by keyword (notify_master, notify, ...), ready for the script runner
    notify: dict[str, ScriptSpec]
    #: per-peer ``min_ttl``/``max_ttl`` (keepalived's defaults 0 and 255 filled in), only for
    #: peers that set either
    peer_ttls: tuple[tuple[IPAddress, int, int], ...] = ()
    #: ``old_unicast_checksum``: "auto" (switch on seeing the old form), "always" or "never"
    old_unicast_checksum: str = "auto"
    #: ``use_vmac``: what netd needs to create the macvlan, as plain data for the intent
    #: (base, name, vrid, family, mac, always, xmit_base); None without use_vmac
    vmac: dict[str, Any] | None = None
    #: ``use_vmac_addr``: VMACs for the VIPs on other interfaces (base, name, vrid, family,
    #: mac, always); the VIPs in ``net_items`` already name them as their ``dev``
    addr_vmacs: tuple[dict[str, Any], ...] = ()
    #: ``garp_extra_if``: ``{"interval": seconds, "all": bool}``; None when off
    garp_extra_if: dict[str, Any] | None = None
    #: ``unicast_ttl``: TTL (IPv6: hop limit) of unicast adverts; multicast ones always use 255
    unicast_ttl: int = 255
    #: ``track_src_ip``: FAULT while the configured ``unicast_src_ip`` (or ``mcast_src_ip``)
    #: is not on the interface
    track_src_ip: bool = False
    #: faults the configuration itself causes (``unicast_fault_no_peer`` without peers): the
    #: instance stays in FAULT while they are there
    config_faults: tuple[str, ...] = ()
    #: ``notify_deleted`` is set: a reload removing the instance reports DELETED, not FAULT
    notify_deleted: bool = False

    def intent(
        self,
        *,
        generation: int,
        held: bool,
        lease: float,
        accept: bool,
        announce: int = 0,
        garp_count: int = 0,
        fingerprint: str | None = None,
    ) -> messages.Intent:
        """The ``vrrp.intent`` message for this instance: what netd installs while ``held``,
        and the VMACs and extra-interface announcements it needs whether held or not."""
        extra = self.garp_extra_if
        return messages.Intent(
            instance=self.name,
            generation=generation,
            items=tuple(messages.IntentItem(i["kind"], i["spec"]) for i in self.net_items)
            if held
            else (),
            held=held,
            lease=lease,
            interface=self.interface,
            family=self.family,
            accept=accept,
            announce=announce,
            garp_count=garp_count,
            garp=self.garp,
            vmac=None if self.vmac is None else messages.Vmac(**self.vmac),
            addr_vmacs=tuple(messages.Vmac(**v) for v in self.addr_vmacs),
            garp_extra_if=None if extra is None else messages.ExtraIf(**extra),
            fingerprint=fingerprint,
        )

    @property
    def advert_interface(self) -> str:
        """Where adverts are sent and received: the VMAC unless ``vmac_xmit_base``.

        Receiving has to follow sending: a macvlan in private mode takes every multicast
        frame whose source MAC is its own (the peer's adverts, sent from the same virtual
        MAC) away from the base interface, so only a socket on the VMAC sees them.
        """
        if self.vmac is not None and not self.vmac["xmit_base"]:
            return str(self.vmac["name"])
        return self.interface

    @property
    def unicast(self) -> bool:
        return bool(self.unicast_peers)

    def params_for(self, primary: IPAddress) -> InstanceParams:
        return dataclasses.replace(self.params, primary_address=primary)


def plan(config: Config) -> list[InstancePlan]:
    groups = {member: g.name for g in config.sync_groups for member in g.group}
    vmacs = assign_vmacs(config)
    return [
        _plan_one(config, inst, groups.get(inst.name), vmacs[inst.name])
        for inst in config.instances
        if inst.interface and inst.virtual_router_id is not None
    ]


def _ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("/", 1)[0])


def _plan_one(
    config: Config, inst: VrrpInstance, sync_group: str | None, vmacs: InstanceVmacs
) -> InstancePlan:
    g: GlobalDefs = config.global_defs
    eff = vrrp_settings(config, inst)  # keepalived's inheritance, resolved once, in core
    family = inst.family
    version = eff.version
    interval_cs = max(1, round(eff.advert_int * 100))
    if version == 2:
        interval_cs = max(100, round(eff.advert_int) * 100)
    priority = eff.priority
    auth = inst.authentication
    auth_type = AuthType.NONE
    auth_pass = b""
    if version == 2 and auth is not None and auth.auth_type == "PASS":
        auth_type = AuthType.PASS
        auth_pass = (auth.auth_pass or "").encode()[:8]
    elif version == 2 and family == 4 and auth is not None and auth.auth_type == "AH":
        # The HMAC key is the same 8 zero-padded bytes PASS would send (keepalived's auth_data).
        auth_type = AuthType.AH
        auth_pass = (auth.auth_pass or "").encode()[:8]
    params = InstanceParams(
        name=inst.name,
        vrid=inst.virtual_router_id or 0,
        primary_address=ipaddress.ip_address("0.0.0.0" if family == 4 else "::"),
        version=version,
        priority=priority,
        interval_cs=interval_cs,
        preempt=not inst.nopreempt,
        preempt_delay=inst.preempt_delay,
        start_master=eff.state == "MASTER" and priority != 255,
        accept=eff.accept,
        down_timer_adverts=eff.down_timer_adverts,
        lower_prio_no_advert=eff.lower_prio_no_advert,
        higher_prio_send_advert=eff.higher_prio_send_advert,
        garp_master_repeat=eff.garp_master_repeat,
        garp_master_delay=float(eff.garp_master_delay),
        garp_master_refresh=float(eff.garp_master_refresh),
        garp_master_refresh_repeat=eff.garp_master_refresh_repeat,
        garp_lower_prio_repeat=eff.garp_lower_prio_repeat,
        garp_lower_prio_delay=float(eff.garp_lower_prio_delay),
        # keepalived scales the v2 skew with the advert interval as well (features 5.4).
        v2_skew_scales_with_interval=True,
    )
    group = eff.mcast_group
    trackers = _trackers(config, inst)
    net_items: list[dict[str, Any]] = []
    for kind, parts in (
        ("vip", inst.virtual_ipaddress),
        ("evip", inst.virtual_ipaddress_excluded),
        ("route", inst.virtual_routes),
        ("rule", inst.virtual_rules),
    ):
        for index, p in enumerate(parts):
            spec = part_to_wire(p)
            vmac_dev = vmacs.devs.get((kind, index))
            if vmac_dev is not None:
                spec = {**spec, "dev": vmac_dev}
            net_items.append({"kind": kind, "spec": spec})
    notify = notify_specs(config, inst.name, inst)
    return InstancePlan(
        name=inst.name,
        interface=inst.interface or "",
        family=family,
        vrid=inst.virtual_router_id or 0,
        version=version,
        params=params,
        vips=tuple(_ip(a.address) for a in inst.virtual_ipaddress),
        auth_type=auth_type,
        auth_pass=auth_pass,
        mcast_group=ipaddress.ip_address(group)
        if group
        else (MCAST_V4 if family == 4 else MCAST_V6),
        unicast_src=_ip(inst.unicast_src_ip) if inst.unicast_src_ip else None,
        unicast_peers=tuple(_ip(p.address) for p in inst.unicast_peer),
        check_unicast_src=eff.check_unicast_src,
        checksum_as_v2=bool(inst.v3_checksum_as_v2),
        trackers=trackers,
        track_own_interface=not inst.dont_track_primary,
        sync_group=sync_group,
        net_items=tuple(net_items),
        garp={
            "delay": float(eff.garp_master_delay),
            "repeat": float(eff.garp_master_repeat),
            "interval": float(g.vrrp_garp_interval),
            "gna_interval": float(g.vrrp_gna_interval),
        },
        notify=notify,
        peer_ttls=tuple(
            (_ip(peer.address), peer.min_ttl or 0, 255 if peer.max_ttl is None else peer.max_ttl)
            for peer in inst.unicast_peer
            if peer.min_ttl is not None or peer.max_ttl is not None
        ),
        old_unicast_checksum=_old_unicast_checksum(inst),
        vmac=vmacs.own,
        addr_vmacs=vmacs.extra,
        garp_extra_if=(
            {"interval": float(eff.garp_extra_if.interval), "all": eff.garp_extra_if.all_if}
            if eff.garp_extra_if is not None
            else None
        ),
        unicast_ttl=255 if inst.unicast_ttl is None else inst.unicast_ttl,
        track_src_ip=inst.track_src_ip and inst.unicast_src_ip is not None,
        config_faults=_config_faults(inst),
        notify_deleted=inst.notify_deleted is not None,
    )


def _config_faults(inst: VrrpInstance) -> tuple[str, ...]:
    # keepalived >= 2.2.7: with unicast_fault_no_peer an instance without peers is in FAULT
    # instead of falling back to multicast.
    if inst.unicast_fault_no_peer and not inst.unicast_peer:
        return ("no unicast peers (unicast_fault_no_peer)",)
    return ()


def _old_unicast_checksum(inst: VrrpInstance) -> str:
    if inst.old_unicast_checksum_never:
        return "never"
    return "always" if inst.old_unicast_checksum else "auto"


NOTIFY_KEYWORDS = (
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify_deleted",
    "notify",
    "notify_master_rx_lower_pri",
)


def notify_specs(config: Config, owner: str, block: object) -> dict[str, ScriptSpec]:
    """An instance's or sync group's notify scripts, with keepalived's choice of user.

    The script's own ``user [group]`` wins, then global ``script_user``; the script runner
    falls back to ``keepalived_script`` or the daemon's own user, and applies script security.
    """
    out: dict[str, ScriptSpec] = {}
    for keyword in NOTIFY_KEYWORDS:
        script: Script | None = getattr(block, keyword, None)
        if script is not None and script.command:  # a bare notify_deleted runs nothing
            out[keyword] = script_spec(config, f"{owner}:{keyword}", script)
    return out


def startup_delay(g: GlobalDefs, uptime: float) -> float:
    """Seconds before the instances start: ``vrrp_startup_delay``, or longer while the system
    has been up less than ``vrrp_delay_after_boot`` (the later of the two wins)."""
    return max(g.vrrp_startup_delay, g.vrrp_delay_after_boot - uptime, 0.0)


def _trackers(config: Config, inst: VrrpInstance) -> tuple[Tracker, ...]:
    """keepalived: an instance's weight on a tracker overrides the tracked object's own."""
    scripts = {s.name: s for s in config.vrrp_scripts}
    files = {f.name: f for f in config.track_files}
    procs = {p.name: p for p in config.track_processes}
    out: list[Tracker] = []
    for ref in inst.track_interface:
        out.append(Tracker(TrackerKind.INTERFACE, ref.name, ref.weight or 0, ref.reverse))
    for ref in inst.track_script:
        s = scripts.get(ref.name)
        weight = ref.weight if ref.weight is not None else (s.weight if s else 0)
        out.append(
            Tracker(
                TrackerKind.SCRIPT, ref.name, weight, ref.reverse or bool(s and s.weight_reverse)
            )
        )
    for ref in inst.track_file:
        f = files.get(ref.name)
        weight = ref.weight if ref.weight is not None else (f.weight if f else 1)
        out.append(
            Tracker(TrackerKind.FILE, ref.name, weight, ref.reverse or bool(f and f.weight_reverse))
        )
    for ref in inst.track_process:
        p = procs.get(ref.name)
        weight = ref.weight if ref.weight is not None else (p.weight if p else 0)
        out.append(
            Tracker(
                TrackerKind.PROCESS, ref.name, weight, ref.reverse or bool(p and p.weight_reverse)
            )
        )
    return tuple(out)
