"""``keepalived_check.data``: what keepalived's checker process writes on SIGUSR1 (2.2.7).

keepalived's layout (its ``dump_data_check``: global definitions, then the LVS topology -
virtual server groups, each virtual server with its real servers - then one block per health
checker) with checkd's live state in it: each real server's alive flag, effective weight and
failed checkers, each checker's up / has-run / retry counters, each pool's quorum. The text is
built here, purely, from what the daemon holds (``PoolDump``, ``DumpContext``); the daemon
writes it through ``bus.dumpfiles`` beside vrrpd's ``keepalived.data``.

Where keepalived prints something checkd does not have, the line keeps keepalived's meaning
with checkd's nearest fact, so tools that parse the file keep working:

* ``alive`` of a virtual server is always 0: keepalived 2.2.7 never sets it;
* ``RS set`` is whether the real server is in the kernel's pool (inhibited ones are, weight 0);
* ``reloaded`` and ``previous effective_weight`` are those of the last reload that kept the
  virtual / real server, as keepalived's;
* a MISC_CHECK's ``Last ran`` is when its last run *finished* (keepalived: started);
* ``Enabled`` is false while ``ha_suspend`` holds the virtual server's checkers;
* virtual server group ``Alive`` counters count the virtual servers using the entry.

``Last errno`` and HTTP's ``Failed URL`` are left out: checkd keeps a reason instead, shown by
``pykeepalivedctl status``, the stable interface.

A real server's external checker (``health.rs:*`` verdicts, which keepalived does not have)
gets a block after keepalived's checkers, in their shape: ``Keepalive method = EXTERNAL``,
the topic it listens on and its last verdict's reason.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from checkd.checkers import CheckerConfigError, ConnectOptions, parse_hex, parse_status_codes
from checkd.checkers.dns import DEFAULT_TYPE
from checkd.checkers.factory import DEFAULT_PORTS
from checkd.checkers.http import describe_codes
from checkd.checkers.smtp import DEFAULT_HELO
from checkd.checkplan import CheckerPlan, RealServerPlan, VirtualServerPlan
from checkd.dump_globals import global_section
from checkd.pool_messages import external_id
from checkd.pool_state import Member, PoolState, pool_weight, real_weight
from checkd.pool_topics import LastResult, rs_key
from core.model import Checker, GlobalDefs, RawOption, Script, TrackFile, Url

FILE_NAME = "keepalived_check.data"

# keepalived prints the IPVS version it was built against; every Linux since 2.6.x says 1.2.1.
LVS_VERSION = "1.2.1"
DEFAULT_SCHED = "wlc"  # keepalived's IPVS_DEF_SCHED when a virtual server names none
DEFAULT_CONNECT_TIMEOUT = 5.0
HTTP_PORTS = {"HTTP_GET": 80, "SSL_GET": 443}
# Checkers with connection options (keepalived's ``co``): they get a "Connection" block.
_CONNECTING = frozenset(
    ("TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK")
)
# keepalived's per-kind default delay_before_retry as it prints it (DNS: 0 means delay_loop).
_DEFAULT_DELAY_BEFORE_RETRY = {"HTTP_GET": 3.0, "SSL_GET": 3.0, "DNS_CHECK": 0.0}
_USEC = 1_000_000

T = TypeVar("T")

#: ``(user, group)`` as configured (None: not set) -> the uid and gid a script runs as.
Ids = Callable[[str | None, str | None], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Kept:
    """What the last reload kept: virtual server ids, and the effective weight each kept real
    server had before it (keepalived's ``reloaded`` and ``previous effective_weight``)."""

    virtual_servers: frozenset[str] = frozenset()
    weights: Mapping[str, int] = field(default_factory=dict)


def kept_by_reload(before: Mapping[str, PoolState], after: Mapping[str, PoolState]) -> Kept:
    """Compare the pools before and after applying a configuration (ids are the services)."""
    vss = frozenset(vs_id for vs_id in after if vs_id in before)
    weights: dict[str, int] = {}
    for vs_id in vss:
        now = {m.rs.id for m in after[vs_id].members}
        weights.update(
            (m.rs.id, m.effective_weight) for m in before[vs_id].members if m.rs.id in now
        )
    return Kept(vss, weights)


@dataclass(frozen=True, slots=True)
class PoolDump:
    """One virtual server as the dump shows it: its pool and what the daemon knows beside."""

    state: PoolState
    suspended: bool = False  # ha_suspend holds its checkers
    kept: Kept = Kept()

    @property
    def reloaded(self) -> bool:
        return self.state.vs.id in self.kept.virtual_servers

    @property
    def previous(self) -> Mapping[str, int]:
        return self.kept.weights


@dataclass(frozen=True, slots=True)
class DumpContext:
    ids: Ids
    router_id: str | None = None
    last: Mapping[str, LastResult] = field(default_factory=dict)
    track_files: Mapping[str, TrackFile] = field(default_factory=dict)
    script_user: tuple[str, str | None] | None = None
    # with them the dump opens with every global definition (checkd.dump_globals)
    global_defs: GlobalDefs | None = None
    hostname: str = ""


def data_text(pools: Sequence[PoolDump], ctx: DumpContext) -> str:
    out: list[str] = []
    if ctx.router_id is not None and ctx.global_defs is not None:
        out += global_section(
            ctx.global_defs,
            router_id=ctx.router_id,
            hostname=ctx.hostname,
            ids=ctx.ids,
            script_user=ctx.script_user,
        )
    elif ctx.router_id is not None:
        out += ["------< Global definitions >------", f" Router ID = {ctx.router_id}"]
    if pools:
        out += ["------< LVS Topology >------", f" System is compiled with LVS v{LVS_VERSION}"]
        out += _groups(pools)
        for pool in pools:
            out += _virtual_server(pool, ctx)
    regexes = Counter(
        url.regex for _, _, c in _checkers(pools) for url in c.checker.urls if url.regex
    )
    checker_lines = [
        line for p, m, c in _checkers(pools) for line in _checker(p, m, c, ctx, regexes)
    ]
    checker_lines += [line for p in pools for m in p.state.members for line in _external(p, m, ctx)]
    if checker_lines:
        out += ["------< Health checkers >------", *checker_lines]
    return "\n".join(out) + "\n"


def _checkers(pools: Sequence[PoolDump]) -> Iterator[tuple[PoolDump, Member, CheckerPlan]]:
    """Every checker in keepalived's queue order: the configuration's."""
    for pool in pools:
        for member in pool.state.members:
            for c in member.rs.checkers:
                yield pool, member, c


# --- virtual server groups -------------------------------------------------------------------


def _groups(pools: Sequence[PoolDump]) -> list[str]:
    users: dict[str, list[PoolDump]] = {}
    for pool in pools:
        group = pool.state.vs.source.group
        if group is not None:
            users.setdefault(group, []).append(pool)
    out: list[str] = []
    for name, using in users.items():
        members = using[0].state.vs.members
        families = {_family(m.first) for m in members if m.first is not None}
        out += [
            " ------< Virtual server group >------",
            f" Virtual Server Group = {name}, IPv4 = {_yes(4 in families)},"
            f" IPv6 = {_yes(6 in families)}",
        ]
        protocols = Counter(p.state.vs.protocol for p in using)
        reloaded = "True" if using[0].reloaded else "False"
        for m in members:
            if m.fwmark is not None:
                continue
            if m.first != m.last:
                out.append(f"   VIP Range = {m.first}-{m.last}, VPORT = {m.port or 0}")
            else:
                out.append(f"   VIP = {m.first}, VPORT = {m.port or 0}")
            counts = f"{protocols['tcp']} tcp, {protocols['udp']} udp, {protocols['sctp']} sctp"
            out += [f"     Alive: {counts}", f"     reloaded = {reloaded}"]
        for m in members:
            if m.fwmark is None:
                continue
            suffix = {"inet": " IPv4", "inet6": " IPv6"}.get(m.family or "", "")
            by_family = Counter(_vs_family(p.state.vs) for p in using)
            out += [
                f"   FWMARK = {m.fwmark}{suffix}",
                f"     Alive: {by_family['inet']} IPv4, {by_family['inet6']} IPv6",
                f"     reloaded = {reloaded}",
            ]
    return out


# --- virtual servers -------------------------------------------------------------------------


def _virtual_server(pool: PoolDump, ctx: DumpContext) -> list[str]:
    vs = pool.state.vs
    src = vs.source
    out = [" ------< Virtual server >------"]
    if src.group is not None:
        out.append(f" VS GROUP = {vs.id}")
    elif src.fwmark is not None:
        out.append(f" VS FWMARK = {src.fwmark}")
    else:
        out.append(f" VS VIP = {src.ip}, VPORT = {src.port or 0}")
    if src.virtualhost:
        out.append(f"   VirtualHost = {src.virtualhost}")
    family = _vs_family(vs)
    out += [
        f"   Address family = {family}",
        f"   connection timeout = {_decimal(_first(src.connect_timeout, DEFAULT_CONNECT_TIMEOUT))}",
        f"   delay_loop = {_decimal(src.delay_loop)}",
        *_scheduler(src.lvs_sched or DEFAULT_SCHED, src.other, vs.protocol),
    ]
    if src.persistence_timeout:
        out.append(f"   persistence timeout = {src.persistence_timeout}")
    if src.persistence_granularity is not None:
        out.append(f"   persistence granularity = {src.persistence_granularity}")
    out += [
        f"   protocol = {vs.protocol.upper() if vs.protocol != 'none' else 'none'}",
        f"   alpha is {_on(vs.alpha)}",
        f"   omega is {_on(vs.omega)}",
        *_retry_lines(src.retry, src.delay_before_retry, src.warmup),
        f"   Inhibit on failure is {_on(src.inhibit_on_failure)}",
        f"   quorum = {vs.quorum}, hysteresis = {vs.hysteresis}",
    ]
    for label, script in (("up", vs.quorum_up), ("down", vs.quorum_down)):
        if script is not None:
            out.append(f"   Quorum {label} notify script = {_script(script, ctx)}")
    if vs.ha_suspend:
        out.append("   Using HA suspend")
    out += [
        f"   Using smtp notification = {_yes(vs.smtp_alert)}",
        f"   default forwarding method = {_method(src.lvs_method or 'NAT')}",
    ]
    ss = vs.sorry_server
    if ss is not None:
        twin = any((m.rs.ip, m.rs.port) == (ss.ip, ss.port) for m in pool.state.members)
        out += [
            f"   sorry server {'(duplicates rs) ' if twin else ''}= {ss.text}",
            f"     forwarding method = {_method(src.lvs_method or 'NAT')}",
            f"     Inhibit on failure is {_on(ss.inhibit)}",
        ]
    out += [
        "   alive = 0",  # keepalived 2.2.7 never sets a virtual server's alive
        f"   quorum_state_up = {int(pool.state.quorum_up)}",
        f"   reloaded = {int(pool.reloaded)}",
    ]
    for member in pool.state.members:
        out += _real_server(pool, member, ctx)
    return out


def _scheduler(sched: str, other: tuple[RawOption, ...], protocol: str) -> list[str]:
    flags = {o.keyword for o in other}
    # keepalived keeps the scheduler flags as three bits whatever they are called
    bits = (
        bool(flags & {"flag-1", "sh-fallback", "mh-fallback"}),
        bool(flags & {"flag-2", "sh-port", "mh-port"}),
        "flag-3" in flags,
    )
    out = [f"   lvs_sched = {sched}", f"   Hashed = {_abled('hashed' in flags)}"]
    if sched in ("sh", "mh"):
        out += [
            f"   {sched}-port = {_abled(bits[1])}",
            f"   {sched}-fallback = {_abled(bits[0])}",
        ]
    else:
        out += [f"   flag-{i} = {_abled(bit)}" for i, bit in enumerate(bits, 1)]
    ops = "ops" in flags
    inactive = " (inactive due to not UDP)" if ops and protocol != "udp" else ""
    out.append(f"   One packet scheduling = {_abled(ops)}{inactive}")
    return out


def _vs_family(vs: VirtualServerPlan) -> str:
    """keepalived's address family of a virtual server: its address's, else ``ip_family``,
    else the sorry server's or the first real server's."""
    src = vs.source
    if src.ip is not None:
        return _inet(_family(src.ip))
    if src.ip_family is not None:
        return src.ip_family
    for host in ([vs.sorry_server.ip] if vs.sorry_server else []) + [
        rs.ip for rs in vs.real_servers
    ]:
        return _inet(_family(host))
    return "inet"


# --- real servers ----------------------------------------------------------------------------


def _real_server(pool: PoolDump, m: Member, ctx: DumpContext) -> list[str]:
    rs = m.rs
    src, vs_src = rs.source, pool.state.vs.source
    weight = m.effective_weight
    timeout = _first(src.connect_timeout, _first(vs_src.connect_timeout, DEFAULT_CONNECT_TIMEOUT))
    out = [
        "   ------< Real server >------",
        f"   RIP = {rs.ip}, RPORT = {rs.port}, WEIGHT = {real_weight(weight)}"
        f" EFF WEIGHT = {weight}",
        f"   forwarding method = {_method(rs.lvs_method)}",
        f"   Alpha is {_on(rs.alpha)}",
        f"   connection timeout = {_decimal(timeout)}",
        f"   connection limit range = {src.lthreshold or 0} -> {src.uthreshold or 0}",
        f"   Delay loop = {_decimal(_first(src.delay_loop, vs_src.delay_loop))}",
        *_retry_lines(
            _opt(src.retry, vs_src.retry),
            _opt(src.delay_before_retry, vs_src.delay_before_retry),
            _opt(src.warmup, vs_src.warmup),
        ),
        f"   Inhibit on failure is {_on(rs.inhibit)}",
    ]
    for label, script in (("up", rs.notify_up), ("down", rs.notify_down)):
        if script is not None:
            out.append(f"     RS {label} notify script = {_script(script, ctx)}")
    if src.virtualhost:
        out.append(f"    VirtualHost = '{src.virtualhost}'")
    in_pool = pool_weight(m, pool.state.sorry_active) is not None
    out += [
        f"   Using smtp notification = {_yes(rs.smtp_alert)}",
        f"   initial weight = {rs.weight}",
        f"   effective weight = {weight}",
        f"   previous effective_weight = {pool.previous.get(rs.id, 0)}",
        f"   alive = {int(m.alive)}",
        f"   num failed checkers = {m.failed}",
        f"   RS set = {int(in_pool)}",
        f"   reloaded = {int(rs.id in pool.previous)}",
    ]
    files = [c.checker for c in rs.checkers if c.kind == "FILE_CHECK" and c.checker.track_file]
    if files:
        out.append("   Tracked Files")
        out += [f"     {_file_weight(c, ctx)}" for c in files]
    return out


def _file_weight(c: Checker, ctx: DumpContext) -> str:
    tracked = ctx.track_files.get(c.track_file or "")
    if c.weight is not None:
        weight, reverse = c.weight, c.weight_reverse
    elif tracked is not None:
        weight, reverse = tracked.weight, tracked.weight_reverse
    else:
        weight, reverse = 1, False
    return f"{c.track_file}, weight {weight}{' reverse' if reverse else ''}"


# --- checkers --------------------------------------------------------------------------------


def _checker(
    pool: PoolDump, m: Member, c: CheckerPlan, ctx: DumpContext, regexes: Counter[str]
) -> list[str]:
    s = c.settings
    status = m.checkers.get(c.id)
    up = status.retry.is_up if status is not None else not s.alpha
    has_run = status.retry.has_run if status is not None else False
    out = [
        f" {pool.state.vs.id} -> {m.rs.text}",
        f"   Enabled = {_yes(not pool.suspended)}",
        f"   Up = {_yes(up)}",
        f"   Has run = {_yes(has_run)}",
        f"   Current weight = {status.adds(m.rs.weight) if status is not None else 0}",
    ]
    if c.kind != "FILE_CHECK":
        out += [
            f"   Alpha = {_yes(s.alpha)}",
            f"   Delay loop = {_us(s.delay_loop)} us",
            f"   Warmup = {_us(s.warmup)} us",
            f"   Retries = {s.retry}",
        ]
        if s.retry:
            retry_it = status.retry.retry_it if status is not None else s.retry
            out += [
                f"   Delay before retry = {_us(s.delay_before_retry)} us",
                f"   Retries iterations = {retry_it}",
            ]
        default = _DEFAULT_DELAY_BEFORE_RETRY.get(c.kind, 1.0)
        out.append(f"   Default delay before retry = {_us(default)} us")
    out.append(f"   Log all failures = {_yes(c.log_all_failures)}")
    if c.kind in _CONNECTING:
        out += _connection(c, m.rs, pool.state.vs)
    return out + _kind_lines(c, pool, m, ctx, regexes)


def _external(pool: PoolDump, m: Member, ctx: DumpContext) -> list[str]:
    cid = external_id(m.rs.id)
    status = m.checkers.get(cid)
    if status is None:
        return []
    vs_id = pool.state.vs.id
    last = ctx.last.get(cid)
    return [
        f" {vs_id} -> {m.rs.text}",
        "   Enabled = yes",  # verdicts from outside are taken under ha_suspend too
        f"   Up = {_yes(status.retry.is_up)}",
        f"   Has run = {_yes(status.retry.has_run)}",
        f"   Current weight = {status.adds(m.rs.weight)}",
        "   Keepalive method = EXTERNAL",
        f"   Topic = health.rs:{rs_key(vs_id, m.rs.text)}",
        f"   Last verdict = {last.reason if last is not None else ''}",
    ]


def _connection(c: CheckerPlan, rs: RealServerPlan, vs: VirtualServerPlan) -> list[str]:
    default_port = HTTP_PORTS.get(c.kind) or DEFAULT_PORTS.get(c.kind, 0)
    # the plan's port is the one checkd connects to (a DR real server takes the VS's)
    co = ConnectOptions.from_model(
        c.checker, replace(rs.source, port=rs.port), vs.source, default_port
    )
    out = ["   Connection", f"     Dest = [{co.connect_ip}]:{co.connect_port}"]
    if co.bindto:
        out.append(f"     Bind to = [{co.bindto}]:{co.bind_port or 0}")
    if co.bind_if:
        out.append(f"     Bind i/f = {co.bind_if}")
    if co.fwmark:
        out.append(f"     Mark = {co.fwmark}")
    out.append(f"     Timeout = {c.settings.connect_timeout:f}")
    return out


def _kind_lines(
    c: CheckerPlan, pool: PoolDump, m: Member, ctx: DumpContext, regexes: Counter[str]
) -> list[str]:
    k = c.checker
    if c.kind in ("HTTP_GET", "SSL_GET"):
        status = m.checkers.get(c.id)
        return _http(c, regexes, status.retry.failed_url if status is not None else None)
    if c.kind == "SMTP_CHECK":
        return ["   Keepalive method = SMTP_CHECK", f"   helo = {k.helo_name or DEFAULT_HELO}"]
    if c.kind == "DNS_CHECK":
        return [
            "   Keepalive method = DNS_CHECK",
            f"   Type = {(k.type or DEFAULT_TYPE).upper()}",
            f"   Name = {k.name or '.'}",
        ]
    if c.kind == "UDP_CHECK":
        return _udp(k)
    if c.kind == "MISC_CHECK":
        return _misc(c, ctx)
    if c.kind == "FILE_CHECK":
        return [
            "   Keepalive method = FILE_CHECK",
            f"     Tracked file = {k.track_file}",
            f"     Reloaded = {'Yes' if m.rs.id in pool.previous else 'No'}",
        ]
    return [f"   Keepalive method = {c.kind}"]


def _http(c: CheckerPlan, regexes: Counter[str], failed_url: int | None) -> list[str]:
    k = c.checker
    out = [
        f"   Keepalive method = {c.kind}, http protocol {k.http_protocol or '1.0'}",
    ]
    if k.virtualhost:
        out.append(f"   Virtualhost = {k.virtualhost}")
    # sni_name turns SNI on (keepalived 2.4's sni_name; 2.2.7 has no such keyword)
    out.append(f"   Enable SNI {'' if k.enable_sni or k.sni_name else 'un'}set")
    if k.sni_name:
        out.append(f"     SNI name = {k.sni_name}")
    out.append(f"   Fast recovery {'' if k.fast_recovery else 'un'}set")
    for url in k.urls:
        out += _url(url, regexes)
    if failed_url is not None and failed_url < len(k.urls):
        out.append(f"   Failed URL = {k.urls[failed_url].path}")
    return out


def _url(url: Url, regexes: Counter[str]) -> list[str]:
    out = [f"   Checked url = {url.path}"]
    if url.digest:
        out.append(f"     digest = {url.digest.lower()}")
    out.append("     HTTP Status Code(s)")
    try:
        codes = parse_status_codes(url.status_code)
    except CheckerConfigError:
        codes = frozenset()  # the checker is disabled; keepalived would have dropped the codes
    if codes:
        out += [f"       {span}" for span in describe_codes(codes).split(",")]
    if url.virtualhost:
        out.append(f"     Virtual host = {url.virtualhost}")
    if url.regex:
        out.append(f'     Regex = "{url.regex}"')
        if url.regex_no_match:
            out.append("     Regex no match")
        offsets = {o.keyword: o.args[0] for o in url.other if o.args}
        low = offsets.get("regex_min_offset", "0")
        high = offsets.get("regex_max_offset")
        if high is not None:
            out.append(f"     Regex min offset = {low}, max_offset = {high}")
        elif low != "0":
            out.append(f"     Regex min offset = {low}")
        out += ["     Regex options:", f"     Regex ref count = {regexes[url.regex]}"]
    return out


def _udp(k: Checker) -> list[str]:
    out = ["   Keepalive method = UDP_CHECK"]
    payload = _hex(k.payload)
    if payload is not None:
        out.append(f"   Payload len = {len(payload[0])}")
    else:
        out.append("   Payload specified = no")
    require = k.require_reply is not None
    out.append(f"   Require reply = {_yes(require)}")
    if require:
        reply = _hex(k.require_reply)
        out += [
            f"     Min reply length = {k.min_reply_length or 0}",
            f"     Max reply length = {_first(k.max_reply_length, 255)}",
            f"     Reply data len = {len(reply[0]) if reply else 0}",
        ]
        if reply is not None:
            out.append(f"     Reply data mask = {_yes(any(reply[1]))}")
    return out


def _hex(text: str | None) -> tuple[bytes, bytes] | None:
    if not text:
        return None
    try:
        return parse_hex(text, True)
    except CheckerConfigError:
        return None


def _misc(c: CheckerPlan, ctx: DumpContext) -> list[str]:
    k = c.checker
    last = ctx.last.get(c.id)
    at = last.at if last is not None else 0.0
    sec, usec = int(at), round((at - int(at)) * _USEC) % _USEC
    rc = last.rc if last is not None and last.rc is not None and last.rc >= 0 else 0
    script = k.misc_path or Script("")
    uid, gid = _ids(script, ctx, (k.user.user, k.user.group) if k.user is not None else None)
    return [
        "   Keepalive method = MISC_CHECK",
        f"   script = {_cmd(script)}",
        f"   timeout = {int(c.settings.misc_timeout or c.settings.delay_loop)}",
        f"   dynamic = {'YES' if k.misc_dynamic else 'NO'}",
        f"   uid:gid = {uid}:{gid}",
        f"   Last ran = {sec}.{usec:06d} ({time.ctime(sec)}.{usec:06d})",
        f"   Last status = {rc}",
    ]


# --- small formats ---------------------------------------------------------------------------


def _script(script: Script, ctx: DumpContext) -> str:
    uid, gid = _ids(script, ctx)
    return f"{_cmd(script)}, uid:gid {uid}:{gid}"


def _ids(
    script: Script, ctx: DumpContext, own: tuple[str, str | None] | None = None
) -> tuple[int, int]:
    """The uid/gid the script runs as: the checker's ``user``, the script's, ``script_user``."""
    if own is None and script.user is not None:
        own = (script.user, script.group)
    chosen = own if own is not None else ctx.script_user
    return ctx.ids(*(chosen if chosen is not None else (None, None)))


def _cmd(script: Script) -> str:
    """keepalived's ``cmd_str``: each word in single quotes (a leading redirection is not)."""
    words = script.argv
    return " ".join(w if i == 0 and w[:1] in ("<", ">") else f"'{w}'" for i, w in enumerate(words))


def _retry_lines(retry: int | None, delay: float | None, warmup: float | None) -> list[str]:
    out = []
    if retry is not None:
        out.append(f"   Retry count = {retry}")
    if delay is not None:
        out.append(f"   Retry delay = {_decimal(delay)}")
    if warmup is not None:
        out.append(f"   Warmup = {_decimal(warmup)}")
    return out


def _method(method: str) -> str:
    # keepalived built with tunnel types names IPIP, the only type checkd's model can hold
    return "TUN, type = IPIP" if method == "TUN" else method


def _family(address: str) -> int:
    return 6 if ":" in address else 4


def _inet(version: int) -> str:
    return "inet6" if version == 6 else "inet"


def _us(seconds: float) -> int:
    return round(seconds * _USEC)


def _decimal(seconds: float) -> str:
    """keepalived's ``format_decimal`` of a timer: seconds with six decimals."""
    us = _us(seconds)
    return f"{us // _USEC}.{us % _USEC:06d}"


def _first(value: T | None, default: T) -> T:
    return default if value is None else value


def _opt(value: T | None, inherited: T | None) -> T | None:
    return inherited if value is None else value


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _on(flag: bool) -> str:
    return "ON" if flag else "OFF"


def _abled(flag: bool) -> str:
    return "enabled" if flag else "disabled"
