"""Resolved settings: what an instance or checker actually uses after keepalived's inheritance.

The model keeps what the file said (None = "not set"); these helpers apply the global defaults,
strict-mode defaults and LVS inheritance in one place, so vrrpd and checkd agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from core.checks import effective_version
from core.model import (
    Checker,
    Config,
    GarpExtraIf,
    RealServer,
    State,
    VirtualServer,
    VrrpInstance,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class VrrpSettings:
    version: int
    advert_int: float
    priority: int
    state: State
    strict: bool
    accept: bool
    mcast_group: str
    garp_master_delay: int
    garp_master_repeat: int
    garp_master_refresh: int
    garp_master_refresh_repeat: int
    garp_lower_prio_delay: int
    garp_lower_prio_repeat: int
    down_timer_adverts: int
    lower_prio_no_advert: bool
    higher_prio_send_advert: bool
    check_unicast_src: bool
    skip_check_adv_addr: bool
    smtp_alert: bool
    notify_priority_changes: bool
    #: periodic GARP/NA on other VIP interfaces; None when off (an instance's 0 turns the
    #: global one off for it)
    garp_extra_if: GarpExtraIf | None = None


def vrrp_settings(config: Config, inst: VrrpInstance) -> VrrpSettings:
    g = config.global_defs
    strict = inst.strict_mode if inst.strict_mode is not None else g.vrrp_strict
    priority = inst.effective_priority
    # Global values first (vrrp_min_garp changes the defaults it was not told otherwise about;
    # the stored defaults stand for "not set"), then instance overrides. The lower-priority
    # burst inherits the *global* master values, and strict mode disables it (keepalived -d).
    min_garp = g.vrrp_min_garp
    g_delay = 0 if min_garp and g.vrrp_garp_master_delay == 5 else g.vrrp_garp_master_delay
    g_repeat = 1 if min_garp and g.vrrp_garp_master_repeat == 5 else g.vrrp_garp_master_repeat
    g_refresh_repeat = (
        0
        if min_garp and g.vrrp_garp_master_refresh_repeat == 1
        else g.vrrp_garp_master_refresh_repeat
    )
    master_delay = _first(inst.garp_master_delay, default=g_delay)
    master_repeat = _first(inst.garp_master_repeat, default=g_repeat)
    lower_delay = _first(inst.garp_lower_prio_delay, g.vrrp_garp_lower_prio_delay, default=g_delay)
    lower_repeat = _first(
        inst.garp_lower_prio_repeat, g.vrrp_garp_lower_prio_repeat, default=g_repeat
    )
    if strict:
        lower_delay = lower_repeat = 0
    family = inst.family
    mcast = inst.mcast_dst_ip or (g.vrrp_mcast_group6 if family == 6 else g.vrrp_mcast_group4)
    lower_no_advert = (
        inst.lower_prio_no_advert
        if inst.lower_prio_no_advert is not None
        else g.vrrp_lower_prio_no_advert
        if g.vrrp_lower_prio_no_advert is not None
        else strict
    )
    return VrrpSettings(
        version=effective_version(config, inst),
        advert_int=inst.advert_int,
        priority=priority,
        state=inst.effective_state,
        strict=strict,
        # What keepalived's dump shows: accept/no_accept as configured, else on for the owner
        # or outside strict mode. (An owner with no_accept still gets no drop rules: vrrpd's
        # machine accepts for the owner whatever this says, as keepalived does.)
        accept=inst.accept if inst.accept is not None else (priority == 255 or not strict),
        mcast_group=mcast,
        garp_master_delay=master_delay,
        garp_master_repeat=master_repeat,
        garp_master_refresh=(
            inst.garp_master_refresh
            if inst.garp_master_refresh is not None
            else g.vrrp_garp_master_refresh
        ),
        garp_master_refresh_repeat=_first(
            inst.garp_master_refresh_repeat, default=g_refresh_repeat
        ),
        garp_lower_prio_delay=lower_delay,
        garp_lower_prio_repeat=lower_repeat,
        down_timer_adverts=(
            inst.down_timer_adverts
            if inst.down_timer_adverts is not None
            else g.vrrp_down_timer_adverts
        ),
        lower_prio_no_advert=lower_no_advert,
        higher_prio_send_advert=(
            inst.higher_prio_send_advert
            if inst.higher_prio_send_advert is not None
            else g.vrrp_higher_prio_send_advert
        ),
        # A peer with min_ttl/max_ttl implies checking the source of unicast adverts.
        check_unicast_src=inst.check_unicast_src
        or g.vrrp_check_unicast_src
        or any(p.min_ttl is not None or p.max_ttl is not None for p in inst.unicast_peer),
        skip_check_adv_addr=(
            inst.skip_check_adv_addr
            if inst.skip_check_adv_addr is not None
            else g.vrrp_skip_check_adv_addr
        ),
        smtp_alert=_first_bool(inst.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert),
        notify_priority_changes=_first_bool(
            inst.notify_priority_changes, g.vrrp_notify_priority_changes
        ),
        garp_extra_if=_garp_extra_if(inst.garp_extra_if or g.vrrp_garp_extra_if),
    )


def _garp_extra_if(value: GarpExtraIf | None) -> GarpExtraIf | None:
    return value if value is not None and value.interval > 0 else None


def _first_bool(*values: bool | None) -> bool:
    return next((v for v in values if v is not None), False)


@dataclass(frozen=True, slots=True)
class CheckerSettings:
    kind: str
    connect_ip: str
    connect_port: int | None
    bindto: str | None
    connect_timeout: float
    retry: int
    delay_before_retry: float
    delay_loop: float
    warmup: float
    alpha: bool
    virtualhost: str | None
    misc_timeout: float | None


_RETRY_DEFAULT = {"DNS_CHECK": 3, "MISC_CHECK": 0}
_DELAY_BEFORE_RETRY_DEFAULT = {"HTTP_GET": 3.0, "SSL_GET": 3.0}


def checker_settings(vs: VirtualServer, rs: RealServer, c: Checker) -> CheckerSettings:
    """Checker values with keepalived's inheritance: checker, then real server, then VS."""
    delay_loop = _first(c.delay_loop, rs.delay_loop, default=vs.delay_loop)
    dbr_default = (
        delay_loop if c.kind == "DNS_CHECK" else _DELAY_BEFORE_RETRY_DEFAULT.get(c.kind, 1.0)
    )
    return CheckerSettings(
        kind=c.kind,
        connect_ip=c.connect_ip or rs.ip,
        connect_port=c.connect_port if c.connect_port is not None else rs.port,
        bindto=c.bindto,
        connect_timeout=_first(
            c.connect_timeout, rs.connect_timeout, vs.connect_timeout, default=5.0
        ),
        retry=_first(c.retry, rs.retry, vs.retry, default=_RETRY_DEFAULT.get(c.kind, 1)),
        delay_before_retry=_first(
            c.delay_before_retry, rs.delay_before_retry, vs.delay_before_retry, default=dbr_default
        ),
        delay_loop=delay_loop,
        warmup=_first(c.warmup, rs.warmup, vs.warmup, default=delay_loop),
        # keepalived clears alpha on a FILE_CHECK: its file is read at once (check_file.c)
        alpha=c.kind != "FILE_CHECK" and _first(c.alpha, rs.alpha, vs.alpha, default=False),
        virtualhost=_first_opt(c.virtualhost, rs.virtualhost, vs.virtualhost),
        # keepalived times a MISC_CHECK out after its virtual server's delay_loop, not the
        # checker's own, unless misc_timeout is set (0 counts as unset).
        misc_timeout=(c.misc_timeout or vs.delay_loop) if c.kind == "MISC_CHECK" else None,
    )


def _first(*values: T | None, default: T) -> T:
    for v in values:
        if v is not None:
            return v
    return default


def _first_opt(*values: T | None) -> T | None:
    return next((v for v in values if v is not None), None)


def lvs_work(config: Config) -> bool:
    """Whether ``config`` gives the LVS datapath work at start: a virtual server, or the
    IPVS-wide settings keepalived applies whatever else is configured (``lvs_flush``,
    ``lvs_timeouts``). netd loads its LVS driver for it (netd.lvsdemand), and the watchdog
    preloads that driver for netd (watchdog.ondemand)."""
    g = config.global_defs
    return bool(config.virtual_servers or g.lvs_flush or g.lvs_timeouts is not None)
