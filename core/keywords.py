"""The keyword tables of every keepalived block (the schema that drives parse and render)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import entries as ent
from core.lexer import Token
from core.model import (
    Authentication,
    BfdInstance,
    Checker,
    Config,
    GarpExtraIf,
    GarpGroup,
    GlobalDefs,
    InitFile,
    LvsTimeouts,
    RealServer,
    SslConfig,
    SyncGroup,
    TrackFile,
    TrackProcess,
    Url,
    VirtualServer,
    VirtualServerGroup,
    Vmac,
    VrrpInstance,
    VrrpScript,
)
from core.schema import (
    ArgError,
    BlockSchema,
    Choice,
    Const,
    CpuList,
    Ctx,
    DupFloat,
    EntryList,
    FileMode,
    Flag,
    FlagOption,
    Float,
    HostPortT,
    Int,
    IntChoice,
    Ip,
    K,
    Kw,
    ListenT,
    NamedBlock,
    OptInt,
    Raw,
    ScriptT,
    Str,
    SubBlock,
    UserGroupT,
    WeightT,
    WordList,
    Words,
    parse_block,
    parse_int,
    parse_ip,
    quote,
    render_block,
    report_extra_parameters,
)
from core.tree import Node

ADDRESSES = EntryList(ent.parse_address, ent.render_address, "address")
ROUTES = EntryList(ent.parse_route, ent.render_route, "route")
RULES = EntryList(ent.parse_rule, ent.render_rule, "rule")
PEERS = EntryList(ent.parse_peer, ent.render_peer, "peer")
TRACK = EntryList(ent.make_track_parser(), ent.render_track, "track entry")
TRACK254 = EntryList(ent.make_track_parser(-254, 254), ent.render_track, "track entry")
SCRIPT = ScriptT()
TIMER = Float(0)
BOOL = Flag()


# -- global_defs ----------------------------------------------------------------------------
def _process_priority_keywords(process: str) -> list[Kw]:
    """``<process>_priority`` and its kin: how vrrpd (``vrrp``) or checkd (``checker``) runs."""
    rttime = f"{process}_rlimit_rttime"
    return [
        K(f"{process}_priority", Int(-20, 19)),
        K(f"{process}_rt_priority", Int(1, 99)),
        K(rttime, RtTimeT()),
        K(
            f"{process}_rlimit_rtime",
            RtTimeT(),
            rttime,
            canonical=False,
            deprecated=rttime,
            deprecated_fails=False,
        ),
        K(f"{process}_no_swap", BOOL),
        K(f"{process}_cpu_affinity", CpuList()),
    ]


@dataclass(frozen=True)
class RtTimeT:
    """RLIMIT_RTTIME in microseconds; keepalived raises 1 to 2 (half of it is the soft limit)."""

    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> int:
        return max(2, Int(1, 2**32 - 1).parse(node, ctx))

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {value}"]


_GLOBAL_RAW = [
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "lvs_process_name",
    "use_symlink_paths",
    "set_supplementary_groups",
    "min_auto_priority_delay",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_cpu_affinity",
    "bfd_rlimit_rttime",
    "bfd_rlimit_rtime",
    "disable_local_igmp",
    "v3_checksum_as_v2",
    "vrrp_owner_ignore_adverts",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "nftables_counters",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "lvs_sync_daemon",
    "snmp_socket",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_traps",
    "snmp_vs_stats_update_interval",
    "snmp_rs_stats_update_interval",
    "enable_dbus",
    "dbus_service_name",
    "dbus_no_interface_name",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "rs_init_notifies",
    "no_checker_emails",
    "log_unknown_vrids",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "include_check",
    "config_save_dir",
    "tmp_config_directory",
    "data_use_instance",
    "state_dump_file",
    "stats_dump_file",
    "json_dump_file",
    "json_version",
    "iproute_usr_dir",
    "iproute_etc_dir",
    "linkbeat_use_polling",
    "smtp_alert_bfd",
]
_DEPRECATED_GLOBAL = {
    "lvs_process_name": "checker_process_name",
    "bfd_rlimit_rtime": "bfd_rlimit_rttime",
    "vrrp_vmac_garp_intvl": "vrrp_garp_extra_if",
    "enable_snmp_keepalived": "enable_snmp_vrrp",
}


@dataclass(frozen=True)
class GarpExtraIfT:
    """`[all] SECS` in either order; keepalived allows 0 in an instance (none there, overriding
    the global) and 1..86400 globally."""

    lo: int = 0
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> GarpExtraIf:
        interval: int | None = None
        all_if = False
        for tok in node.args:
            if tok.text == "all":
                all_if = True
            else:
                interval = parse_int(tok, self.lo, 86400)
        if interval is None:
            raise ArgError("specified without time", node.words[0])
        return GarpExtraIf(interval, all_if)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw}{' all' if value.all_if else ''} {value.interval}"]


LVS_BACKENDS = ("auto", "nftables", "ipvs")
_LVS_MAX_TIMEOUT = 86400 * 31  # keepalived's LVS_MAX_TIMEOUT


@dataclass(frozen=True)
class LvsTimeoutsT:
    """``lvs_timeouts [tcp SECS] [tcpfin SECS] [udp SECS]``, at least one."""

    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> LvsTimeouts:
        args = list(node.args)
        if not args:
            raise ArgError("requires at least one option", node.words[0])
        values: dict[str, int] = {}
        while args:
            tok = args.pop(0)
            if tok.text not in ("tcp", "tcpfin", "udp"):
                raise ArgError(f"unknown option '{tok.text}' (tcp, tcpfin or udp)", tok)
            if not args:
                raise ArgError(f"no value for {tok.text}", tok)
            values[tok.text] = parse_int(args.pop(0), 0, _LVS_MAX_TIMEOUT)
        return LvsTimeouts(**values)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        parts = [f"{k} {getattr(value, k)}" for k in ("tcp", "tcpfin", "udp")]
        return [f"{indent}{kw} " + " ".join(p for p in parts if not p.endswith(" None"))]


GLOBAL_DEFS = BlockSchema(
    "global_defs",
    GlobalDefs,
    [
        K("router_id", Str()),
        K("umask", FileMode()),
        # pykeepalived only (keepalived reports it as unknown): serve metrics there.
        K("metrics_listen", ListenT(), ours=True),
        # pykeepalived only: which LVS datapath netd programs (docs/lvs.md)
        K("lvs_backend", Choice(LVS_BACKENDS), ours=True),
        K("notification_email", WordList()),
        K("notification_email_from", Str()),
        K("smtp_server", HostPortT()),
        K("smtp_helo_name", Str()),
        K("smtp_connect_timeout", Int(1)),
        K("smtp_alert", BOOL),
        K("smtp_alert_vrrp", BOOL),
        K("smtp_alert_checker", BOOL),
        K("no_email_faults", BOOL),
        K("checker_log_all_failures", BOOL),
        K("script_user", UserGroupT()),
        K("enable_script_security", BOOL),
        K("startup_script", SCRIPT),
        K("startup_script_timeout", Int(1, 1000)),
        K("shutdown_script", SCRIPT),
        K("shutdown_script_timeout", Int(1, 1000)),
        K(
            "dynamic_interfaces",
            FlagOption("allow_if_changes"),
            ("dynamic_interfaces", "dynamic_interfaces_allow_if_changes"),
        ),
        K("default_interface", Str()),
        K("vrrp_mcast_group4", Ip(multicast=True)),
        K("vrrp_mcast_group6", Ip(multicast=True)),
        K("vrrp_version", IntChoice((2, 3))),
        K("vrrp_garp_master_delay", Int(0)),
        K("vrrp_garp_master_repeat", Int(1, 255)),
        K("vrrp_garp_master_refresh", Int(0)),
        K("vrrp_garp_master_refresh_repeat", Int(1, 255)),
        K("vrrp_garp_lower_prio_delay", Int(0)),
        K("vrrp_garp_lower_prio_repeat", Int(1, 255)),
        K("vrrp_garp_interval", Float(0)),
        K("vrrp_gna_interval", Float(0)),
        K("vrrp_min_garp", BOOL),
        K("vrrp_garp_extra_if", GarpExtraIfT(1)),
        K(
            "vrrp_vmac_garp_intvl",
            GarpExtraIfT(1),
            "vrrp_garp_extra_if",
            canonical=False,
            deprecated="vrrp_garp_extra_if",
            deprecated_fails=False,
        ),
        K("vmac_prefix", Str()),
        K("vmac_addr_prefix", Str()),
        K("vrrp_down_timer_adverts", Int(1, 100)),
        K("vrrp_lower_prio_no_advert", BOOL),
        K("vrrp_higher_prio_send_advert", BOOL),
        K("vrrp_check_unicast_src", BOOL),
        K("vrrp_skip_check_adv_addr", BOOL),
        K("vrrp_strict", BOOL),
        K("vrrp_startup_delay", Float(0, 4294.967295)),
        K("vrrp_delay_after_boot", Float(0, 4294.967295)),
        K("notify_fifo", SCRIPT),
        K("notify_fifo_script", SCRIPT),
        K("vrrp_notify_fifo", SCRIPT),
        K("vrrp_notify_fifo_script", SCRIPT),
        K("lvs_notify_fifo", SCRIPT),
        K("lvs_notify_fifo_script", SCRIPT),
        K("vrrp_notify_priority_changes", BOOL),
        K("fifo_write_vrrp_states_on_reload", BOOL),
        K("lvs_flush", BOOL),  # the IPVS backend flushes IPVS at start
        K("lvs_flush_on_stop", FlagOption("VS"), ("lvs_flush_on_stop", "lvs_flush_on_stop_vs")),
        K(
            "lvs_flush_onstop",
            FlagOption("VS"),
            ("lvs_flush_on_stop", "lvs_flush_on_stop_vs"),
            canonical=False,
            deprecated="lvs_flush_on_stop",
            deprecated_fails=False,
        ),
        K("lvs_timeouts", LvsTimeoutsT()),
        # realtime scheduling of a late process: not acted on
        K("max_auto_priority", OptInt(0, -1, 99), implemented=False),
        *_process_priority_keywords("vrrp"),
        *_process_priority_keywords("checker"),
        *[
            Raw(n, 0, None, None, _DEPRECATED_GLOBAL.get(n), deprecated_fails=False)
            for n in _GLOBAL_RAW
        ],
    ],
)

# -- trackers -------------------------------------------------------------------------------
VRRP_SCRIPT = BlockSchema(
    "vrrp_script",
    VrrpScript,
    [
        K("script", ScriptT(with_user=False, first_word_only=True)),
        K("interval", Float(0.001)),
        K("timeout", Float(0.001)),
        K("weight", WeightT(-253, 253), ("weight", "weight_reverse")),
        K("rise", Int(1)),
        K("fall", Int(1)),
        K("user", UserGroupT()),
        K("init_fail", BOOL),
    ],
)

TRACK_PROCESS = BlockSchema(
    "vrrp_track_process",
    TrackProcess,
    [
        K("process", Words(1)),
        K("param_match", Choice(("initial", "partial"))),
        K("weight", WeightT(-254, 254), ("weight", "weight_reverse")),
        K("quorum", Int(0)),
        K("quorum_max", Int(0)),
        K("fork_delay", TIMER),
        K("terminate_delay", TIMER),
        K("delay", DupFloat(2, 0), ("fork_delay", "terminate_delay"), canonical=False),
        K("full_command", BOOL),
    ],
)


@dataclass(frozen=True)
class InitFileT:
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> InitFile:
        value = 0
        overwrite = False
        for tok in node.args:
            if tok.text == "overwrite":
                overwrite = True
            else:
                value = parse_int(tok, -(2**31), 2**31 - 1, 0)
        return InitFile(value, overwrite)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {value.value}" + (" overwrite" if value.overwrite else "")]


TRACK_FILE = BlockSchema(
    "track_file",
    TrackFile,
    [
        K("file", Str()),
        K("weight", WeightT(-254, 254), ("weight", "weight_reverse")),
        K("init_file", InitFileT()),
    ],
)

BFD_INSTANCE = BlockSchema(
    "bfd_instance",
    BfdInstance,
    [
        K("neighbor_ip", Ip(), implemented=False),
        K("neighbour_ip", Ip(), "neighbor_ip", canonical=False, implemented=False),
        K("source_ip", Ip(), implemented=False),
        K("min_rx", Float(0), implemented=False),
        K("min_tx", Float(0), implemented=False),
        K("idle_tx", Float(0), implemented=False),
        K("multiplier", Int(1, 255), implemented=False),
        K("passive", BOOL, implemented=False),
        K("ttl", Int(1, 255), implemented=False),
        K("hoplimit", Int(1, 255), implemented=False),
        K("max_hops", Int(0, 255), implemented=False),
        K("multihop", BOOL, implemented=False),
        K("weight", WeightT(), ("weight", "weight_reverse"), implemented=False),
        K("vrrp", BOOL, implemented=False),
        K("checker", BOOL, implemented=False),
    ],
)

SYNC_GROUP = BlockSchema(
    "vrrp_sync_group",
    SyncGroup,
    [
        K("group", WordList()),
        K("track_interface", TRACK, mode="extend"),
        K("track_script", TRACK, mode="extend"),
        K("track_file", TRACK254, mode="extend"),
        K("track_process", TRACK254, mode="extend"),
        K("track_bfd", TRACK, mode="extend", implemented=False),
        K("notify_master", SCRIPT),
        K("notify_backup", SCRIPT),
        K("notify_fault", SCRIPT),
        K("notify_stop", SCRIPT),
        K("notify", SCRIPT),
        K("smtp_alert", BOOL),
        K("global_tracking", BOOL, deprecated="sync_group_tracking_weight"),
        K("sync_group_tracking_weight", BOOL),
        K("notify_priority_changes", BOOL),
    ],
)

GARP_GROUP = BlockSchema(
    "garp_group",
    GarpGroup,
    [
        K("garp_interval", Float(0)),
        K("gna_interval", Float(0)),
        K("interface", Str()),
        K("interfaces", WordList()),
    ],
)

AUTH = BlockSchema(
    "authentication",
    Authentication,
    [K("auth_type", Choice(("PASS", "AH"))), K("auth_pass", Str())],
)


@dataclass(frozen=True)
class VmacT:
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> Vmac:
        name: str | None = None
        mac: str | None = None
        args = [t for t in node.args]
        i = 0
        while i < len(args):
            w = args[i].text
            if w == "name" and i + 1 < len(args):
                name = args[i + 1].text
                i += 2
            elif w.count(":") == 5:
                mac = w.lower()
                if mac.startswith(("00:00:5e:00:01:", "00:00:5e:00:02:")):
                    raise ArgError(
                        f"VMAC MAC address not allowed to be RFC5798 address ({mac}); "
                        "the VRRP virtual MAC is derived from the VRID",
                        args[i],
                    )
                i += 1
            elif name is None:
                name = w
                i += 1
            else:
                raise ArgError(f"unexpected use_vmac option '{w}'", args[i])
        if name is not None and len(name) >= 16:
            raise ArgError(f"VMAC interface name '{name}' is too long (max 15)", node.args[0])
        return Vmac(name, mac)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        parts = [f"{indent}{kw}"]
        if value.name is not None:
            parts.append(quote(value.name))
        if value.mac is not None:
            parts.append(value.mac)
        return [" ".join(parts)]


VRRP_INSTANCE = BlockSchema(
    "vrrp_instance",
    VrrpInstance,
    [
        K("state", Choice(("MASTER", "BACKUP"))),
        K("interface", Str()),
        K("virtual_router_id", Int(1, 255)),
        K("priority", Int(1, 255)),
        K("advert_int", Float(0.01, 255)),
        K("version", IntChoice((2, 3))),
        K("authentication", SubBlock(AUTH)),
        K("virtual_ipaddress", ADDRESSES, mode="extend"),
        K("virtual_ipaddress_excluded", ADDRESSES, mode="extend"),
        K("no_virtual_ipaddress", BOOL),
        K("virtual_routes", ROUTES, mode="extend"),
        K("virtual_rules", RULES, mode="extend"),
        K("track_interface", TRACK, mode="extend"),
        K("track_script", TRACK, mode="extend"),
        K("track_file", TRACK254, mode="extend"),
        K("track_process", TRACK254, mode="extend"),
        K("track_bfd", TRACK, mode="extend", implemented=False),
        K("dont_track_primary", BOOL),
        K("nopreempt", Const(True)),
        K("preempt", Const(False), "nopreempt", canonical=False),
        K("preempt_delay", Float(0, 1000)),
        K("notify_master", SCRIPT),
        K("notify_backup", SCRIPT),
        K("notify_fault", SCRIPT),
        K("notify_stop", SCRIPT),
        K("notify_deleted", ScriptT(optional=True)),
        K("notify", SCRIPT),
        K("notify_master_rx_lower_pri", SCRIPT),
        K("notify_priority_changes", BOOL),
        K("smtp_alert", BOOL),
        K("unicast_src_ip", Ip()),
        # keepalived parses both with one handler: the source of every advert, unicast or not
        K("mcast_src_ip", Ip(), "unicast_src_ip", canonical=False),
        K("unicast_peer", PEERS, mode="extend"),
        K("unicast_ttl", Int(0, 255)),
        K("unicast_fault_no_peer", BOOL),
        K("check_unicast_src", BOOL),
        K("mcast_dst_ip", Ip(multicast=True)),
        K("track_src_ip", BOOL),
        # unicast without an interface, bound to a VRF: instances need an interface here
        K("vrf", Str(), implemented=False),
        K("use_vmac", VmacT()),
        K("vmac_xmit_base", BOOL),
        K("use_vmac_addr", BOOL),
        K("garp_extra_if", GarpExtraIfT()),
        K(
            "vmac_garp_intvl",
            GarpExtraIfT(),
            "garp_extra_if",
            canonical=False,
            deprecated="garp_extra_if",
        ),
        K("garp_master_delay", Int(0)),
        K("garp_master_repeat", Int(1, 255)),
        K("garp_master_refresh", Int(0)),
        K("garp_master_refresh_repeat", Int(1, 255)),
        K("garp_lower_prio_delay", Int(0)),
        K("garp_lower_prio_repeat", Int(1, 255)),
        K("down_timer_adverts", Int(1, 100)),
        K("lower_prio_no_advert", BOOL),
        K("higher_prio_send_advert", BOOL),
        K("strict_mode", BOOL),
        K("skip_check_adv_addr", BOOL),
        K("accept", Const(True)),
        K("no_accept", Const(False), "accept"),
        K("v3_checksum_as_v2", BOOL),
        K(
            "old_unicast_checksum",
            FlagOption("never"),
            ("old_unicast_checksum", "old_unicast_checksum_never"),
        ),
        K("promote_secondaries", BOOL),
        K("native_ipv6", BOOL, deprecated="an IPv6 virtual_ipaddress", deprecated_fails=False),
        Raw("use_ipvlan", 0, None),
        Raw("auth_hmac", 0, 0, True),
        Raw("owner_ignore_adverts", 0, 1),
        Raw("timer_expired_backup", 0, 1),
        Raw("thread_timer_expired", 0, 1),
        Raw("kernel_rx_buf_size", 1, 1),
        Raw("linkbeat_use_polling", 0, 0, deprecated="global linkbeat_use_polling"),
        Raw("lvs_sync_daemon_interface", 1, 1, deprecated="global lvs_sync_daemon"),
        Raw("debug", 0, 1),
    ],
)

# -- LVS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VsgT:
    """virtual_server_group: each inner line is an entry (there are no keywords)."""

    block: bool = True

    def parse(self, node: Node, ctx: Ctx) -> VirtualServerGroup:
        if not node.args:
            raise ArgError("'virtual_server_group' needs a name", node.words[0])
        ctx.locs.setdefault(("virtual_server_group", node.args[0].text), node.loc)
        entries = ADDRESSES_VSG.parse(node, ctx)
        return VirtualServerGroup(node.args[0].text, entries)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [
            f"{indent}{kw} {quote(value.name)} {{",
            *(f"{indent}  {ent.render_vsg_entry(e)}" for e in value.entries),
            f"{indent}}}",
        ]


ADDRESSES_VSG = EntryList(ent.parse_vsg_entry, ent.render_vsg_entry, "virtual_server_group entry")

_CHECK_COMMON: list[Kw | Raw] = [
    K("connect_ip", Ip()),
    K("connect_port", Int(0, 65535)),
    K("bindto", Ip()),
    K("bind_port", Int(0, 65535)),
    K("bind_if", Str()),
    K("connect_timeout", TIMER),
    K("fwmark", Int(0)),
    K("retry", Int(0)),
    K("nb_get_retry", Int(0), "retry", canonical=False, deprecated="retry"),
    K("delay_before_retry", TIMER),
    K("warmup", TIMER),
    K("delay_loop", TIMER),
    K("alpha", BOOL),
    K("log_all_failures", BOOL),
]
_CHECK_MISC_COMMON: list[Kw | Raw] = [
    k
    for k in _CHECK_COMMON
    if k.name
    in (
        "retry",
        "nb_get_retry",
        "delay_before_retry",
        "warmup",
        "delay_loop",
        "alpha",
        "log_all_failures",
    )
]

URL = BlockSchema(
    "url",
    Url,
    [
        K("path", Str()),
        K("digest", Str()),
        K("status_code", Words(1)),
        K("virtualhost", Str()),
        K("regex", Str()),
        K("regex_no_match", BOOL),
        Raw("regex_options", 1, None),
        Raw("regex_min_offset", 1, 1),
        Raw("regex_max_offset", 1, 1),
        Raw("regex_stack", 1, 2),
        Raw("tls_compliant", 0, 1),
    ],
)

_HTTP: list[Kw | Raw] = [
    K("http_protocol", Choice(("1.0", "1.0C", "1.1"))),
    K("virtualhost", Str()),
    K("fast_recovery", BOOL),
    K("enable_sni", BOOL),
    K("sni_name", Str()),
    K("url", SubBlock(URL), "urls", mode="append"),
    Raw("tls_compliant", 0, 1),
]

CHECKERS: dict[str, BlockSchema] = {
    "TCP_CHECK": BlockSchema("TCP_CHECK", Checker, _CHECK_COMMON),
    "HTTP_GET": BlockSchema("HTTP_GET", Checker, [*_CHECK_COMMON, *_HTTP]),
    "SSL_GET": BlockSchema("SSL_GET", Checker, [*_CHECK_COMMON, *_HTTP]),
    "SMTP_CHECK": BlockSchema(
        "SMTP_CHECK",
        Checker,
        [
            *_CHECK_COMMON,
            K("helo_name", Str()),
            Raw("host", 0, 0, True, "connect_ip", deprecated_fails=False),
        ],
    ),
    "DNS_CHECK": BlockSchema(
        "DNS_CHECK",
        Checker,
        [
            *_CHECK_COMMON,
            K(
                "type",
                Choice(("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"), True),
            ),
            K("name", Str()),
        ],
    ),
    "MISC_CHECK": BlockSchema(
        "MISC_CHECK",
        Checker,
        [
            *_CHECK_MISC_COMMON,
            K("misc_path", ScriptT(with_user=False)),
            K("misc_timeout", TIMER),
            K("misc_dynamic", BOOL),
            K("user", UserGroupT()),
        ],
    ),
    "UDP_CHECK": BlockSchema(
        "UDP_CHECK",
        Checker,
        [
            *_CHECK_COMMON,
            K("payload", Str()),
            K("require_reply", Str()),
            K("min_reply_length", Int(0, 65535)),
            K("max_reply_length", Int(0, 65535)),
        ],
    ),
    "PING_CHECK": BlockSchema("PING_CHECK", Checker, _CHECK_COMMON),
    # keepalived's check_file.c installs these two alone: a timing keyword here is an unknown
    # keyword (the file is watched, never scheduled: docs/checkers.md, "FILE_CHECK")
    "FILE_CHECK": BlockSchema(
        "FILE_CHECK",
        Checker,
        [
            K("track_file", Str()),
            K("weight", WeightT(-254, 254), ("weight", "weight_reverse")),
        ],
    ),
    "BFD_CHECK": BlockSchema(
        "BFD_CHECK", Checker, [K("name", Str(), implemented=False), K("alpha", BOOL)]
    ),
}


@dataclass(frozen=True)
class CheckerT:
    """All checker keywords share the `checkers` field; each item prints its own keyword."""

    kind: str
    block: bool = True

    def parse(self, node: Node, ctx: Ctx) -> Checker:
        if node.args:
            report_extra_parameters(ctx, node.keyword, node.args[0])
        values = parse_block(node.children or [], CHECKERS[self.kind], ctx)
        # kind is a key of CHECKERS, so one of Checker.kind's literals; mypy sees a str.
        return Checker(kind=self.kind, **values)  # type: ignore[arg-type]

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [
            f"{indent}{value.kind} {{",
            *render_block(value, CHECKERS[value.kind], indent + "  "),
            f"{indent}}}",
        ]


def _checker_kws() -> list[Kw]:
    return [
        K(kind, CheckerT(kind), "checkers", mode="append", canonical=(i == 0))
        for i, kind in enumerate(CHECKERS)
    ]


_LVS_METHODS = ("NAT", "DR", "TUN", "PMTUD")
_LVS_SCHED = (
    "rr",
    "wrr",
    "lc",
    "wlc",
    "lblc",
    "sh",
    "mh",
    "dh",
    "fo",
    "ovf",
    "lblcr",
    "sed",
    "nq",
    "twos",
)

REAL_SERVER = BlockSchema(
    "real_server",
    RealServer,
    [
        K("weight", Int(0, 65535)),
        # a real server's own forwarding method (netd: one method per virtual server)
        K("lvs_method", Choice(_LVS_METHODS)),
        K("lb_kind", Choice(_LVS_METHODS), "lvs_method", canonical=False),
        K("notify_up", SCRIPT),
        K("notify_down", SCRIPT),
        K("uthreshold", Int(0)),
        K("lthreshold", Int(0)),
        K("inhibit_on_failure", BOOL),
        K("alpha", BOOL),
        K("retry", Int(0)),
        K("delay_before_retry", TIMER),
        K("warmup", TIMER),
        K("connect_timeout", TIMER),
        K("delay_loop", TIMER),
        K("smtp_alert", BOOL),
        K("virtualhost", Str()),
        *_checker_kws(),
        Raw("snmp_name", 1, 1),
    ],
)


def _port(tok: Token) -> int:
    return parse_int(tok, 0, 65535)


@dataclass(frozen=True)
class RealServerT:
    block: bool = True

    def parse(self, node: Node, ctx: Ctx) -> RealServer:
        if not node.args:
            raise ArgError("'real_server' needs an address", node.words[0])
        ip = parse_ip(node.args[0])
        port = _port(node.args[1]) if len(node.args) > 1 else None
        if len(node.args) > 2:
            report_extra_parameters(ctx, "real_server", node.args[2])
        values = parse_block(node.children or [], REAL_SERVER, ctx)
        return RealServer(ip=ip, port=port, **values)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        head = f"{indent}{kw} {value.ip}" + (f" {value.port}" if value.port is not None else "")
        return [head + " {", *render_block(value, REAL_SERVER, indent + "  "), f"{indent}}}"]


VIRTUAL_SERVER = BlockSchema(
    "virtual_server",
    VirtualServer,
    [
        # netd programs these into its nftables datapath (docs/lvs.md); what it cannot do
        # (TUN, schedulers that need connection counts) core.checks reports.
        K("lvs_sched", Choice(_LVS_SCHED)),
        K("lb_algo", Choice(_LVS_SCHED), "lvs_sched", canonical=False),
        K("lvs_method", Choice(_LVS_METHODS)),
        K("lb_kind", Choice(_LVS_METHODS), "lvs_method", canonical=False),
        K("protocol", Choice(("TCP", "UDP", "SCTP"), True)),
        K("persistence_timeout", OptInt(360, 1)),
        K("persistence_granularity", Str()),
        K("delay_loop", TIMER),
        K("connect_timeout", TIMER),
        K("retry", Int(0)),
        K("delay_before_retry", TIMER),
        K("warmup", TIMER),
        K("inhibit_on_failure", BOOL),
        K("ha_suspend", BOOL),
        K("alpha", BOOL),
        K("omega", BOOL),
        K("quorum", Int(1)),
        K("hysteresis", Int(0)),
        K("quorum_up", SCRIPT),
        K("quorum_down", SCRIPT),
        K("sorry_server", HostPortT()),
        K("sorry_server_inhibit", BOOL),
        K("virtualhost", Str()),
        K("smtp_alert", BOOL),
        K("ip_family", Choice(("inet", "inet6"))),
        K("weight", Int(1, 65535)),
        K("real_server", RealServerT(), "real_servers", mode="append"),
        K("sorry_server_lvs_method", Choice(_LVS_METHODS)),
        Raw("snmp_name", 1, 1),
        # IPVS service flags (netd's IPVS backend sends them; core.checks says, per
        # lvs_backend, what the nftables datapath does with each, and that both ignore hashed)
        Raw("persistence_engine", 1, 1, implemented=True),
        Raw("hashed", 0, 0, quiet=True),
        *[
            Raw(f, 0, 0, implemented=True)
            for f in (
                "ops",
                "flag-1",
                "flag-2",
                "flag-3",
                "sh-port",
                "sh-fallback",
                "mh-port",
                "mh-fallback",
            )
        ],
    ],
)


@dataclass(frozen=True)
class VirtualServerT:
    block: bool = True

    def parse(self, node: Node, ctx: Ctx) -> VirtualServer:
        a = node.args
        head: dict[str, Any] = {}
        if not a:
            raise ArgError("'virtual_server' needs IP PORT, fwmark N or group NAME", node.words[0])
        if a[0].text == "fwmark":
            if len(a) < 2:
                raise ArgError("'fwmark' needs a value", a[0])
            head["fwmark"] = parse_int(a[1], 1, 0xFFFFFFFF, 0)
            extra = a[2:]
        elif a[0].text == "group":
            if len(a) < 2:
                raise ArgError("'group' needs a name", a[0])
            head["group"] = a[1].text
            extra = a[2:]
        else:
            head["ip"] = parse_ip(a[0])
            if len(a) > 1:
                head["port"] = _port(a[1])
            extra = a[2:]
        if extra:
            report_extra_parameters(ctx, "virtual_server", extra[0])
        name = vs_name(head.get("ip"), head.get("port"), head.get("fwmark"), head.get("group"))
        saved = ctx.owner
        ctx.owner = ("virtual_server", name)
        ctx.locs.setdefault(ctx.owner, node.loc)
        try:
            values = parse_block(node.children or [], VIRTUAL_SERVER, ctx)
        finally:
            ctx.owner = saved
        return VirtualServer(name=name, **head, **values)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [
            f"{indent}{kw} {value.name} {{",
            *render_block(value, VIRTUAL_SERVER, indent + "  "),
            f"{indent}}}",
        ]


def vs_name(ip: str | None, port: int | None, fwmark: int | None, group: str | None) -> str:
    if fwmark is not None:
        return f"fwmark {fwmark}"
    if group is not None:
        return f"group {quote(group)}"
    return f"{ip}" + (f" {port}" if port is not None else "")


SSL = BlockSchema(
    "SSL",
    SslConfig,
    [K("password", Str()), K("ca", Str()), K("certificate", Str()), K("key", Str())],
)

# -- root -----------------------------------------------------------------------------------
ROOT = BlockSchema(
    "",
    Config,
    [
        K("global_defs", SubBlock(GLOBAL_DEFS)),
        # The watchdog enters it before starting anything (watchdog.netns).
        K("net_namespace", Str()),
        K("instance", Str()),
        K("use_pid_dir", BOOL),
        K("child_wait_time", Int(0)),
        K("static_ipaddress", ADDRESSES, mode="extend"),
        K("static_routes", ROUTES, mode="extend"),
        K("static_rules", RULES, mode="extend"),
        K("vrrp_script", NamedBlock(VRRP_SCRIPT), "vrrp_scripts", mode="append"),
        K("vrrp_track_process", NamedBlock(TRACK_PROCESS), "track_processes", mode="append"),
        K("track_file", NamedBlock(TRACK_FILE), "track_files", mode="append"),
        K(
            "vrrp_track_file",
            NamedBlock(TRACK_FILE),
            "track_files",
            mode="append",
            canonical=False,
            deprecated="track_file",
            deprecated_fails=False,
        ),
        K(
            "bfd_instance",
            NamedBlock(BFD_INSTANCE),
            "bfd_instances",
            mode="append",
            implemented=False,
        ),
        K("vrrp_sync_group", NamedBlock(SYNC_GROUP), "sync_groups", mode="append"),
        K("garp_group", SubBlock(GARP_GROUP), "garp_groups", mode="append"),
        K("vrrp_instance", NamedBlock(VRRP_INSTANCE), "instances", mode="append"),
        # checkd runs the virtual servers' checkers and pools, netd their datapath.
        K(
            "virtual_server_group",
            VsgT(),
            "virtual_server_groups",
            mode="append",
        ),
        K("virtual_server", VirtualServerT(), "virtual_servers", mode="append"),
        K("SSL", SubBlock(SSL), "ssl"),
        Raw("net_namespace_ipvs", 0, 1),
        Raw("namespace_with_ipsets", 0, 0),
        Raw("linkbeat_use_polling", 0, 0),
        Raw("linkbeat_interfaces", 0, 0, True),
        Raw("interface_up_down_delays", 0, 0, True),
        Raw("track_group", 1, 1, True),
    ],
)

SCHEMAS: dict[str, BlockSchema] = {
    s.name or "root": s
    for s in (
        ROOT,
        GLOBAL_DEFS,
        VRRP_SCRIPT,
        TRACK_PROCESS,
        TRACK_FILE,
        BFD_INSTANCE,
        SYNC_GROUP,
        GARP_GROUP,
        VRRP_INSTANCE,
        VIRTUAL_SERVER,
        REAL_SERVER,
        URL,
        SSL,
        AUTH,
        *CHECKERS.values(),
    )
}


def _known_in() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for key, schema in SCHEMAS.items():
        for name in schema.names:
            out.setdefault(name, []).append(key if key != "root" else "the top level")
    return {k: tuple(v) for k, v in out.items()}


KNOWN_IN = _known_in()
