"""What checkd checks for the LVS section: virtual servers, real servers and their checkers.

A pure function of the typed configuration (``core.model.Config``): every option a checker, a
real server or a virtual server uses is resolved once here with keepalived's inheritance, so the
probes, the pool logic and the daemon read finished values and never walk the chain themselves.

Inheritance (docs/checkers.md, "Pools, quorum and sorry servers"):

* checker timing (``connect_timeout``, ``retry``, ``delay_before_retry``, ``delay_loop``,
  ``warmup``, ``alpha``, ``virtualhost``) is checker → real_server → virtual_server → built-in
  default, computed by ``core.effective.checker_settings`` so vrrpd-side tools and checkd agree;
* ``inhibit_on_failure`` is real_server → virtual_server;
* ``smtp_alert`` does *not* pass from the virtual server to its real servers: a real server uses
  its own, else global ``smtp_alert_checker``, else global ``smtp_alert``, else **on**; a virtual
  server the same chain but ending **off** (keepalived keeps this asymmetry for compatibility);
* ``log_all_failures`` is the checker's own or global ``checker_log_all_failures``;
* a real server's ``weight`` is its own, else the virtual server's ``weight``, else 1;
* ``quorum`` is clamped to the real servers' total weight and ``hysteresis`` to ``quorum - 1``;
* ``ha_suspend`` is cleared on a virtual server with fwmarks, as keepalived clears it.

Identifiers are keepalived's own text for a service, so they match its logs and notify FIFO
lines: a virtual server is ``[192.0.2.1]:tcp:80``, ``FWM 7`` or ``[group]:N`` (N = the order of
the virtual servers using that group); a real server is ``<vs id> [198.51.100.1]:tcp:80``; a
checker is ``<rs id> TCP_CHECK#0`` (the ordinal among checkers of that kind on the real server).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from checkd.errors import PlanError
from core import vsgroups
from core.effective import CheckerSettings, checker_settings
from core.model import Checker, Config, GlobalDefs, RealServer, Script, VirtualServer, VsgEntry
from core.vsgroups import GroupEntryError, VsgMember


@dataclass(frozen=True, slots=True)
class CheckerPlan:
    """One checker with every option resolved; ``checker`` keeps the probe-specific fields."""

    id: str
    rs_id: str
    kind: str
    settings: CheckerSettings
    log_all_failures: bool
    checker: Checker

    @property
    def identity(self) -> Checker:
        """The checker without its timing options: equal identities migrate state on reload."""
        return replace(
            self.checker,
            retry=None,
            delay_before_retry=None,
            warmup=None,
            delay_loop=None,
            alpha=None,
            log_all_failures=None,
            # HTTP's pace through its urls: keepalived's compare_http_check ignores it too
            fast_recovery=None,
        )


@dataclass(frozen=True, slots=True)
class RealServerPlan:
    id: str
    vs_id: str
    ip: str
    port: int
    text: str  # keepalived's FMT_RS: [ip]:proto:port
    weight: int
    inhibit: bool
    alpha: bool
    smtp_alert: bool
    lvs_method: str
    # What the file said, for the SIGUSR1 dump only (checkd.dumps): never compared, so a
    # reload that changes nothing the pool uses still counts as unchanged.
    source: RealServer = field(compare=False, repr=False)
    notify_up: Script | None = None
    notify_down: Script | None = None
    checkers: tuple[CheckerPlan, ...] = ()


@dataclass(frozen=True, slots=True)
class SorryServerPlan:
    ip: str
    port: int
    text: str
    inhibit: bool
    weight: int = 1


@dataclass(frozen=True, slots=True)
class VirtualServerPlan:
    id: str  # keepalived's FMT_VS
    name: str
    protocol: str  # tcp, udp, sctp or none (fwmark)
    quorum: int
    hysteresis: int
    alpha: bool
    omega: bool
    smtp_alert: bool
    ha_suspend: bool
    source: VirtualServer = field(compare=False, repr=False)  # for the dump, as above
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    sorry_server: SorryServerPlan | None = None
    real_servers: tuple[RealServerPlan, ...] = ()
    members: tuple[VsgMember, ...] = ()  # the group's lines, or the one address/fwmark
    warnings: tuple[str, ...] = ()

    def real_server(self, rs_id: str) -> RealServerPlan:
        for rs in self.real_servers:
            if rs.id == rs_id:
                return rs
        raise KeyError(rs_id)


@dataclass(frozen=True, slots=True)
class CheckPlan:
    router_id: str
    no_checker_emails: bool = False
    virtual_servers: tuple[VirtualServerPlan, ...] = ()
    warnings: tuple[str, ...] = field(default=())


def format_service(ip: str, protocol: str, port: int) -> str:
    """keepalived's ``[address]:proto:port`` text for a service."""
    return f"[{ip}]:{protocol}:{port}"


def build_plan(config: Config, *, hostname: str) -> CheckPlan:
    """The check plan for ``config``; ``hostname`` stands in for an unset ``router_id``."""
    g = config.global_defs
    groups = {vsg.name: vsg.entries for vsg in config.virtual_server_groups}
    members_no: dict[str, int] = {}
    plans: list[VirtualServerPlan] = []
    warnings: list[str] = []
    for vs in config.virtual_servers:
        member_no = None
        if vs.group is not None:
            if vs.group not in groups:
                warnings.append(
                    f"virtual server group {vs.group} specified but not configured"
                    f" - ignoring virtual server {vs.name}"
                )
                continue
            member_no = members_no.get(vs.group, 0)
            members_no[vs.group] = member_no + 1
        plans.append(plan_virtual_server(vs, g, groups.get(vs.group or "", ()), member_no))
    return CheckPlan(
        router_id=g.router_id or hostname,
        no_checker_emails=_raw_flag(g, "no_checker_emails"),
        virtual_servers=tuple(plans),
        warnings=tuple(warnings),
    )


def plan_virtual_server(
    vs: VirtualServer,
    g: GlobalDefs,
    group: tuple[VsgEntry, ...] = (),
    member_no: int | None = None,
) -> VirtualServerPlan:
    members = expand_group(group) if vs.group is not None else _own_member(vs)
    protocol = _protocol(vs, members)
    vs_id = _vs_id(vs, protocol, member_no)
    method = (vs.lvs_method or "NAT").upper()
    rss = tuple(_plan_rs(vs, rs, g, vs_id, protocol, method) for rs in vs.real_servers)
    warnings: list[str] = []
    total = sum(rs.weight for rs in rss)
    quorum = vs.quorum
    if quorum > total:
        warnings.append(
            f"quorum {quorum} for {vs_id} exceeds total weight of real servers {total},"
            f" reducing quorum to {total}"
        )
        quorum = total
    hysteresis = vs.hysteresis
    if quorum and hysteresis >= quorum:
        warnings.append(
            f"virtual server {vs_id}: hysteresis {hysteresis} >= quorum {quorum};"
            f" setting hysteresis to {quorum - 1}"
        )
        hysteresis = quorum - 1
    elif not quorum:
        hysteresis = 0
    ha_suspend = vs.ha_suspend
    if ha_suspend and any(m.fwmark is not None for m in members):
        # a fwmark has no address this host could hold, so keepalived drops the option
        warnings.append(
            f"Virtual server {vs_id}: cannot use ha_suspend with fwmarks - clearing ha_suspend"
        )
        ha_suspend = False
    return VirtualServerPlan(
        id=vs_id,
        name=vs.name,
        protocol=protocol,
        quorum=quorum,
        hysteresis=hysteresis,
        alpha=vs.alpha,
        omega=vs.omega,
        smtp_alert=_smtp_alert(vs.smtp_alert, g, default=False),
        ha_suspend=ha_suspend,
        source=vs,
        quorum_up=vs.quorum_up,
        quorum_down=vs.quorum_down,
        sorry_server=_sorry(vs, protocol),
        real_servers=rss,
        members=members,
        warnings=tuple(warnings),
    )


def _plan_rs(
    vs: VirtualServer, rs: RealServer, g: GlobalDefs, vs_id: str, protocol: str, vs_method: str
) -> RealServerPlan:
    method = (rs.lvs_method or vs_method).upper()
    port = _rs_port(vs, rs.port, method)
    text = format_service(rs.ip, protocol, port)
    rs_id = f"{vs_id} {text}"
    ordinals: dict[str, int] = {}
    checkers = []
    for c in rs.checkers:
        n = ordinals.get(c.kind, 0)
        ordinals[c.kind] = n + 1
        checkers.append(
            CheckerPlan(
                id=f"{rs_id} {c.kind}#{n}",
                rs_id=rs_id,
                kind=c.kind,
                settings=checker_settings(vs, replace(rs, port=port), c),
                log_all_failures=bool(c.log_all_failures) or g.checker_log_all_failures,
                checker=c,
            )
        )
    return RealServerPlan(
        id=rs_id,
        vs_id=vs_id,
        ip=rs.ip,
        port=port,
        text=text,
        weight=vs.real_server_weight(rs),
        inhibit=rs.inhibit_on_failure
        if rs.inhibit_on_failure is not None
        else vs.inhibit_on_failure,
        alpha=rs.alpha if rs.alpha is not None else vs.alpha,
        smtp_alert=_smtp_alert(rs.smtp_alert, g, default=True),
        lvs_method=method,
        source=rs,
        notify_up=rs.notify_up,
        notify_down=rs.notify_down,
        checkers=tuple(checkers),
    )


def _rs_port(vs: VirtualServer, port: int | None, method: str) -> int:
    # keepalived: a NAT real server without a port takes the VS's; other methods cannot
    # translate the port, so it is forced to the VS's (to 0 for a fwmark service). Group
    # members are left as written (keepalived only warns about mismatches there).
    if vs.group is not None or (method == "NAT" and port):
        return port or 0
    if vs.fwmark is not None:
        return 0
    return vs.port or 0


def _sorry(vs: VirtualServer, protocol: str) -> SorryServerPlan | None:
    if vs.sorry_server is None:
        return None
    port = _rs_port(vs, vs.sorry_server.port, vs.sorry_forwarding())
    return SorryServerPlan(
        ip=vs.sorry_server.host,
        port=port,
        text=format_service(vs.sorry_server.host, protocol, port),
        inhibit=vs.sorry_server_inhibit,
    )


def _protocol(vs: VirtualServer, members: tuple[VsgMember, ...]) -> str:
    addressed = any(m.fwmark is None for m in members)
    if not addressed:
        return "none"
    # keepalived: no protocol on an addressed service means the kernel's default, UDP.
    return (vs.protocol or "udp").lower()


def _vs_id(vs: VirtualServer, protocol: str, member_no: int | None) -> str:
    if vs.group is not None:
        return f"[{vs.group}]:{member_no or 0}"
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    return format_service(vs.ip or "", protocol, vs.port or 0)


def _own_member(vs: VirtualServer) -> tuple[VsgMember, ...]:
    if vs.fwmark is not None:
        return (VsgMember(fwmark=vs.fwmark, family=vs.ip_family),)
    return (VsgMember(first=vs.ip, last=vs.ip, port=vs.port),)


def _smtp_alert(own: bool | None, g: GlobalDefs, *, default: bool) -> bool:
    for value in (own, g.smtp_alert_checker, g.smtp_alert):
        if value is not None:
            return value
    return default


def _raw_flag(g: GlobalDefs, keyword: str) -> bool:
    for opt in g.other:
        if opt.keyword == keyword:
            return not opt.args or opt.args[0].lower() in ("true", "on", "yes")
    return False


def expand_group(entries: tuple[VsgEntry, ...]) -> tuple[VsgMember, ...]:
    """core's expansion of a virtual_server_group (netd programs the same), its refusal as a
    PlanError."""
    try:
        return vsgroups.expand_group(entries)
    except GroupEntryError as exc:
        raise PlanError(str(exc)) from None
