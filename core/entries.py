"""Entry syntax inside value blocks: addresses, routes, rules, peers, track refs, VSG lines."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.lexer import Token
from core.model import Address, Encap, Nexthop, Route, Rule, TrackRef, UnicastPeer, VsgEntry
from core.schema import ArgError, Ctx, parse_int, quote

_ADDR_ARG = {"dev", "brd", "broadcast", "scope", "label", "peer", "preferred_lft", "track_group"}
_ADDR_FLAG = {
    "home": "home",
    "-nodad": "nodad",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
    "no_track": "no_track",
    "use_vmac": "use_vmac",
}
SCOPES = ("site", "link", "host", "nowhere", "global")


def canon_interface(tok: Token) -> str:
    """`ADDR[/PFX]` → canonical "ip/prefix" (host bits kept, as `ip addr` does)."""
    try:
        return str(ipaddress.ip_interface(tok.text))
    except ValueError:
        raise ArgError(f"invalid IP address '{tok.text}'", tok) from None


def _next(words: list[Token], i: int) -> Token:
    if i + 1 >= len(words):
        raise ArgError(f"'{words[i].text}' needs a value", words[i])
    return words[i + 1]


def parse_address(words: list[Token], ctx: Ctx) -> Address:
    addr = canon_interface(words[0])
    v6 = ":" in addr
    vals: dict[str, Any] = {}
    i = 1
    while i < len(words):
        w = words[i].text
        if w in _ADDR_ARG:
            val = _next(words, i).text
            key = {"brd": "broadcast"}.get(w, w)
            if key == "scope":
                if v6:
                    ctx.report(
                        "error",
                        "bad-value",
                        "IPv6 addresses cannot have a scope - ignoring",
                        words[i],
                    )
                    i += 2
                    continue
                if val not in SCOPES and not val.isdigit():
                    ctx.report("error", "bad-value", f"invalid scope '{val}'", words[i + 1])
                    i += 2
                    continue
            if key == "label":
                if v6:
                    ctx.report(
                        "error",
                        "bad-value",
                        "IPv6 addresses cannot have a label - ignoring",
                        words[i],
                    )
                    i += 2
                    continue
                if len(val) >= 16:
                    # keepalived drops the whole address, not just the label.
                    raise ArgError(f"label '{val}' is longer than 15 characters", words[i + 1])
            if key in ("broadcast", "peer") and val not in ("+", "-"):
                try:
                    val = (
                        str(ipaddress.ip_interface(val))
                        if key == "peer"
                        else str(ipaddress.ip_address(val))
                    )
                except ValueError:
                    ctx.report("error", "bad-value", f"invalid {key} address '{val}'", words[i + 1])
                    i += 2
                    continue
            if key == "track_group":
                _track_group_not_implemented(ctx, words[i])
            vals[key] = val
            i += 2
        elif w in _ADDR_FLAG:
            vals[_ADDR_FLAG[w]] = True
            i += 1
        else:
            ctx.report(
                "error",
                "unknown-entry",
                f"Unknown configuration entry '{w}' for ip address - ignoring",
                words[i],
            )
            i += 1
    return Address(addr, **vals)


def render_address(a: Address) -> str:
    parts = [a.address]
    for key, kw in (
        ("dev", "dev"),
        ("broadcast", "brd"),
        ("scope", "scope"),
        ("label", "label"),
        ("peer", "peer"),
        ("preferred_lft", "preferred_lft"),
        ("track_group", "track_group"),
    ):
        v = getattr(a, key)
        if v is not None:
            parts += [kw, quote(v)]
    for kw, key in _ADDR_FLAG.items():
        if getattr(a, key):
            parts.append(kw)
    return " ".join(parts)


# Route and rule protocols by name (iproute2's rt_protos); numbers are accepted too.
RULE_PROTOCOLS = {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": 18}
ROUTE_TYPES = (
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
)
# Route metrics and other one-value options, kept in `Route.options` as validated words.
# name -> (accepts "lock", value check).
_U32 = 0xFFFFFFFF
_ROUTE_METRICS: dict[str, tuple[bool, str]] = {
    "mtu": (True, "u32"),
    "advmss": (True, "u32"),
    "reordering": (True, "u32"),
    "cwnd": (True, "u32"),
    "ssthresh": (True, "u32"),
    "rtt": (True, "time"),
    "rttvar": (True, "time"),
    "rto_min": (True, "time"),
    "window": (False, "u32"),
    "initcwnd": (False, "u32"),
    "initrwnd": (False, "u32"),
    "hoplimit": (False, "u8"),
    "quickack": (False, "bool"),
    "fastopen_no_cookie": (False, "bool"),
    "congctl": (True, "name"),
    "features": (False, "features"),
    "tos": (False, "dsfield"),
    "realms": (False, "realms"),
    "pref": (False, "pref"),
    "expires": (False, "u32"),
}
_ROUTE_ALIASES = {"dsfield": "tos"}
ROUTE_PREFS = ("low", "medium", "high")
# keepalived accepts it but it concerns MPLS routes only; said, not dropped.
_ROUTE_IGNORED = {"ttl-propagate": "'ttl-propagate' applies to MPLS routes only - ignoring"}
_TIME_UNITS = ("ms", "msec", "msecs", "s", "sec", "secs", "us", "usec", "usecs")
MAX_MPLS_LABEL = 0xFFFFF


def _route_dest(tok: Token) -> str:
    if tok.text in ("default", "any", "all"):
        return tok.text
    return canon_interface(tok)


def _check_value(kind: str, tok: Token, what: str) -> str:
    """Validate one option value, returning its canonical text."""
    text = tok.text
    if kind == "u32":
        return str(parse_int(tok, 0, _U32))
    if kind == "u8":
        return str(parse_int(tok, 0, 255))
    if kind == "bool":
        return str(parse_int(tok, 0, 1))
    if kind == "time":
        digits = text.rstrip("".join(sorted({c for u in _TIME_UNITS for c in u})))
        unit = text[len(digits) :]
        if not digits.isdigit() or (unit and unit not in _TIME_UNITS):
            raise ArgError(f"invalid {what} time '{text}'", tok)
        return text
    if kind == "name":
        return text
    if kind == "features":
        if text != "ecn":
            raise ArgError(f"feature {text} not supported", tok)
        return text
    if kind == "dsfield":
        return _tos(tok)
    if kind == "realms":
        return canon_realms(tok)
    if kind == "pref":
        if text in ROUTE_PREFS:
            return text
        return str(parse_int(tok, 0, 255))
    raise AssertionError(kind)


def parse_int_any(tok: Token, lo: int, hi: int, message: str) -> int:
    """An integer in any base Python reads (0x10, 0o7, 12), within [lo, hi]."""
    try:
        v = int(tok.text, 0)
    except ValueError:
        raise ArgError(message, tok) from None
    if not lo <= v <= hi:
        raise ArgError(message, tok)
    return v


def canon_realms(tok: Token) -> str:
    """`[FROM/]TO` realms, numbers 0..65535."""
    parts = tok.text.split("/")
    if len(parts) > 2 or not all(p.isdigit() and int(p) <= 0xFFFF for p in parts):
        raise ArgError(f"Invalid realms {tok.text}", tok)
    return "/".join(str(int(p)) for p in parts)


def _family(addr: str) -> int:
    return 6 if ":" in addr else 4


def parse_encap(words: list[Token], i: int) -> tuple[Encap, int]:
    """`encap TYPE ...` starting at words[i] ("encap"); returns the Encap and the next index."""
    kind_tok = _next(words, i)
    kind = kind_tok.text
    i += 2
    if kind == "mpls":
        return _parse_mpls_encap(words, i, kind_tok)
    if kind == "ila":
        return _parse_ila_encap(words, i, kind_tok)
    if kind not in ("ip", "ip6"):
        raise ArgError(f"Unknown encap type - {kind}", kind_tok)
    return _parse_ip_encap(words, i, kind_tok)


def _parse_mpls_encap(words: list[Token], i: int, kind_tok: Token) -> tuple[Encap, int]:
    if i >= len(words):
        raise ArgError("missing address for MPLS encapsulation", kind_tok)
    tok = words[i]
    try:
        labels = tuple(int(p) for p in tok.text.split("/"))
    except ValueError:
        labels = ()
    if not labels or not all(0 <= n <= MAX_MPLS_LABEL for n in labels):
        raise ArgError(f"invalid mpls address {tok.text} for encapsulation", tok)
    return Encap("mpls", labels=labels), i + 1


def _parse_ila_encap(words: list[Token], i: int, kind_tok: Token) -> tuple[Encap, int]:
    if i >= len(words):
        raise ArgError("missing locator for ILA encapsulation", kind_tok)
    tok = words[i]
    groups = tok.text.split(":")
    if len(groups) != 4 or not all(
        1 <= len(g) <= 4 and all(c in "0123456789abcdefABCDEF" for c in g) for g in groups
    ):
        raise ArgError(f"invalid locator {tok.text} for ila encapsulation", tok)
    return Encap("ila", locator=":".join(g.lower().zfill(4) for g in groups)), i + 1


def _parse_ip_encap(words: list[Token], i: int, kind_tok: Token) -> tuple[Encap, int]:
    """`encap ip|ip6 [id N] [dst A] [src A] [tos|tc N] [ttl|hoplimit N] [flags N]`."""
    kind: Literal["ip", "ip6"] = "ip" if kind_tok.text == "ip" else "ip6"
    want = 4 if kind == "ip" else 6
    tos_kw, ttl_kw = ("tos", "ttl") if kind == "ip" else ("tc", "hoplimit")
    vals: dict[str, Any] = {}
    while i + 1 < len(words):
        key, tok = words[i].text, words[i + 1]
        if key == "id":
            vals["id"] = parse_int(tok, 0, 2**64 - 1)
        elif key in ("dst", "src"):
            addr = _ip(tok)
            if _family(addr) != want:
                other = "IPv6" if want == 4 else "IPv4"
                raise ArgError(f"{other} address {addr} not valid for {kind} encapsulation", tok)
            vals[key] = addr
        elif key == tos_kw:
            vals["tos"] = parse_int_any(tok, 0, 255, f"{key} {tok.text} is not valid for {kind}")
        elif key == ttl_kw:
            vals["ttl"] = parse_int(tok, 0, 255)
        elif key == "flags":
            vals["flags"] = parse_int_any(tok, 0, 0xFFFF, f"flags {tok.text} is not valid")
        else:
            break
        i += 2
    if "dst" not in vals and "id" not in vals:
        raise ArgError(f"address or id missing for {kind} encapsulation", kind_tok)
    return Encap(kind, **vals), i


def render_encap(e: Encap) -> list[str]:
    parts = ["encap", e.type]
    if e.type == "mpls":
        return [*parts, "/".join(str(n) for n in e.labels)]
    if e.type == "ila":
        return [*parts, str(e.locator)]
    tos_kw, ttl_kw = ("tos", "ttl") if e.type == "ip" else ("tc", "hoplimit")
    for kw, v in (
        ("id", e.id),
        ("dst", e.dst),
        ("src", e.src),
        (tos_kw, e.tos),
        (ttl_kw, e.ttl),
        ("flags", e.flags),
    ):
        if v is not None:
            parts += [kw, str(v)]
    return parts


# keepalived reads every word after the first `nexthop` as nexthop options.
_NEXTHOP_END = {"nexthop"}


def _parse_nexthop(words: list[Token], i: int, family: int | None) -> tuple[Nexthop, int]:
    """One `nexthop ...` clause starting after the word `nexthop`."""
    vals: dict[str, Any] = {}
    start = words[i - 1]
    while i < len(words) and words[i].text not in _NEXTHOP_END:
        tok = words[i]
        w = tok.text
        if w == "via":
            j = i + 1
            if j < len(words) and words[j].text in ("inet", "inet6"):
                j += 1
            if j >= len(words):
                raise ArgError("'via' needs a value", tok)
            via = _ip(words[j])
            if family is not None and _family(via) != family:
                raise ArgError("Address family mismatch for next hop", words[j])
            vals["via"] = via
            i = j + 1
        elif w == "dev":
            vals["dev"] = _next(words, i).text
            i += 2
        elif w == "weight":
            vtok = _next(words, i)
            weight = parse_int(vtok, 0, 256)
            if weight == 0:
                raise ArgError("Invalid weight 0 specified for route", vtok)
            vals["weight"] = weight
            i += 2
        elif w == "onlink":
            vals["onlink"] = True
            i += 1
        elif w == "realms":
            vals["realms"] = canon_realms(_next(words, i))
            i += 2
        elif w == "encap":
            vals["encap"], i = parse_encap(words, i)
        elif w == "as":
            raise ArgError("'as [to]' (nat) not supported", tok)
        else:
            raise ArgError(f"Route has trailing nonsense after nexthops - {w}", tok)
    if "via" not in vals and "dev" not in vals:
        raise ArgError("nexthop needs 'via' or 'dev'", start)
    return Nexthop(**vals), i


def parse_route(words: list[Token], ctx: Ctx) -> Route:
    start = 1 if words[0].text in ROUTE_TYPES else 0
    nexthops: list[Nexthop] = []
    dest_tok = words[0]

    def other(read: _Read, i: int) -> int:
        """`to DEST`, a bare destination, and `nexthop ...`: not options of the table."""
        nonlocal dest_tok
        tok = words[i]
        if tok.text == "to":
            dest_tok = _next(words, i)
            read.vals["dest"] = _route_dest(dest_tok)
            return i + 2
        if tok.text == "nexthop":
            if "via_or" in read.vals:
                raise ArgError('Cannot specify nexthops with "or" route', tok)
            dest = read.vals.get("dest")
            fam = _family(dest) if dest not in (None, "default", "any", "all") else None
            nh, i = _parse_nexthop(words, i + 1, fam)
            nexthops.append(nh)
            return i
        if "dest" not in read.vals:
            dest_tok = tok
            read.vals["dest"] = _route_dest(tok)
            return i + 1
        ctx.report("error", "unknown-entry", f"unknown route option '{tok.text}' - ignoring", tok)
        return i + 1

    read = _read_options(words, start, ctx, ROUTE_OPTIONS, other)
    vals = read.vals
    dest = vals.pop("dest", None)
    if dest is None:
        raise ArgError("route has no destination", words[0])
    if start:
        vals["type"] = words[0].text
    _check_tracked_protocol(ctx, vals, "Route", words)
    route = Route(dest, options=tuple(read.options), nexthops=tuple(nexthops), **vals)
    _check_route_family(route, dest_tok)
    return route


RTPROT_KEEPALIVED = 18


def _check_tracked_protocol(
    ctx: Ctx, vals: dict[str, object], what: str, words: list[Token]
) -> None:
    """keepalived tracks its routes and rules by their protocol: another one is reset."""
    proto = vals.get("protocol")
    if proto is None or vals.get("no_track"):
        return
    number = proto if isinstance(proto, int) else RULE_PROTOCOLS.get(str(proto))
    if number is None:
        number = int(str(proto), 0)
    if number != RTPROT_KEEPALIVED:
        tok = next((t for t in words if t.text in ("protocol", "proto")), words[0])
        ctx.report(
            "error",
            "bad-value",
            f"{what} cannot be tracked if protocol is not RTPROT_KEEPALIVED(18), "
            "resetting protocol (add 'no_track' to keep it)",
            tok,
        )
        del vals["protocol"]


def route_family(r: Route) -> int | None:
    """4 or 6 when the route's addresses (or inet/inet6) say so, else None."""
    if r.family:
        return 6 if r.family == "inet6" else 4
    for addr in (r.dest, r.via, r.src, *(nh.via for nh in r.nexthops)):
        if addr is not None and addr not in ("default", "any", "all"):
            return _family(addr)
    return None


def _check_route_family(r: Route, where: Token) -> None:
    fam = route_family(r)
    addrs = [
        a
        for a in (r.dest, r.via, r.via_or, r.src, r.from_)
        if a not in (None, "default", "any", "all")
    ]
    addrs += [nh.via for nh in r.nexthops if nh.via is not None]
    if fam is not None and any(_family(a) != fam for a in addrs):
        raise ArgError("Cannot mix IPv4 and IPv6 addresses for route", where)
    names = {opt[0] for opt in r.options}
    for v6only in ("pref", "expires"):
        if v6only in names and fam == 4:
            raise ArgError(f"{v6only} is only valid for IPv6", where)
    if "realms" in names and fam == 6:
        raise ArgError("realms are only valid for IPv4", where)
    if r.via_or is not None and r.nexthops:
        raise ArgError('Cannot specify nexthops with "or" route', where)
    # keepalived passes these on; the kernel refuses a gateway that differs from the first
    # nexthop's, so say it here instead.
    if r.nexthops and r.via is not None:
        raise ArgError("'via' cannot be combined with nexthops (give it as a nexthop)", where)
    if r.nexthops and r.encap is not None:
        raise ArgError("'encap' cannot be combined with nexthops (give it per nexthop)", where)


def _ip(tok: Token) -> str:
    try:
        return str(ipaddress.ip_address(tok.text))
    except ValueError:
        raise ArgError(f"invalid IP address '{tok.text}'", tok) from None


def _rule_addr(tok: Token) -> str:
    if tok.text in ("all", "default", "any"):
        return tok.text
    return canon_interface(tok)


def _range(tok: Token, hi: int, what: str) -> str:
    """`N` or `N-M` (N <= M <= hi) as canonical `N-M`."""
    lo_text, sep, hi_text = tok.text.partition("-")
    try:
        lo = int(lo_text)
        top = int(hi_text) if sep else lo
    except ValueError:
        raise ArgError(f"invalid {what} range {tok.text}", tok) from None
    if not 0 <= lo <= top <= hi:
        raise ArgError(f"invalid {what} range {tok.text}", tok)
    return f"{lo}-{top}"


def _ipproto(tok: Token) -> int:
    if tok.text.isdigit():
        return parse_int(tok, 0, 255)
    try:
        return socket.getprotobyname(tok.text)
    except OSError:
        raise ArgError(f"Invalid ipproto {tok.text}", tok) from None


def _rule_protocol(tok: Token) -> int:
    if tok.text in RULE_PROTOCOLS:
        return RULE_PROTOCOLS[tok.text]
    return parse_int_any(tok, 0, 255, f"Invalid protocol {tok.text}")


# Route and rule options. Each keyword maps to an Option: the model field it fills and how its
# words are read. The options routes and rules share are the same entries, so a keyword's
# spelling, arity and error text live in one place; parse_route and parse_rule are loops over
# their table, and render_route and render_rule loops over the fields in writing order.

# (words, index of the keyword, ctx) -> (value, index after the option's words)
_Reader = Callable[[list[Token], int, Ctx], tuple[Any, int]]
# The field an Option's value is appended to instead of set.
_OPTIONS = "options"


@dataclass(frozen=True, slots=True)
class Option:
    """How one keyword is read: `read` returns its value and the index after its words.

    The value goes to the model field `field`; with `field` "options" it is appended to the
    entry's `options` (a validated word tuple), with `field` None it is dropped (the reader
    said why).
    """

    field: str | None
    read: _Reader


def _flag(field: str) -> Option:
    """KEYWORD alone: the field is true."""
    return Option(field, lambda words, i, ctx: (True, i + 1))


def _keyword(field: str) -> Option:
    """KEYWORD alone, itself the value (`inet6`, `blackhole`)."""
    return Option(field, lambda words, i, ctx: (words[i].text, i + 1))


def _text(tok: Token) -> str:
    return tok.text


def _value(field: str, parse: Callable[[Token], object] = _text) -> Option:
    """KEYWORD VALUE: one word, checked and made canonical by `parse`."""
    return Option(field, lambda words, i, ctx: (parse(_next(words, i)), i + 2))


def _u32(tok: Token) -> int:
    return parse_int(tok, 0, _U32)


def _tos(tok: Token) -> str:
    return str(parse_int_any(tok, 0, 255, f"TOS value {tok.text} is invalid"))


def _read_track_group(words: list[Token], i: int, ctx: Ctx) -> tuple[str, int]:
    group = _next(words, i).text
    _track_group_not_implemented(ctx, words[i])
    return group, i + 2


# Options every route and rule has.
_SHARED_OPTIONS: dict[str, Option] = {
    "table": _value("table"),
    "inet": _keyword("family"),
    "inet6": _keyword("family"),
    "no_track": _flag("no_track"),
    "track_group": Option("track_group", _read_track_group),
}


def _route_from(tok: Token) -> str:
    addr = canon_interface(tok)
    if _family(addr) != 6:
        raise ArgError(f"route from address only supported with IPv6 ({tok.text})", tok)
    return addr


def _route_protocol(tok: Token) -> str:
    if tok.text not in RULE_PROTOCOLS:
        parse_int_any(tok, 0, 255, f"Protocol {tok.text} not found or invalid for route")
    return tok.text


def _read_via(words: list[Token], i: int, ctx: Ctx) -> tuple[str, int]:
    """`via [inet|inet6] ADDR`, or the deprecated `gw`."""
    tok = words[i]
    if tok.text == "gw":
        ctx.report("warning", "deprecated", '"gw" for routes is deprecated. Please use "via"', tok)
    j = i + 1
    if j < len(words) and words[j].text in ("inet", "inet6"):
        j += 1
    if j >= len(words):
        raise ArgError(f"'{tok.text}' needs a value", tok)
    return _ip(words[j]), j + 1


def _read_or(words: list[Token], i: int, ctx: Ctx) -> tuple[str, int]:
    ctx.report(
        "warning", "deprecated", '"or" for routes is deprecated. Please use "nexthop"', words[i]
    )
    return _ip(_next(words, i)), i + 2


def _metric(name: str, lockable: bool, kind: str) -> Option:
    """`NAME [lock] VALUE`, kept in `Route.options` as ("name"[, "lock"], value)."""

    def read(words: list[Token], i: int, ctx: Ctx) -> tuple[tuple[str, ...], int]:
        j = i + 1
        lock = lockable and j < len(words) and words[j].text == "lock"
        if lock:
            j += 1
        if j >= len(words):
            raise ArgError(f"'{words[i].text}' needs a value", words[i])
        value = _check_value(kind, words[j], name)
        return ((name, "lock", value) if lock else (name, value)), j + 1

    return Option(_OPTIONS, read)


def _ignored(message: str) -> Option:
    """KEYWORD VALUE that keepalived accepts and has no effect here: said, not dropped silently."""

    def read(words: list[Token], i: int, ctx: Ctx) -> tuple[None, int]:
        _next(words, i)
        ctx.report("warning", "unsupported", message, words[i])
        return None, i + 2

    return Option(None, read)


def _read_as(words: list[Token], i: int, ctx: Ctx) -> tuple[None, int]:
    j = i + 1
    if j < len(words) and words[j].text == "to":
        j += 1
    if j >= len(words):
        raise ArgError("'as' needs an address", words[i])
    # keepalived's verdict: a config error, the route kept without it.
    ctx.report("error", "unsupported", '"as to" for MPLS only - ignoring', words[i])
    return None, j + 1


def _read_vrf(words: list[Token], i: int, ctx: Ctx) -> tuple[None, int]:
    # keepalived looks the VRF's table up; installing into another table would be worse than
    # not installing.
    raise ArgError(
        f"'vrf {_next(words, i).text}' is not supported; give the VRF's table with 'table N'",
        words[i],
    )


def _read_one_route_only(words: list[Token], i: int, ctx: Ctx) -> tuple[None, int]:
    ctx.report(
        "warning",
        "unsupported",
        f"'{words[i].text}' is not supported (netd keeps one route per destination) - ignoring",
        words[i],
    )
    return None, i + 1


def _read_encap(words: list[Token], i: int, ctx: Ctx) -> tuple[Encap, int]:
    return parse_encap(words, i)


ROUTE_OPTIONS: dict[str, Option] = {
    **_SHARED_OPTIONS,
    "src": _value("src", _ip),
    "from": _value("from_", _route_from),
    "via": Option("via", _read_via),
    "gw": Option("via", _read_via),
    "or": Option("via_or", _read_or),
    "dev": _value("dev"),
    "oif": _value("dev"),
    "protocol": _value("protocol", _route_protocol),
    "proto": _value("protocol", _route_protocol),
    "scope": _value("scope"),
    "metric": _value("metric", _u32),
    "priority": _value("metric", _u32),
    "preference": _value("metric", _u32),
    "onlink": _flag("onlink"),
    **{
        kw: _metric(name, *_ROUTE_METRICS[name])
        for kw, name in [*((m, m) for m in _ROUTE_METRICS), *_ROUTE_ALIASES.items()]
    },
    **{kw: _ignored(message) for kw, message in _ROUTE_IGNORED.items()},
    "as": Option(None, _read_as),
    "vrf": Option(None, _read_vrf),
    "append": Option(None, _read_one_route_only),
    "prepend": Option(None, _read_one_route_only),
    "add": Option(None, lambda words, i, ctx: (None, i + 1)),  # the default
    "encap": Option("encap", _read_encap),
}


def _uidrange(tok: Token) -> str:
    if "-" not in tok.text:
        raise ArgError(f"Invalid uidrange {tok.text} specified", tok)
    return _range(tok, _U32, "uid")


def _port_range(what: str) -> Callable[[Token], str]:
    return lambda tok: _range(tok, 0xFFFF, what)


_RULE_ACTION_TYPES = ("blackhole", "unreachable", "prohibit", "nop")
# The rule's action: at most one of them (l3mdev too), said at the first one written.
_RULE_ACTION_FIELDS = ("table", "goto")

RULE_OPTIONS: dict[str, Option] = {
    **_SHARED_OPTIONS,
    "from": _value("from_", _rule_addr),
    "to": _value("to", _rule_addr),
    "lookup": _SHARED_OPTIONS["table"],
    **dict.fromkeys(
        ("preference", "priority", "order", "pref", "prio"), _value("preference", _u32)
    ),
    "iif": _value("iif"),
    "dev": _value("iif"),
    "oif": _value("oif"),
    "fwmark": _value("fwmark"),
    "type": _value("type"),
    "tos": _value("tos", _tos),
    "dsfield": _value("tos", _tos),
    "goto": _value("goto", lambda tok: parse_int(tok, 0)),
    **{kw: _keyword("type") for kw in _RULE_ACTION_TYPES},
    "not": _flag("invert"),
    "l3mdev": _flag("l3mdev"),
    "realms": _value("realms", canon_realms),
    "realm": _value("realms", canon_realms),
    "suppress_prefixlength": _value("suppress_prefixlength", lambda t: parse_int(t, 0, 128)),
    "sup_pl": _value("suppress_prefixlength", lambda t: parse_int(t, 0, 128)),
    "suppress_ifgroup": _value("suppress_ifgroup", lambda t: parse_int(t, 0, 0x7FFFFFFF)),
    "sup_group": _value("suppress_ifgroup", lambda t: parse_int(t, 0, 0x7FFFFFFF)),
    "uidrange": _value("uidrange", _uidrange),
    "protocol": _value("protocol", _rule_protocol),
    "ipproto": _value("ipproto", _ipproto),
    "sport": _value("sport", _port_range("sport")),
    "dport": _value("dport", _port_range("dport")),
    "tunnel-id": _value("tunnel_id", lambda t: parse_int(t, 0, 2**64 - 1)),
    "tun_id": _value("tunnel_id", lambda t: parse_int(t, 0, 2**64 - 1)),
}


@dataclass(slots=True)
class _Read:
    """What an entry's options said: model fields, `options` tuples, first keyword per field."""

    vals: dict[str, Any] = dataclasses.field(default_factory=dict)
    options: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    first: dict[str, int] = dataclasses.field(default_factory=dict)


def _read_options(
    words: list[Token],
    i: int,
    ctx: Ctx,
    table: Mapping[str, Option],
    other: Callable[[_Read, int], int],
) -> _Read:
    """Read words[i:] by `table`; `other(read, i)` handles a word that is no keyword there."""
    read = _Read()
    while i < len(words):
        opt = table.get(words[i].text)
        if opt is None:
            i = other(read, i)
            continue
        start = i
        value, i = opt.read(words, i, ctx)
        if opt.field == _OPTIONS:
            read.options.append(value)
        elif opt.field is not None:
            read.vals[opt.field] = value
            read.first.setdefault(opt.field, start)
    return read


# How each field of a route or rule is written, in writing order: a renderer is called with
# the field's value unless that is None.
_Render = Callable[[Any], list[str]]


def _kw(kw: str) -> _Render:
    """`KEYWORD VALUE`."""
    return lambda v: [kw, quote(str(v))]


def _kw_if_set(kw: str) -> _Render:
    """`KEYWORD VALUE` unless the value is empty."""
    return lambda v: [kw, quote(str(v))] if v else []


def _bare_if_set(v: object) -> list[str]:
    return [quote(str(v))] if v else []


def _flag_word(kw: str) -> _Render:
    return lambda v: [kw] if v else []


def _option_words(options: tuple[tuple[str, ...], ...]) -> list[str]:
    return [quote(o) for opt in options for o in opt]


def _render_nexthops(nexthops: tuple[Nexthop, ...]) -> list[str]:
    parts: list[str] = []
    for nh in nexthops:
        parts.append("nexthop")
        if nh.via is not None:
            parts += ["via", nh.via]
        if nh.dev is not None:
            parts += ["dev", quote(nh.dev)]
        if nh.weight is not None:
            parts += ["weight", str(nh.weight)]
        if nh.onlink:
            parts.append("onlink")
        if nh.realms is not None:
            parts += ["realms", nh.realms]
        if nh.encap is not None:
            parts += render_encap(nh.encap)
    return parts


_ROUTE_LAYOUT: tuple[tuple[str, _Render], ...] = (
    ("type", _bare_if_set),
    ("src", _kw_if_set("src")),
    ("dest", lambda v: [v]),
    ("from_", _kw_if_set("from")),
    ("via", _kw("via")),
    ("via_or", _kw("or")),
    ("dev", _kw("dev")),
    ("table", _kw("table")),
    ("metric", _kw("metric")),
    ("scope", _kw("scope")),
    ("protocol", _kw("protocol")),
    ("onlink", _flag_word("onlink")),
    ("family", _bare_if_set),
    ("options", _option_words),
    ("encap", render_encap),
    ("no_track", _flag_word("no_track")),
    ("track_group", _kw_if_set("track_group")),
    # Nexthops go last: keepalived reads everything after the first `nexthop` as nexthops.
    ("nexthops", _render_nexthops),
)


def _render(entry: object, layout: tuple[tuple[str, _Render], ...]) -> str:
    parts: list[str] = []
    for name, render in layout:
        value = getattr(entry, name)
        if value is not None:
            parts += render(value)
    return " ".join(parts)


def render_route(r: Route) -> str:
    return _render(r, _ROUTE_LAYOUT)


def parse_rule(words: list[Token], ctx: Ctx) -> Rule:
    def other(read: _Read, i: int) -> int:
        tok = words[i]
        ctx.report("error", "unknown-entry", f"unknown rule option '{tok.text}' - ignoring", tok)
        return i + 1

    read = _read_options(words, 0, ctx, RULE_OPTIONS, other)
    _check_tracked_protocol(ctx, read.vals, "Rule", words)
    rule = Rule(**read.vals)
    if rule == Rule():
        raise ArgError("rule has no selector or action", words[0])
    if rule.l3mdev and (rule.table is not None or rule.goto is not None or rule.type):
        actions = [read.first[f] for f in _RULE_ACTION_FIELDS if f in read.first]
        raise ArgError(
            "Cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable/l3mdev "
            "for rule",
            words[min(actions)] if actions else words[0],
        )
    return rule


def _rule_type(t: str) -> list[str]:
    return [t] if t in _RULE_ACTION_TYPES else ["type", quote(t)]


_RULE_LAYOUT: tuple[tuple[str, _Render], ...] = (
    ("invert", _flag_word("not")),
    ("from_", _kw("from")),
    ("to", _kw("to")),
    ("table", _kw("table")),
    ("preference", _kw("preference")),
    ("iif", _kw("iif")),
    ("oif", _kw("oif")),
    ("fwmark", _kw("fwmark")),
    ("tos", _kw("tos")),
    ("goto", _kw("goto")),
    ("realms", _kw("realms")),
    ("suppress_prefixlength", _kw("suppress_prefixlength")),
    ("suppress_ifgroup", _kw("suppress_ifgroup")),
    ("uidrange", _kw("uidrange")),
    ("protocol", _kw("protocol")),
    ("ipproto", _kw("ipproto")),
    ("sport", _kw("sport")),
    ("dport", _kw("dport")),
    ("tunnel_id", _kw("tunnel-id")),
    ("type", _rule_type),
    ("l3mdev", _flag_word("l3mdev")),
    ("family", _bare_if_set),
    ("options", _option_words),
    ("no_track", _flag_word("no_track")),
    ("track_group", _kw_if_set("track_group")),
)


def render_rule(r: Rule) -> str:
    return _render(r, _RULE_LAYOUT)


def parse_peer(words: list[Token], ctx: Ctx) -> UnicastPeer:
    addr = _ip(words[0])
    vals: dict[str, int] = {}
    i = 1
    while i < len(words):
        w = words[i].text
        if w in ("min_ttl", "max_ttl"):
            vals[w] = parse_int(_next(words, i), 0, 255)
            i += 2
        else:
            ctx.report(
                "error", "unknown-entry", f"unknown unicast_peer option '{w}' - ignoring", words[i]
            )
            i += 1
    return UnicastPeer(addr, **vals)


def render_peer(p: UnicastPeer) -> str:
    s = p.address
    if p.min_ttl is not None:
        s += f" min_ttl {p.min_ttl}"
    if p.max_ttl is not None:
        s += f" max_ttl {p.max_ttl}"
    return s


def make_track_parser(lo: int = -253, hi: int = 253) -> Callable[[list[Token], Ctx], TrackRef]:
    def parse_track(words: list[Token], ctx: Ctx) -> TrackRef:
        name = words[0].text
        weight: int | None = None
        reverse = False
        i = 1
        while i < len(words):
            w = words[i].text
            if w == "weight":
                weight = parse_int(_next(words, i), lo, hi)
                i += 2
            elif w in ("reverse", "noreverse"):
                reverse = w == "reverse"
                i += 1
            else:
                raise ArgError(f"unknown track option '{w}'", words[i])
        return TrackRef(name, weight, reverse)

    return parse_track


def render_track(t: TrackRef) -> str:
    s = quote(t.name)
    if t.weight is not None:
        s += f" weight {t.weight}"
    if t.reverse:
        s += " reverse"
    return s


def parse_vsg_entry(words: list[Token], ctx: Ctx) -> VsgEntry:
    if words[0].text == "fwmark":
        mark = parse_int(_next(words, 0), 0, 0xFFFFFFFF)
        fam = words[2].text if len(words) > 2 else None
        if fam is not None and fam not in ("inet", "inet6"):
            raise ArgError(f"unknown fwmark option '{fam}'", words[2])
        return VsgEntry(fwmark=mark, family=fam)
    addr = words[0].text
    base = addr.split("-", 1)[0].split("/", 1)[0]
    try:
        ipaddress.ip_address(base)
    except ValueError:
        raise ArgError(f"invalid address or range '{addr}'", words[0]) from None
    port = parse_int(words[1], 0, 65535) if len(words) > 1 else None
    if len(words) > 2:
        raise ArgError(f"unexpected '{words[2].text}'", words[2])
    return VsgEntry(address=addr, port=port)


def render_vsg_entry(e: VsgEntry) -> str:
    if e.fwmark is not None:
        return f"fwmark {e.fwmark}" + (f" {e.family}" if e.family else "")
    return f"{e.address}" + (f" {e.port}" if e.port is not None else "")


def _track_group_not_implemented(ctx: Ctx, token: Token) -> None:
    # No component restores static items or faults instances for them: say so, once per use.
    ctx.report(
        "not-implemented",
        "not-implemented",
        "'track_group' is accepted but not implemented yet (a lost static address, route or "
        "rule does not put the group's instances in FAULT)",
        token,
    )
