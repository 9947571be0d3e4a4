"""Route messages (RTM_NEWROUTE / RTM_DELROUTE) encoded and decoded by hand.

pyroute2 0.9 has no encoder for ``encap ip`` / ``encap ip6`` / ``encap ila`` and decodes
multipath routes slowly, so netd writes and reads the whole route message itself: the
``rtmsg`` header, the plain attributes, ``RTA_METRICS``, ``RTA_MULTIPATH`` (one
``rtnexthop`` per path) and ``RTA_ENCAP`` for each lightweight-tunnel kind.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any, Final

from netd.desired import ENCAP_TYPES, ROUTE_METRICS, ROUTE_TYPES, RTAX_MTU, SCOPES, Encap, Route
from netd.nlbatch import attributes, nla

__all__ = ["RTNH_F_ONLINK", "encode_route", "parse_rtmsg"]

NLA_F_NESTED: Final = 0x8000
RTNH_F_ONLINK: Final = 0x04

RTA_DST: Final = 1
RTA_SRC: Final = 2
RTA_OIF: Final = 4
RTA_GATEWAY: Final = 5
RTA_PRIORITY: Final = 6
RTA_PREFSRC: Final = 7
RTA_METRICS: Final = 8
RTA_MULTIPATH: Final = 9
RTA_FLOW: Final = 11
RTA_TABLE: Final = 15
RTA_PREF: Final = 20
RTA_ENCAP_TYPE: Final = 21
RTA_ENCAP: Final = 22
RTA_EXPIRES: Final = 23

# LWTUNNEL_IP_* and LWTUNNEL_IP6_* share numbers; ip6 calls ttl "hoplimit" and tos "tc".
LWT_IP_ID: Final = 1
LWT_IP_DST: Final = 2
LWT_IP_SRC: Final = 3
LWT_IP_TTL: Final = 4
LWT_IP_TOS: Final = 5
LWT_IP_FLAGS: Final = 6
MPLS_IPTUNNEL_DST: Final = 1
ILA_ATTR_LOCATOR: Final = 1
MPLS_LS_S: Final = 0x100  # bottom-of-stack bit of a label stack entry
RTAX_CC_ALGO: Final = ROUTE_METRICS["congctl"]

_RTM_HEAD = struct.Struct("=BBBBBBBBI")
_RTNH = struct.Struct("=HBBi")
_ADDRS: Final = {
    RTA_DST: "RTA_DST",
    RTA_SRC: "RTA_SRC",
    RTA_GATEWAY: "RTA_GATEWAY",
    RTA_PREFSRC: "RTA_PREFSRC",
}
_U32: Final = {
    RTA_OIF: "RTA_OIF",
    RTA_PRIORITY: "RTA_PRIORITY",
    RTA_TABLE: "RTA_TABLE",
    RTA_FLOW: "RTA_FLOW",
    RTA_EXPIRES: "RTA_EXPIRES",
}
_METRIC_NAMES: Final = {v: k for k, v in ROUTE_METRICS.items()}
_ENCAP_NAMES: Final = {v: k for k, v in ENCAP_TYPES.items()}


def _u8(atype: int, value: int) -> bytes:
    return nla(atype, struct.pack("=B", value))


def _u16(atype: int, value: int) -> bytes:
    return nla(atype, struct.pack("=H", value))


def _u32(atype: int, value: int) -> bytes:
    return nla(atype, struct.pack("=I", value))


def _addr(atype: int, family: int, text: str) -> bytes:
    return nla(atype, socket.inet_pton(family, text))


def _nested(atype: int, parts: list[bytes]) -> bytes:
    return nla(atype | NLA_F_NESTED, b"".join(parts))


def _encap_attrs(e: Encap) -> list[bytes]:
    """RTA_ENCAP_TYPE and RTA_ENCAP for one encapsulation."""
    if e.type == "mpls":
        stack = b"".join(
            struct.pack("!I", (label << 12) | (MPLS_LS_S if i == len(e.labels) - 1 else 0))
            for i, label in enumerate(e.labels)
        )
        inner = [nla(MPLS_IPTUNNEL_DST, stack)]
    elif e.type == "ila":
        locator = int((e.locator or "").replace(":", ""), 16)
        inner = [nla(ILA_ATTR_LOCATOR, struct.pack("!Q", locator))]
    else:
        fam = socket.AF_INET6 if e.type == "ip6" else socket.AF_INET
        inner = []
        if e.id:
            inner.append(nla(LWT_IP_ID, struct.pack("!Q", e.id)))
        if e.dst is not None:
            inner.append(_addr(LWT_IP_DST, fam, e.dst))
        if e.src is not None:
            inner.append(_addr(LWT_IP_SRC, fam, e.src))
        if e.ttl:
            inner.append(_u8(LWT_IP_TTL, e.ttl))
        if e.tos:
            inner.append(_u8(LWT_IP_TOS, e.tos))
        if e.flags:
            inner.append(_u16(LWT_IP_FLAGS, e.flags))
    return [_u16(RTA_ENCAP_TYPE, ENCAP_TYPES[e.type]), _nested(RTA_ENCAP, inner)]


def _metrics_attr(r: Route) -> bytes | None:
    parts = []
    if r.mtu is not None:
        parts.append(_u32(RTAX_MTU, r.mtu))
    for name, value in r.metrics:
        if isinstance(value, str):
            parts.append(nla(RTAX_CC_ALGO, value.encode() + b"\0"))
        else:
            parts.append(_u32(ROUTE_METRICS[name], value))
    return _nested(RTA_METRICS, parts) if parts else None


def default_scope(r: Route) -> int:
    """iproute2's implicit scope, so ``dev``-only routes behave as with ``ip route add``."""
    if r.type in ("local", "nat"):
        return SCOPES["host"]
    if r.type in ("broadcast", "multicast", "anycast"):
        return SCOPES["link"]
    if r.type == "unicast" and r.via is None and not r.nexthops:
        return SCOPES["link"]
    return SCOPES["global"]


def encode_route(r: Route, deleting: bool, proto: int, ifindex: Callable[[str], int]) -> bytes:
    """The body (after the netlink header) of a new/delete request for ``r``.

    A delete names only the route's identity (table, dst, tos, metric) with scope
    ``nowhere``, as iproute2 does, so it matches whatever else the kernel holds.
    """
    fam = r.family
    net, plen = r.dst.split("/")
    attrs = [_u32(RTA_TABLE, r.table)]
    if int(plen):
        attrs.append(_addr(RTA_DST, fam, net))
    src_len = 0
    if r.from_prefix is not None:
        src_net, src_plen = r.from_prefix.split("/")
        src_len = int(src_plen)
        if src_len:
            attrs.append(_addr(RTA_SRC, fam, src_net))
    if r.metric is not None:
        attrs.append(_u32(RTA_PRIORITY, r.metric))
    table = r.table if r.table < 256 else 0
    if deleting:
        head = _RTM_HEAD.pack(
            fam, int(plen), src_len, r.tos, table, 0, SCOPES["nowhere"], ROUTE_TYPES[r.type], 0
        )
        return head + b"".join(attrs)
    scope = r.scope if r.scope is not None else default_scope(r)
    flags = RTNH_F_ONLINK if r.onlink else 0
    rproto = proto if r.proto is None else r.proto
    head = _RTM_HEAD.pack(
        fam, int(plen), src_len, r.tos, table, rproto, scope, ROUTE_TYPES[r.type], flags
    )
    if r.via is not None:
        attrs.append(_addr(RTA_GATEWAY, fam, r.via))
    if r.dev is not None:
        attrs.append(_u32(RTA_OIF, ifindex(r.dev)))
    if r.src is not None:
        attrs.append(_addr(RTA_PREFSRC, fam, r.src))
    metrics = _metrics_attr(r)
    if metrics is not None:
        attrs.append(metrics)
    if r.realms is not None:
        attrs.append(_u32(RTA_FLOW, r.realms))
    if r.pref is not None:
        attrs.append(_u8(RTA_PREF, r.pref))
    if r.expires is not None:
        attrs.append(_u32(RTA_EXPIRES, r.expires))
    if r.encap is not None:
        attrs += _encap_attrs(r.encap)
    if r.nexthops:
        attrs.append(_multipath_attr(r, ifindex))
    return head + b"".join(attrs)


def _multipath_attr(r: Route, ifindex: Callable[[str], int]) -> bytes:
    """RTA_MULTIPATH: one rtnexthop (with its own gateway, realms, encap) per nexthop."""
    hops = []
    for nh in r.nexthops:
        sub = []
        if nh.via is not None:
            sub.append(_addr(RTA_GATEWAY, r.family, nh.via))
        if nh.realms is not None:
            sub.append(_u32(RTA_FLOW, nh.realms))
        if nh.encap is not None:
            sub += _encap_attrs(nh.encap)
        body = b"".join(sub)
        oif = ifindex(nh.dev) if nh.dev is not None else 0
        nh_flags = RTNH_F_ONLINK if nh.onlink else 0
        hops.append(_RTNH.pack(_RTNH.size + len(body), nh_flags, nh.weight - 1, oif) + body)
    return nla(RTA_MULTIPATH, b"".join(hops))


def _parse_encap(kind: int, data: bytes, start: int, stop: int, family: int) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _ENCAP_NAMES.get(kind, str(kind))}
    for atype, s, e in attributes(data, start, stop):
        if kind == ENCAP_TYPES["mpls"] and atype == MPLS_IPTUNNEL_DST:
            entries = struct.unpack_from(f"!{(e - s) // 4}I", data, s)
            out["labels"] = tuple(entry >> 12 for entry in entries)
        elif kind == ENCAP_TYPES["ila"] and atype == ILA_ATTR_LOCATOR:
            (loc,) = struct.unpack_from("!Q", data, s)
            out["locator"] = ":".join(f"{(loc >> sh) & 0xFFFF:04x}" for sh in (48, 32, 16, 0))
        elif kind in (ENCAP_TYPES["ip"], ENCAP_TYPES["ip6"]):
            fam = socket.AF_INET6 if kind == ENCAP_TYPES["ip6"] else socket.AF_INET
            if atype == LWT_IP_ID:
                out["id"] = struct.unpack_from("!Q", data, s)[0]
            elif atype in (LWT_IP_DST, LWT_IP_SRC):
                out["dst" if atype == LWT_IP_DST else "src"] = socket.inet_ntop(fam, data[s:e])
            elif atype == LWT_IP_TTL:
                out["ttl"] = data[s]
            elif atype == LWT_IP_TOS:
                out["tos"] = data[s]
            elif atype == LWT_IP_FLAGS:
                out["flags"] = struct.unpack_from("=H", data, s)[0]
    return out


def _parse_attrs(data: bytes, start: int, stop: int, family: int, out: dict[str, Any]) -> None:
    """Attributes of a route, or of one nexthop inside RTA_MULTIPATH, into ``out``."""
    encap_type: int | None = None
    encap_span: tuple[int, int] | None = None
    for atype, s, e in attributes(data, start, stop):
        if atype in _ADDRS:
            out[_ADDRS[atype]] = socket.inet_ntop(family, data[s:e])
        elif atype in _U32:
            out[_U32[atype]] = struct.unpack_from("=I", data, s)[0]
        elif atype == RTA_PREF:
            out["RTA_PREF"] = data[s]
        elif atype == RTA_METRICS:
            out["RTA_METRICS"] = _parse_metrics(data, s, e)
        elif atype == RTA_ENCAP_TYPE:
            encap_type = struct.unpack_from("=H", data, s)[0]
        elif atype == RTA_ENCAP:
            encap_span = (s, e)
        elif atype == RTA_MULTIPATH:
            out["RTA_MULTIPATH"] = _parse_multipath(data, s, e, family)
    if encap_type is not None and encap_span is not None:
        out["RTA_ENCAP"] = _parse_encap(encap_type, data, *encap_span, family)


def _parse_metrics(data: bytes, start: int, stop: int) -> dict[str, int | str]:
    metrics: dict[str, int | str] = {}
    for mtype, ms, me in attributes(data, start, stop):
        if mtype == RTAX_CC_ALGO:
            metrics["congctl"] = data[ms:me].rstrip(b"\0").decode(errors="replace")
        elif mtype == RTAX_MTU and me - ms >= 4:
            metrics["RTAX_MTU"] = struct.unpack_from("=I", data, ms)[0]
        elif mtype in _METRIC_NAMES and me - ms >= 4:
            metrics[_METRIC_NAMES[mtype]] = struct.unpack_from("=I", data, ms)[0]
    return metrics


def _parse_multipath(data: bytes, start: int, stop: int, family: int) -> list[dict[str, Any]]:
    hops = []
    pos = start
    while pos + _RTNH.size <= stop:
        length, flags, hops_, ifindex = _RTNH.unpack_from(data, pos)
        if length < _RTNH.size:
            break
        hop: dict[str, Any] = {"flags": flags, "weight": hops_ + 1, "oif": ifindex}
        _parse_attrs(data, pos + _RTNH.size, pos + length, family, hop)
        hops.append(hop)
        pos += (length + 3) & ~3
    return hops


def parse_rtmsg(data: bytes, offset: int, length: int) -> dict[str, Any]:
    """Decode one RTM_NEWROUTE with struct: ~20x cheaper than a generic decode."""
    family, dst_len, src_len, tos, table, proto, scope, rtype, flags = _RTM_HEAD.unpack_from(
        data, offset + 16
    )
    out: dict[str, Any] = {
        "family": family,
        "dst_len": dst_len,
        "src_len": src_len,
        "tos": tos,
        "table": table,
        "proto": proto,
        "scope": scope,
        "type": rtype,
        "flags": flags,
    }
    _parse_attrs(data, offset + 16 + _RTM_HEAD.size, offset + length, family, out)
    return out
