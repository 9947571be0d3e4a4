"""Receive validation of VRRP adverts: pure, one call per received datagram.

The driver reads a datagram from the raw socket, extracts the IP-level facts (source,
destination, TTL or IPv6 hop limit from ``IPV6_RECVHOPLIMIT``, the length the IP header
declares) into :class:`IpFacts`, picks the instance by VRID and calls::

    result = validate(payload, facts, instance_expectations)
    counters.record(result)
    if isinstance(result, Drop):
        log.info("vrrpd.advert.dropped", reason=result.reason, detail=result.detail)
    else:
        for note in result.notes:            # accepted but worth a (rate-limited) log line
            log.warning("vrrpd.advert.mismatch", reason=note.reason, detail=note.detail)
        actions = machine.handle(AdvertReceived.from_advert(result.advert, facts.src), now)

Checks run in keepalived's order (vrrp_check_packet), with the VRID dispatch first because the
driver dispatches by VRID before an instance is known:

1. ``too_short`` / ``length`` (IP length vs bytes; exact size for the address count; Ethernet
   padding beyond the IP-declared length is cut off first), ``version`` for a nibble that is
   neither 2 nor 3
2. ``vrid``
3. ``ttl``: 255 for multicast; unicast only against the optional ``min_ttl``/``max_ttl``,
   the sending peer's own ones (``unicast_peer { IP min_ttl N max_ttl N }``) first
4. ``version`` mismatch with the instance
5. v2: ``auth_type`` (unknown, or not ours), ``auth`` (PASS compared in constant time; AH
   must have been checked by :func:`vrrpd.ah.unwrap`, signalled by ``IpFacts.ah_seq``),
   ``interval`` (v2 adverts with another Adver Int are dropped, RFC
   3768 MUST)
6. ``type``
7. v3: ``interval`` 0 is dropped (erratum 8301); any other mismatch is a *note* (RFC: log only,
   the backup learns the master's interval)
8. ``checksum`` (v3/IPv4 accepts the forms in ``Expectations.checksum_forms``; with
   ``checksum_any`` nothing is rejected, which is keepalived's ``v3_checksum_as_v2`` quirk)
9. ``destination``: multicast destination for a multicast instance, unicast for a unicast one
10. ``own_address``: our own advert looped back
11. ``owner_ignore``: we are the owner (255) and ``owner_ignore_adverts`` is set
12. ``addr_count``: a count of 0 when we have addresses is dropped (erratum 8299); another
    count mismatch is a note (keepalived HEAD and FRR accept), dropped with ``strict_addresses``
13. ``addr_mismatch``: same count, other addresses: a note, dropped with ``strict_addresses``
    unless the sender is the owner (RFC 3768 §7.1)
14. ``link_local``: IPv6 adverts whose first address is not link-local (erratum 8300): a note
    (FRR sends such adverts), dropped with ``strict_addresses``
15. ``unicast_src``: with ``check_unicast_src``, the source must be a configured peer
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from vrrpd.errors import DecodeError
from vrrpd.packet import (
    ADVERT_TYPE,
    DEFAULT_RX_FORMS,
    Advert,
    AuthType,
    ChecksumForm,
    IPAddress,
    expected_length,
    matching_checksum_form,
    parse,
)

__all__ = [
    "Accepted",
    "Drop",
    "DropReason",
    "Expectations",
    "IpFacts",
    "Note",
    "ReceiveCounters",
    "validate",
]

_MULTICAST_TTL = 255


class DropReason(StrEnum):
    """Named reasons for dropping (or, for some, only noting) a received advert."""

    TOO_SHORT = "too_short"
    LENGTH = "length"
    VRID = "vrid"
    TTL = "ttl"
    VERSION = "version"
    AUTH_TYPE = "auth_type"
    AUTH = "auth"
    INTERVAL = "interval"
    TYPE = "type"
    CHECKSUM = "checksum"
    DESTINATION = "destination"
    OWN_ADDRESS = "own_address"
    OWNER_IGNORE = "owner_ignore"
    ADDR_COUNT = "addr_count"
    ADDR_MISMATCH = "addr_mismatch"
    LINK_LOCAL = "link_local"
    UNICAST_SRC = "unicast_src"


@dataclass(frozen=True, slots=True)
class IpFacts:
    """What the IP layer told us about the datagram carrying the advert."""

    src: IPAddress
    dst: IPAddress
    ttl: int
    #: payload length declared by the IP header (IPv4 tot_len - ihl, IPv6 payload length);
    #: bytes beyond it are link-layer padding. None when the socket already trimmed them.
    declared_len: int | None = None
    #: AH sequence number when the payload came out of :func:`vrrpd.ah.unwrap` (ICV, SPI and
    #: anti-replay already checked); None for a plain protocol-112 datagram.
    ah_seq: int | None = None

    @property
    def unicast(self) -> bool:
        return not self.dst.is_multicast


@dataclass(frozen=True, slots=True)
class Expectations:
    """What one instance expects of adverts for its VRID."""

    vrid: int
    version: int = 3
    family: int = 4
    interval_cs: int = 100
    addresses: tuple[IPAddress, ...] = ()
    priority: int = 100
    auth_type: AuthType = AuthType.NONE
    auth_pass: bytes = b""
    unicast: bool = False
    check_unicast_src: bool = False
    unicast_peers: frozenset[IPAddress] = frozenset()
    min_ttl: int = 0
    max_ttl: int = 255
    #: per-peer (min_ttl, max_ttl), overriding the two above for that source
    peer_ttls: Mapping[IPAddress, tuple[int, int]] = field(default_factory=dict, hash=False)
    own_addresses: frozenset[IPAddress] = frozenset()
    checksum_forms: frozenset[ChecksumForm] = DEFAULT_RX_FORMS
    checksum_any: bool = False
    owner_ignore_adverts: bool = False
    strict_addresses: bool = False


@dataclass(frozen=True, slots=True)
class Note:
    """Something wrong with an advert that was nevertheless accepted (log and count it)."""

    reason: DropReason
    detail: str


@dataclass(frozen=True, slots=True)
class Accepted:
    advert: Advert
    source: IPAddress
    checksum_form: ChecksumForm | None
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True, slots=True)
class Drop:
    reason: DropReason
    detail: str
    source: IPAddress


@dataclass(slots=True)
class ReceiveCounters:
    """Per-instance receive statistics, keyed by reason (mutable on purpose)."""

    accepted: int = 0
    priority_zero: int = 0
    drops: Counter[DropReason] = field(default_factory=Counter)
    notes: Counter[DropReason] = field(default_factory=Counter)
    checksum_forms: Counter[ChecksumForm] = field(default_factory=Counter)

    def clear(self) -> None:
        self.accepted = self.priority_zero = 0
        for counts in (self.drops, self.notes, self.checksum_forms):
            counts.clear()

    def record(self, result: Accepted | Drop) -> None:
        if isinstance(result, Drop):
            self.drops[result.reason] += 1
            return
        self.accepted += 1
        if result.advert.priority == 0:
            self.priority_zero += 1
        if result.checksum_form is not None:
            self.checksum_forms[result.checksum_form] += 1
        for note in result.notes:
            self.notes[note.reason] += 1

    def snapshot(self) -> dict[str, int]:
        """Flat name → count mapping for stats dumps and metrics."""
        out = {"accepted": self.accepted, "priority_zero": self.priority_zero}
        out.update({f"drop.{r.value}": n for r, n in self.drops.items()})
        out.update({f"note.{r.value}": n for r, n in self.notes.items()})
        out.update({f"checksum.{f.value}": n for f, n in self.checksum_forms.items()})
        return out


def _fmt(addresses: tuple[IPAddress, ...] | frozenset[IPAddress]) -> str:
    return "[" + ", ".join(str(a) for a in sorted(addresses, key=int)) + "]"


# A stage's verdict: why and what to say, or None to go on.
_Verdict = tuple[DropReason, str] | None


def validate(payload: bytes, facts: IpFacts, expect: Expectations) -> Accepted | Drop:
    """Check one received VRRP payload against an instance's expectations (order: module doc)."""
    src = facts.src

    def drop(reason: DropReason, what: str) -> Drop:
        return Drop(reason, f"advert from {src} for VRID {expect.vrid} dropped: {what}", src)

    if facts.declared_len is not None:
        if facts.declared_len > len(payload):
            return drop(
                DropReason.TOO_SHORT,
                f"IP header declares {facts.declared_len} payload bytes, got {len(payload)}",
            )
        payload = payload[: facts.declared_len]
    bad = (
        _check_header(payload, expect)
        or _check_ttl(facts, expect)
        or _check_version(payload, facts, expect)
    )
    if bad is None and payload[0] & 0x0F != ADVERT_TYPE:
        bad = DropReason.TYPE, f"type {payload[0] & 0x0F}, only 1 (ADVERTISEMENT) exists"
    if bad is not None:
        return drop(*bad)
    try:
        advert = parse(payload, family=expect.family)
    except DecodeError as exc:
        return drop(DropReason(exc.reason), exc.detail)
    notes: list[Note] = []
    if payload[0] >> 4 == 3 and advert.interval != expect.interval_cs:
        notes.append(
            Note(
                DropReason.INTERVAL,
                f"advert from {src} for VRID {expect.vrid}: interval {advert.interval} cs, "
                f"ours {expect.interval_cs} cs (learned, not dropped)",
            )
        )
    form = matching_checksum_form(
        payload,
        version=payload[0] >> 4,
        family=expect.family,
        src=src,
        dst=facts.dst,
        accept=expect.checksum_forms,
    )
    bad = (
        _check_origin(advert, form, facts, expect)
        or _check_addresses(advert, payload[3], expect, notes, src)
        or _check_unicast_src(facts, expect)
    )
    if bad is not None:
        return drop(*bad)
    return Accepted(advert=advert, source=src, checksum_form=form, notes=tuple(notes))


def _check_header(payload: bytes, expect: Expectations) -> _Verdict:
    """Size, version against the family, length for the address count, VRID."""
    if len(payload) < 8:
        return DropReason.TOO_SHORT, f"{len(payload)} bytes, a VRRP header needs 8"
    version = payload[0] >> 4
    if version not in (2, 3) or (version == 2 and expect.family == 6):
        return DropReason.VERSION, f"version {version} over IPv{expect.family} is not VRRP"
    count = payload[3]
    want = expected_length(version, expect.family, count)
    if len(payload) != want:
        return (
            DropReason.TOO_SHORT if len(payload) < want else DropReason.LENGTH,
            f"{len(payload)} bytes but v{version} with {count} IPv{expect.family} "
            f"addresses is {want} bytes",
        )
    vrid = payload[1]
    if vrid != expect.vrid:
        return DropReason.VRID, f"VRID {vrid} is not ours"
    return None


def _check_ttl(facts: IpFacts, expect: Expectations) -> _Verdict:
    """Multicast needs TTL 255; unicast the peer's (or the instance's) min_ttl..max_ttl."""
    if not facts.unicast and not expect.unicast:
        if facts.ttl != _MULTICAST_TTL:
            return DropReason.TTL, f"TTL/hop limit {facts.ttl}, multicast needs 255"
        return None
    bounds = expect.peer_ttls.get(facts.src)
    if bounds is not None:
        if not bounds[0] <= facts.ttl <= bounds[1]:
            return (
                DropReason.TTL,
                f"unicast TTL {facts.ttl} outside peer {facts.src}'s "
                f"min_ttl..max_ttl {bounds[0]}..{bounds[1]}",
            )
    elif not expect.min_ttl <= facts.ttl <= expect.max_ttl:
        return DropReason.TTL, f"unicast TTL {facts.ttl} outside {expect.min_ttl}..{expect.max_ttl}"
    return None


def _check_version(payload: bytes, facts: IpFacts, expect: Expectations) -> _Verdict:
    """The version this instance runs, and for VRRPv2 the authentication and the interval."""
    version = payload[0] >> 4
    if version != expect.version:
        return DropReason.VERSION, f"VRRPv{version}, this instance runs v{expect.version}"
    if version != 2:
        return None
    auth = payload[4]
    if auth not in tuple(AuthType):
        return DropReason.AUTH_TYPE, f"unknown auth type {auth}"
    if auth != expect.auth_type:
        return (
            DropReason.AUTH_TYPE,
            f"auth type {AuthType(auth).name}, we use {expect.auth_type.name}",
        )
    if auth == AuthType.PASS:
        ours = expect.auth_pass[:8].ljust(8, b"\x00")
        if not hmac.compare_digest(payload[len(payload) - 8 :], ours):
            return DropReason.AUTH, "PASS authentication data does not match ours"
    elif auth == AuthType.AH and facts.ah_seq is None:
        return DropReason.AUTH, "Auth Type AH but the datagram carried no checked AH"
    if payload[5] * 100 != expect.interval_cs:
        return (
            DropReason.INTERVAL,
            f"adver_int {payload[5]} s, ours {expect.interval_cs / 100:g} s "
            "(v2 requires equal intervals)",
        )
    return None


def _check_origin(
    advert: Advert, form: ChecksumForm | None, facts: IpFacts, expect: Expectations
) -> _Verdict:
    """Checksum, unicast or multicast destination, our own addresses, the owner's choice."""
    if form is None and not expect.checksum_any:
        return (
            DropReason.CHECKSUM,
            f"checksum {advert.checksum:#06x} matches none of "
            f"{sorted(f.value for f in expect.checksum_forms)} for {facts.src} -> {facts.dst}",
        )
    if facts.unicast != expect.unicast:
        return (
            DropReason.DESTINATION,
            f"sent to {'unicast' if facts.unicast else 'multicast'} {facts.dst}, this instance "
            f"is {'unicast' if expect.unicast else 'multicast'}",
        )
    if facts.src in expect.own_addresses:
        return DropReason.OWN_ADDRESS, "source is one of our own addresses (looped back)"
    if expect.owner_ignore_adverts and expect.priority == 255:
        return DropReason.OWNER_IGNORE, "we are the address owner and ignore adverts"
    return None


def _check_addresses(
    advert: Advert, count: int, expect: Expectations, notes: list[Note], src: IPAddress
) -> _Verdict:
    """The advertised addresses against ours: dropped in strict mode, else noted."""
    heard = f"advert from {src} for VRID {expect.vrid}"
    if count != len(expect.addresses):
        what = f"{count} addresses {_fmt(advert.addresses)}, we have {len(expect.addresses)}"
        if count == 0 or expect.strict_addresses:
            return DropReason.ADDR_COUNT, what
        notes.append(Note(DropReason.ADDR_COUNT, f"{heard}: {what}"))
    elif set(advert.addresses) != set(expect.addresses):
        what = f"addresses {_fmt(advert.addresses)}, ours {_fmt(expect.addresses)}"
        if expect.strict_addresses and advert.priority != 255:
            return DropReason.ADDR_MISMATCH, what
        notes.append(Note(DropReason.ADDR_MISMATCH, f"{heard}: {what}"))
    if expect.family == 6 and advert.addresses and not advert.addresses[0].is_link_local:
        # Erratum 8300: the first IPv6 address must be link-local. FRR does not do this, so
        # only strict mode drops; otherwise it is worth a log line.
        what = f"first address {advert.addresses[0]} is not link-local"
        if expect.strict_addresses:
            return DropReason.LINK_LOCAL, what
        notes.append(Note(DropReason.LINK_LOCAL, f"{heard}: {what}"))
    return None


def _check_unicast_src(facts: IpFacts, expect: Expectations) -> _Verdict:
    if expect.check_unicast_src and facts.src not in expect.unicast_peers:
        return (
            DropReason.UNICAST_SRC,
            f"source is not a unicast peer {_fmt(expect.unicast_peers)}",
        )
    return None
