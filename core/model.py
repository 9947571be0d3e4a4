"""The typed, immutable configuration model.

Every block of keepalived.conf is a frozen, slotted dataclass. Fields hold what the file said,
with keepalived's defaults; `None` means "not set, inherit" where keepalived derives the value
from elsewhere (see the `effective_*` helpers). Keywords we accept but do not act on yet are kept
verbatim in `other` (as `RawOption`s) so nothing is silently dropped and `render` can print them.
Source locations are deliberately not part of the model: equal configs compare equal wherever
they were read from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from scripts.command import split_command

State = Literal["MASTER", "BACKUP"]


@dataclass(frozen=True, slots=True)
class RawOption:
    """A keyword kept verbatim: its arguments and, for a block, its inner options."""

    keyword: str
    args: tuple[str, ...] = ()
    children: tuple[RawOption, ...] | None = None


@dataclass(frozen=True, slots=True)
class Script:
    """A command as keepalived runs it, with an optional user and group to run as."""

    command: str
    user: str | None = None
    group: str | None = None

    @property
    def argv(self) -> list[str]:
        return split_command(self.command)


@dataclass(frozen=True, slots=True)
class UserGroup:
    user: str
    group: str | None = None


@dataclass(frozen=True, slots=True)
class LvsTimeouts:
    """``lvs_timeouts [tcp SECS] [tcpfin SECS] [udp SECS]``: IPVS connection timeouts (None:
    left as the kernel has them)."""

    tcp: int | None = None
    tcpfin: int | None = None
    udp: int | None = None


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int | None = None


@dataclass(frozen=True, slots=True)
class TrackRef:
    """An entry of track_interface / track_script / track_file / track_process / track_bfd.

    `weight` None means "use the tracked object's own weight" (or 0 for interfaces).
    """

    name: str
    weight: int | None = None
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Address:
    """A VIP, eVIP or static address, with every `ip addr` option keepalived accepts."""

    address: str  # canonical "ip/prefix"
    dev: str | None = None
    broadcast: str | None = None  # an address, "+" or "-"
    scope: str | None = None
    label: str | None = None
    peer: str | None = None
    home: bool = False
    nodad: bool = False
    mngtmpaddr: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    no_track: bool = False
    preferred_lft: str | None = None
    use_vmac: bool = False
    track_group: str | None = None

    @property
    def family(self) -> int:
        return 6 if ":" in self.address else 4

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def prefixlen(self) -> int:
        return int(self.address.split("/", 1)[1])


@dataclass(frozen=True, slots=True)
class Encap:
    """`encap mpls LABELS | ip ... | ip6 ... | ila LOCATOR` of a route or of one nexthop.

    For `ip6`, `tos` holds `tc` and `ttl` holds `hoplimit` (the kernel has one pair of
    attributes for both families).
    """

    type: Literal["mpls", "ip", "ip6", "ila"]
    labels: tuple[int, ...] = ()
    id: int | None = None
    dst: str | None = None
    src: str | None = None
    tos: int | None = None
    ttl: int | None = None
    flags: int | None = None
    locator: str | None = None


@dataclass(frozen=True, slots=True)
class Nexthop:
    """One `nexthop via ADDR dev IF weight N onlink realms R encap ...` of a multipath route."""

    via: str | None = None
    dev: str | None = None
    weight: int | None = None
    onlink: bool = False
    realms: str | None = None
    encap: Encap | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """A virtual or static route (`ip route` syntax).

    `options` holds the route metrics and the other single-valued options (`tos`, `mtu [lock]`,
    `advmss`, `pref`, `expires`, `realms`, ...) as validated word tuples in config order.
    """

    dest: str
    type: str | None = None
    src: str | None = None
    via: str | None = None
    via_or: str | None = None
    dev: str | None = None
    table: str | None = None
    metric: int | None = None
    scope: str | None = None
    protocol: str | None = None
    onlink: bool = False
    family: str | None = None
    no_track: bool = False
    track_group: str | None = None
    options: tuple[tuple[str, ...], ...] = ()
    encap: Encap | None = None
    nexthops: tuple[Nexthop, ...] = ()
    from_: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A virtual or static rule (`ip rule` syntax).

    `sport`/`dport`/`uidrange` are canonical `LO-HI` ranges; `invert` is `not`.
    """

    from_: str | None = None
    to: str | None = None
    table: str | None = None
    preference: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: str | None = None
    tos: str | None = None
    type: str | None = None
    goto: int | None = None
    family: str | None = None
    no_track: bool = False
    track_group: str | None = None
    options: tuple[tuple[str, ...], ...] = ()
    invert: bool = False
    realms: str | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    uidrange: str | None = None
    l3mdev: bool = False
    protocol: int | None = None
    ipproto: int | None = None
    sport: str | None = None
    dport: str | None = None
    tunnel_id: int | None = None


@dataclass(frozen=True, slots=True)
class UnicastPeer:
    address: str
    min_ttl: int | None = None
    max_ttl: int | None = None


@dataclass(frozen=True, slots=True)
class Authentication:
    auth_type: Literal["PASS", "AH"] | None = None
    auth_pass: str | None = None


@dataclass(frozen=True, slots=True)
class Vmac:
    """`use_vmac [[name] IFNAME] [MAC]`; both None means the default name vrrp.VRID."""

    name: str | None = None
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class GarpExtraIf:
    """`garp_extra_if [all] SECS`: while MASTER, a GARP/NA every `interval` seconds on the VIP
    interfaces other than the instance's own: VMACs only, or every one with `all`."""

    interval: int
    all_if: bool = False


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    router_id: str | None = None
    #: file-creation mask for the daemon and its children (keepalived default 0177)
    umask: int | None = None
    #: pykeepalived only: ``HOST:PORT`` of the Prometheus endpoint (``--metrics`` wins)
    metrics_listen: str | None = None
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: HostPort | None = None
    smtp_helo_name: str | None = None
    smtp_connect_timeout: int = 30
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    no_email_faults: bool = False
    checker_log_all_failures: bool = False
    script_user: UserGroup | None = None
    enable_script_security: bool = False
    startup_script: Script | None = None
    startup_script_timeout: int = 10
    shutdown_script: Script | None = None
    shutdown_script_timeout: int = 10
    dynamic_interfaces: bool = False
    dynamic_interfaces_allow_if_changes: bool = False
    default_interface: str | None = None
    vrrp_mcast_group4: str = "224.0.0.18"
    vrrp_mcast_group6: str = "ff02::12"
    vrrp_version: int = 2
    vrrp_garp_master_delay: int = 5
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: int = 0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_lower_prio_delay: int | None = None
    vrrp_garp_lower_prio_repeat: int | None = None
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_min_garp: bool = False
    vrrp_garp_extra_if: GarpExtraIf | None = None
    vrrp_down_timer_adverts: int = 3
    vrrp_lower_prio_no_advert: bool | None = None
    vrrp_higher_prio_send_advert: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_strict: bool = False
    vrrp_startup_delay: float = 0.0
    #: keepalived 2.4: VRRP starts no earlier than this long after the system booted
    vrrp_delay_after_boot: float = 0.0
    notify_fifo: Script | None = None
    notify_fifo_script: Script | None = None
    vrrp_notify_fifo: Script | None = None
    vrrp_notify_fifo_script: Script | None = None
    lvs_notify_fifo: Script | None = None
    lvs_notify_fifo_script: Script | None = None
    vrrp_notify_priority_changes: bool = False
    fifo_write_vrrp_states_on_reload: bool = False
    lvs_flush: bool = False
    lvs_flush_on_stop: bool = False
    lvs_flush_on_stop_vs: bool = False  # `lvs_flush_on_stop VS`: services only, not the table
    lvs_timeouts: LvsTimeouts | None = None
    #: pykeepalived only: the LVS datapath (auto: IPVS where the kernel has it, else nftables)
    lvs_backend: str = "auto"
    max_auto_priority: int | None = None
    #: how vrrpd and checkd run (docs/operations.md, "Process priorities"): nice value,
    #: SCHED_RR priority, its RLIMIT_RTTIME (us), memory locked, CPUs
    vrrp_priority: int | None = None
    checker_priority: int | None = None
    vrrp_rt_priority: int | None = None
    checker_rt_priority: int | None = None
    vrrp_rlimit_rttime: int | None = None
    checker_rlimit_rttime: int | None = None
    vrrp_no_swap: bool = False
    checker_no_swap: bool = False
    vrrp_cpu_affinity: tuple[int, ...] = ()
    checker_cpu_affinity: tuple[int, ...] = ()
    vmac_prefix: str | None = None
    vmac_addr_prefix: str | None = None
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class VrrpScript:
    name: str
    script: Script | None = None
    interval: float = 1.0
    timeout: float | None = None  # None: same as interval
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: UserGroup | None = None
    init_fail: bool = False
    other: tuple[RawOption, ...] = ()

    @property
    def effective_timeout(self) -> float:
        return self.interval if self.timeout is None else self.timeout


@dataclass(frozen=True, slots=True)
class TrackProcess:
    name: str
    process: tuple[str, ...] = ()
    param_match: Literal["initial", "partial"] | None = None
    weight: int = 0
    weight_reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay: float | None = None
    terminate_delay: float | None = None
    full_command: bool = False
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class InitFile:
    value: int = 0
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class TrackFile:
    name: str
    file: str | None = None
    weight: int = 1
    weight_reverse: bool = False
    init_file: InitFile | None = None
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class BfdInstance:
    name: str
    neighbor_ip: str | None = None
    source_ip: str | None = None
    min_rx: float = 10.0
    min_tx: float = 10.0
    idle_tx: float = 1000.0
    multiplier: int = 5
    passive: bool = False
    ttl: int | None = None
    hoplimit: int | None = None
    max_hops: int = 0
    multihop: bool = False
    weight: int = 0
    weight_reverse: bool = False
    vrrp: bool = False
    checker: bool = False
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncGroup:
    name: str
    group: tuple[str, ...] = ()
    track_interface: tuple[TrackRef, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    track_process: tuple[TrackRef, ...] = ()
    track_bfd: tuple[TrackRef, ...] = ()
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify: Script | None = None
    smtp_alert: bool | None = None
    global_tracking: bool = False
    sync_group_tracking_weight: bool = False
    notify_priority_changes: bool | None = None
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class GarpGroup:
    garp_interval: float | None = None
    gna_interval: float | None = None
    interface: str | None = None
    interfaces: tuple[str, ...] = ()
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class VrrpInstance:
    name: str
    state: State | None = None
    interface: str | None = None
    virtual_router_id: int | None = None
    priority: int | None = None
    advert_int: float = 1.0
    version: int | None = None
    authentication: Authentication | None = None
    virtual_ipaddress: tuple[Address, ...] = ()
    virtual_ipaddress_excluded: tuple[Address, ...] = ()
    no_virtual_ipaddress: bool = False
    virtual_routes: tuple[Route, ...] = ()
    virtual_rules: tuple[Rule, ...] = ()
    track_interface: tuple[TrackRef, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    track_process: tuple[TrackRef, ...] = ()
    track_bfd: tuple[TrackRef, ...] = ()
    dont_track_primary: bool = False
    nopreempt: bool = False
    preempt_delay: float = 0.0
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify_deleted: Script | None = None
    notify: Script | None = None
    notify_master_rx_lower_pri: Script | None = None
    notify_priority_changes: bool | None = None
    smtp_alert: bool | None = None
    unicast_src_ip: str | None = None
    unicast_peer: tuple[UnicastPeer, ...] = ()
    unicast_ttl: int | None = None
    unicast_fault_no_peer: bool = False
    check_unicast_src: bool = False
    mcast_dst_ip: str | None = None
    track_src_ip: bool = False
    vrf: str | None = None
    use_vmac: Vmac | None = None
    vmac_xmit_base: bool = False
    use_vmac_addr: bool = False
    garp_extra_if: GarpExtraIf | None = None
    garp_master_delay: int | None = None
    garp_master_repeat: int | None = None
    garp_master_refresh: int | None = None
    garp_master_refresh_repeat: int | None = None
    garp_lower_prio_delay: int | None = None
    garp_lower_prio_repeat: int | None = None
    down_timer_adverts: int | None = None
    lower_prio_no_advert: bool | None = None
    higher_prio_send_advert: bool | None = None
    strict_mode: bool | None = None
    skip_check_adv_addr: bool | None = None
    accept: bool | None = None
    v3_checksum_as_v2: bool | None = None
    #: ``old_unicast_checksum`` forces keepalived <= 1.3.6's unicast v3 checksum form;
    #: ``old_unicast_checksum never`` stops the automatic switch to it
    old_unicast_checksum: bool = False
    old_unicast_checksum_never: bool = False
    promote_secondaries: bool = False
    native_ipv6: bool = False
    other: tuple[RawOption, ...] = ()

    @property
    def effective_priority(self) -> int:
        if self.priority is not None:
            return self.priority
        return 255 if self.state == "MASTER" else 100

    @property
    def effective_state(self) -> State:
        if self.state is not None:
            return self.state
        return "MASTER" if self.effective_priority == 255 else "BACKUP"

    @property
    def family(self) -> int:
        """Address family of the advertised VIPs (4 unless the first VIP is IPv6)."""
        if self.native_ipv6:
            return 6
        if self.virtual_ipaddress:
            return self.virtual_ipaddress[0].family
        return 6 if self.unicast_src_ip and ":" in self.unicast_src_ip else 4


@dataclass(frozen=True, slots=True)
class VsgEntry:
    """One line of a virtual_server_group: an address or range with a port, or a fwmark."""

    address: str | None = None
    port: int | None = None
    fwmark: int | None = None
    family: str | None = None


@dataclass(frozen=True, slots=True)
class VirtualServerGroup:
    name: str
    entries: tuple[VsgEntry, ...] = ()
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class Url:
    path: str | None = None
    digest: str | None = None
    status_code: tuple[str, ...] = ()
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False
    other: tuple[RawOption, ...] = ()


CheckerKind = Literal[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "SMTP_CHECK",
    "DNS_CHECK",
    "MISC_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
]


@dataclass(frozen=True, slots=True)
class Checker:
    """A real-server checker. `kind` selects which fields apply (see core.keywords)."""

    kind: CheckerKind
    connect_ip: str | None = None
    connect_port: int | None = None
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    connect_timeout: float | None = None
    fwmark: int | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    alpha: bool | None = None
    log_all_failures: bool | None = None
    # HTTP_GET / SSL_GET
    http_protocol: str | None = None
    virtualhost: str | None = None
    fast_recovery: bool | None = None
    enable_sni: bool = False
    sni_name: str | None = None  # SSL_GET: the SNI to send; giving one turns SNI on
    urls: tuple[Url, ...] = ()
    # SMTP_CHECK
    helo_name: str | None = None
    # DNS_CHECK
    type: str | None = None
    name: str | None = None
    # MISC_CHECK
    misc_path: Script | None = None
    misc_timeout: float | None = None
    misc_dynamic: bool = False
    user: UserGroup | None = None
    # UDP_CHECK
    payload: str | None = None
    require_reply: str | None = None
    min_reply_length: int | None = None
    max_reply_length: int | None = None
    # FILE_CHECK
    track_file: str | None = None
    weight: int | None = None
    weight_reverse: bool = False
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class RealServer:
    ip: str
    port: int | None = None
    weight: int | None = None  # None: the virtual server's (VirtualServer.real_server_weight)
    lvs_method: str | None = None
    notify_up: Script | None = None
    notify_down: Script | None = None
    uthreshold: int | None = None
    lthreshold: int | None = None
    inhibit_on_failure: bool | None = None
    alpha: bool | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    connect_timeout: float | None = None
    delay_loop: float | None = None
    smtp_alert: bool | None = None
    virtualhost: str | None = None
    checkers: tuple[Checker, ...] = ()
    other: tuple[RawOption, ...] = ()


@dataclass(frozen=True, slots=True)
class VirtualServer:
    """`virtual_server IP PORT | fwmark N | group NAME`; `name` is that header text."""

    name: str
    ip: str | None = None
    port: int | None = None
    fwmark: int | None = None
    group: str | None = None
    lvs_sched: str | None = None
    lvs_method: str | None = None
    protocol: str | None = None
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None
    delay_loop: float = 60.0
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    inhibit_on_failure: bool = False
    ha_suspend: bool = False
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    sorry_server: HostPort | None = None
    sorry_server_inhibit: bool = False
    sorry_server_lvs_method: str | None = None  # None: the virtual server's
    virtualhost: str | None = None
    smtp_alert: bool | None = None
    ip_family: str | None = None
    weight: int | None = None  # for its real servers without their own; None: 1
    real_servers: tuple[RealServer, ...] = ()
    other: tuple[RawOption, ...] = ()

    def real_server_weight(self, rs: RealServer) -> int:
        """keepalived's weight of a real server: its own, else this virtual server's ``weight``,
        else 1 (the sorry server always has 1)."""
        if rs.weight is not None:
            return rs.weight
        return 1 if self.weight is None else self.weight

    def sorry_forwarding(self) -> str:
        """The sorry server's forwarding method: ``sorry_server_lvs_method``, else this
        virtual server's, else NAT."""
        return (self.sorry_server_lvs_method or self.lvs_method or "NAT").upper()

    def forwarding_of(self, rs: RealServer) -> str:
        """keepalived's forwarding method of a real server: its own ``lvs_method``, else this
        virtual server's, else NAT."""
        return (rs.lvs_method or self.lvs_method or "NAT").upper()


@dataclass(frozen=True, slots=True)
class SslConfig:
    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    net_namespace: str | None = None
    instance: str | None = None
    use_pid_dir: bool = False
    child_wait_time: int = 5
    static_ipaddress: tuple[Address, ...] = ()
    static_routes: tuple[Route, ...] = ()
    static_rules: tuple[Rule, ...] = ()
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    track_processes: tuple[TrackProcess, ...] = ()
    track_files: tuple[TrackFile, ...] = ()
    bfd_instances: tuple[BfdInstance, ...] = ()
    sync_groups: tuple[SyncGroup, ...] = ()
    garp_groups: tuple[GarpGroup, ...] = ()
    instances: tuple[VrrpInstance, ...] = ()
    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    ssl: SslConfig | None = None
    other: tuple[RawOption, ...] = ()

    def instance_by_name(self, name: str) -> VrrpInstance | None:
        return next((i for i in self.instances if i.name == name), None)
