"""The ``Global definitions`` section of ``keepalived_check.data``, as keepalived 2.2.7 writes it.

keepalived's ``dump_global_data`` opens every data dump (the parent's, VRRP's and the
checker's) with every global setting, defaults included, in a fixed order. This writes the
same lines from the typed ``global_defs`` (``core.model.GlobalDefs``); keywords the model keeps
only verbatim (``other``: process priorities, SNMP, DBus, netlink buffers, ...) are read from
there, so a configuration that sets them shows what keepalived shows.

Which lines exist depends on how keepalived was built; the reference is Debian's 2.2.7
(``NFTABLES LVS REGEX VRRP VRRP_AUTH VRRP_VMAC JSON BFD SNMP_* DBUS``, no iptables). Its
processes differ a little (``process``): the parent shows the start-up and shutdown scripts,
the VRRP process its ``Default interface`` and GARP lower-priority values filled in, and each
process the notify FIFOs it opens as it runs their scripts (``_fifos``).
tests/checkd/test_dump_globals.py holds the parent's and the VRRP process's sections against
what a running keepalived writes; the checker's (checkd's file) follows from them as keepalived's
source says, since keepalived's checker process does not start without IPVS. Facts of
keepalived's build rather than of the configuration are kept as keepalived prints them
(``libnftnl version``, the realtime limits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import scripts
from core.model import GlobalDefs, RawOption, Script
from mail.settings import smtp_settings

#: which of keepalived's processes writes the section
Process = Literal["checker", "parent", "vrrp"]
DEFAULT_INTERFACE = "eth0"  # keepalived's DFLT_INT
#: ``(user, group)`` as configured (None: not set) -> the uid and gid a script runs as.
Ids = Callable[[str | None, str | None], tuple[int, int]]

# keepalived's PARAMETER_UNSET, printed for an unset GARP lower-priority delay/repeat
UNSET = 2**32 - 1
DEFAULT_UMASK = 0o177
# Debian 2.2.7's build: the libnftnl it was linked with, and RLIMIT_RTTIME's default (usecs)
LIBNFTNL_VERSION = "1.2.3"
RT_RLIMIT_DEFAULT = 10000
DEFAULT_MIN_AUTO_PRIORITY_DELAY = 1_000_000  # usecs
DEFAULT_RX_BUFS_MULTIPLES = 3
DEFAULT_SNMP_SOCKET = "default (unix:/var/agentx/master)"
_NETLINK_BUFS = (
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs",
    "process_monitor_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs",
)


def global_section(
    g: GlobalDefs,
    *,
    router_id: str,
    hostname: str,
    ids: Ids,
    script_user: tuple[str, str | None] | None,
    process: Process = "checker",
) -> list[str]:
    """keepalived's ``dump_global_data`` as ``process`` writes it (checkd's file: the
    checker's; the other two are what tests hold against a running keepalived)."""

    def script_ids(script: Script) -> tuple[int, int]:
        if script.user is not None:
            return ids(script.user, script.group)
        return ids(*(script_user or (None, None)))

    raw = _Raw(g.other)
    out = ["------< Global definitions >------", *_identity(raw), f" Router ID = {router_id}"]
    out += _smtp(g, hostname)
    out += [
        f" Default smtp_alert = {_tristate(g.smtp_alert)}",
        f" Default smtp_alert_vrrp = {_tristate(g.smtp_alert_vrrp)}",
        f" Default smtp_alert_checker = {_tristate(g.smtp_alert_checker)}",
        f" Checkers log all failures = {_bool(g.checker_log_all_failures)}",
        " No test config before reload",
    ]
    if process == "parent":
        out += _scripts(g, script_ids)
    out.append(f" Dynamic interfaces = {_bool(g.dynamic_interfaces)}")
    if g.dynamic_interfaces:
        out.append(f" Allow interface changes = {_bool(g.dynamic_interfaces_allow_if_changes)}")
    if g.no_email_faults:
        out.append(" Send emails for fault transitions = off")
    if process == "vrrp":
        out.append(f" Default interface = {g.default_interface or DEFAULT_INTERFACE}")
    out += [
        f" Disable local IGMP = {'yes' if raw.flag('disable_local_igmp') else 'no'}",
        f" LVS flush = {_bool(g.lvs_flush)}",
        f" LVS flush on stop = {_flush_on_stop(g)}",
    ]
    out += _fifos(g, script_ids, process)
    out += _vrrp(g, raw, process)
    out += _processes(g, raw)
    out += _snmp_dbus(raw)
    out.append(f" Script security {'enabled' if g.enable_script_security else 'disabled'}")
    uid, gid = ids(*(script_user or (None, None)))
    out.append(f" Default script uid:gid {uid}:{gid}")
    for keyword in _NETLINK_BUFS:
        out.append(f" {keyword} = {raw.number(keyword, 0)}")
        out.append(f" {keyword}_force = {int(raw.flag(keyword + '_force'))}")
    out.append(f" rs_init_notifies = {int(raw.flag('rs_init_notifies'))}")
    out.append(f" no_checker_emails = {int(raw.flag('no_checker_emails'))}")
    out += _rx_bufs(raw)
    out.append(f" umask = 0{g.umask if g.umask is not None else DEFAULT_UMASK:o}")
    if g.vrrp_startup_delay:
        out.append(f" vrrp_startup_delay = {g.vrrp_startup_delay:g}")
    if raw.flag("log_unknown_vrids"):
        out.append(" log_unknown_vrids")
    if g.vmac_prefix:
        out.append(f" VMAC prefix = {g.vmac_prefix}")
    if g.vmac_addr_prefix:
        out.append(f" VMAC address prefix = {g.vmac_addr_prefix}")
    return out


def _identity(raw: _Raw) -> list[str]:
    """Namespaces, instance and process names."""
    ipvs = raw.get("net_namespace_ipvs")
    ipvs_text = "(main namespace)" if ipvs is None else (ipvs.args[:1] or ("(default)",))[0]
    out = [
        f" Network namespace = {raw.text('net_namespace', '(default)')}",
        f" Network namespace ipvs = {ipvs_text}",
    ]
    if (instance := raw.get("instance")) is not None and instance.args:
        out.append(f" Instance name = {instance.args[0]}")
    for keyword, label in (
        ("process_name", "Parent"),
        ("vrrp_process_name", "VRRP"),
        ("lvs_process_name", "LVS"),
        ("bfd_process_name", "BFD"),
    ):
        opt = raw.get(keyword)
        if opt is not None and opt.args:
            out.append(f" {label} process name = {opt.args[0]}")
    return out


def _scripts(g: GlobalDefs, script_ids: Callable[[Script], tuple[int, int]]) -> list[str]:
    """The parent's start-up and shutdown scripts (it resolves their programs' paths)."""
    out: list[str] = []
    for script, what, sep, timeout in (
        (g.startup_script, "Startup", ",", g.startup_script_timeout),
        (g.shutdown_script, "Shutdown", "", g.shutdown_script_timeout),
    ):
        if script is not None:
            uid, gid = script_ids(script)
            words = _resolved(script)
            out.append(
                f" {what} script = {cmd_str(words)}, uid:gid {uid}:{gid}{sep} timeout {timeout}"
            )
    return out


def _fifos(
    g: GlobalDefs, script_ids: Callable[[Script], tuple[int, int]], process: Process
) -> list[str]:
    """The notify FIFOs. The checker process opens the global and the LVS one: their scripts
    show as it runs them, the program's resolved path and the FIFO's name added as the last
    argument; the VRRP one's as configured. keepalived's VRRP process does the same with the
    global and the VRRP one; the parent opens none."""
    out: list[str] = []
    for fifo, fifo_script, label, owner in (
        (g.notify_fifo, g.notify_fifo_script, "Global", ("checker", "vrrp")),
        (g.vrrp_notify_fifo, g.vrrp_notify_fifo_script, "VRRP", ("vrrp",)),
        (g.lvs_notify_fifo, g.lvs_notify_fifo_script, "LVS", ("checker",)),
    ):
        ours = process in owner
        if fifo is None:
            continue
        uid, gid = script_ids(fifo)
        out.append(f" {label} notify fifo = {fifo.command}, uid:gid {uid}:{gid}")
        if fifo_script is not None:
            uid, gid = script_ids(fifo_script)
            words = _as_run(fifo_script, fifo.command) if ours else list(fifo_script.argv)
            out.append(f" {label} notify fifo script = {cmd_str(words)}, uid:gid {uid}:{gid}")
    return out


def _as_run(script: Script, fifo: str) -> list[str]:
    return [*_resolved(script), fifo]


def _resolved(script: Script) -> list[str]:
    try:
        program = scripts.resolve(script.command).path
    except scripts.ScriptRefused:
        program = script.argv[0]  # keepalived then refuses it; the words stay as written
    return [program, *script.argv[1:]]


def _smtp(g: GlobalDefs, hostname: str) -> list[str]:
    """Server, HELO, timeout and sender with keepalived's defaults (``mail.settings``): they
    exist only once an ``smtp_server`` is set, except a sender configured on its own."""
    out: list[str] = []
    s = smtp_settings(g, hostname)
    sender = g.notification_email_from
    if s is not None:
        out += [f" Smtp server = {s.server}", f" Smtp server port = {s.port}"]
        out.append(f" Smtp HELO name = {s.helo}")
        out.append(f" Smtp server connection timeout = {int(s.timeout)}")
        sender = s.sender
    elif g.smtp_helo_name:
        out.append(f" Smtp HELO name = {g.smtp_helo_name}")
    if sender:
        out += [f" Email notification from = {sender}", " Email notification to:"]
        out += [f"   {address}" for address in g.notification_email]
    return out


def _vrrp(g: GlobalDefs, raw: _Raw, process: Process) -> list[str]:
    # unset, the VRRP process (only) takes the GARP delay and repeat for them
    lower_delay = g.vrrp_garp_lower_prio_delay
    if lower_delay is None:
        lower_delay = g.vrrp_garp_master_delay if process == "vrrp" else UNSET
    lower_repeat = g.vrrp_garp_lower_prio_repeat
    if lower_repeat is None:
        lower_repeat = g.vrrp_garp_master_repeat if process == "vrrp" else UNSET
    lower_no_advert = bool(g.vrrp_lower_prio_no_advert)
    extra = g.vrrp_garp_extra_if
    extra_if = "i/f" if extra is not None and extra.all_if else "VMAC"
    extra_interval = extra.interval if extra is not None else 0
    out = [
        f" FIFO write vrrp states on reload = {_bool(g.fifo_write_vrrp_states_on_reload)}",
        f" VRRP notify priority changes = {_bool(g.vrrp_notify_priority_changes)}",
        f" VRRP IPv4 mcast group = {g.vrrp_mcast_group4}",
        f" VRRP IPv6 mcast group = {g.vrrp_mcast_group6}",
        f" Gratuitous ARP delay = {g.vrrp_garp_master_delay}",
        f" Gratuitous ARP repeat = {g.vrrp_garp_master_repeat}",
        f" Gratuitous ARP refresh timer = {g.vrrp_garp_master_refresh}",
        f" Gratuitous ARP refresh repeat = {g.vrrp_garp_master_refresh_repeat}",
        f" Gratuitous ARP lower priority delay = {lower_delay}",
        f" Gratuitous ARP lower priority repeat = {lower_repeat}",
        f" Num adverts before down = {g.vrrp_down_timer_adverts}",
        f" Gratuitous ARP for each secondary {extra_if} = {extra_interval}s",
        f" Send advert after receive lower priority advert = {_bool(not lower_no_advert)}",
        f" Send advert after receive higher priority advert = "
        f"{_bool(g.vrrp_higher_prio_send_advert)}",
        f" Gratuitous ARP interval = {g.vrrp_garp_interval:f}",
        f" Gratuitous NA interval = {g.vrrp_gna_interval:f}",
        f" VRRP default protocol version = {g.vrrp_version}",
    ]
    if (nft := raw.get("nftables")) is not None:
        out.append(f" nftables table name = {(nft.args or ('keepalived',))[0]}")
        out.append(f" nftables base chain priority = {raw.number('nftables_priority', -1)}")
        force = "" if raw.flag("nftables_ifindex") else "don't "
        out.append(f" nftables {force}force use ifindex for link local IPv6")
    out.append(f" nftables with{'' if raw.flag('nftables_counters') else 'out'} counters")
    out.append(f" libnftnl version {LIBNFTNL_VERSION}")
    out += [
        f" VRRP check unicast_src = {_bool(g.vrrp_check_unicast_src)}",
        f" VRRP skip check advert addresses = {_bool(g.vrrp_skip_check_adv_addr)}",
        f" VRRP strict mode = {_bool(g.vrrp_strict)}",
    ]
    if g.max_auto_priority == -1:
        out.append(" Max auto priority = Disabled")
    else:
        out.append(f" Max auto priority = {g.max_auto_priority or 0}")
    delay = raw.number("min_auto_priority_delay", DEFAULT_MIN_AUTO_PRIORITY_DELAY)
    out.append(f" Min auto priority delay = {delay} usecs")
    return out


def _processes(g: GlobalDefs, raw: _Raw) -> list[str]:
    out: list[str] = []
    typed = {
        "vrrp": (
            g.vrrp_priority,
            g.vrrp_no_swap,
            g.vrrp_rt_priority,
            g.vrrp_cpu_affinity,
            g.vrrp_rlimit_rttime,
        ),
        "checker": (
            g.checker_priority,
            g.checker_no_swap,
            g.checker_rt_priority,
            g.checker_cpu_affinity,
            g.checker_rlimit_rttime,
        ),
    }
    for prefix, label in (("vrrp", "VRRP"), ("checker", "Checker"), ("bfd", "BFD")):
        if prefix in typed:
            nice, no_swap, realtime, cpus, limit = typed[prefix]
            cpu_words = tuple(map(str, cpus))
        else:  # no BFD here: its keywords are kept verbatim
            nice, no_swap = raw.number(prefix + "_priority", 0), raw.flag(prefix + "_no_swap")
            realtime = raw.number(prefix + "_rt_priority", 0)
            opt = raw.get(prefix + "_cpu_affinity")
            cpu_words = tuple(opt.args) if opt is not None else ()
            limit = raw.number(prefix + "_rlimit_rtime", RT_RLIMIT_DEFAULT)
        out += [
            f" {label} process priority = {nice or 0}",
            f" {label} don't swap = {_bool(no_swap)}",
            f" {label} realtime priority = {realtime or 0}",
        ]
        if cpu_words:
            out.append(f" {label} CPU Affinity = {' '.join(cpu_words)}")
        out.append(f" {label} realtime limit = {limit or RT_RLIMIT_DEFAULT}")
    return out


def _snmp_dbus(raw: _Raw) -> list[str]:
    def enabled(keyword: str) -> str:
        return "enabled" if raw.flag(keyword) else "disabled"

    out = [
        f" SNMP vrrp {enabled('enable_snmp_vrrp')}",
        f" SNMP checker {enabled('enable_snmp_checker')}",
        f" SNMP RFCv2 {enabled('enable_snmp_rfcv2')}",
        f" SNMP RFCv3 {enabled('enable_snmp_rfcv3')}",
        f" SNMP traps {enabled('enable_traps')}",
        f" SNMP socket = {raw.text('snmp_socket', DEFAULT_SNMP_SOCKET)}",
        f" DBus {enabled('enable_dbus')}",
        f" DBus service name = {raw.text('dbus_service_name', '')}",
    ]
    return out


def _rx_bufs(raw: _Raw) -> list[str]:
    out: list[str] = []
    policy = raw.get("vrrp_rx_bufs_policy")
    if policy is not None and policy.args:
        value = policy.args[0]
        if value.upper() in ("MTU", "ADVERT"):
            out.append(f" rx_bufs_policy = {value.upper()}")
        elif value.isdigit():
            out.append(f" rx_bufs_size = {value}")
    multiples = raw.number("vrrp_rx_bufs_multiplier", DEFAULT_RX_BUFS_MULTIPLES)
    out.append(f" rx_bufs_multiples = {multiples}")
    return out


def _flush_on_stop(g: GlobalDefs) -> str:
    if not g.lvs_flush_on_stop:
        return "disabled"
    return "VS" if g.lvs_flush_on_stop_vs else "full"


def cmd_str(words: list[str]) -> str:
    """keepalived's ``cmd_str``: each word in single quotes (a leading redirection is not)."""
    return " ".join(w if i == 0 and w[:1] in ("<", ">") else f"'{w}'" for i, w in enumerate(words))


def _tristate(value: bool | None) -> str:
    return "unset" if value is None else ("on" if value else "off")


def _bool(value: bool) -> str:
    return "true" if value else "false"


class _Raw:
    """The keywords ``global_defs`` keeps verbatim, by name (the last one wins, as in
    keepalived's parser)."""

    def __init__(self, options: tuple[RawOption, ...]) -> None:
        self._by_name = {opt.keyword: opt for opt in options}

    def get(self, keyword: str) -> RawOption | None:
        return self._by_name.get(keyword)

    def flag(self, keyword: str) -> bool:
        opt = self._by_name.get(keyword)
        if opt is None:
            return False
        return not opt.args or opt.args[0].lower() not in ("false", "off", "no", "0")

    def text(self, keyword: str, default: str) -> str:
        opt = self._by_name.get(keyword)
        return opt.args[0] if opt is not None and opt.args else default

    def number(self, keyword: str, default: int) -> int:
        opt = self._by_name.get(keyword)
        if opt is None or not opt.args:
            return default
        try:
            return int(opt.args[0])
        except ValueError:
            return default
