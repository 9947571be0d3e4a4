"""VRRP advertisement codec (RFC 3768 v2, RFC 5798/9568 v3; IPv4 and IPv6), written with struct.

This module only turns the VRRP *payload* (what follows the IP header) into an :class:`Advert`
and back. The IP header itself is the raw socket's business; the checksum forms that need IP
facts (the v3 pseudo-headers) take the source and destination addresses as arguments.

Checksum forms (see :class:`ChecksumForm`):

* v2: Internet checksum over the whole message including the 8 auth bytes. No choice.
* v3 over IPv6: always the RFC 8200 pseudo-header form (``PSEUDO``).
* v3 over IPv4: ``PSEUDO`` (RFC 5798 reading; keepalived and FRR default, our send default),
  ``MESSAGE`` (RFC 9568 §5.2.8; keepalived ``v3_checksum_as_v2``, Cisco, Juniper) or
  ``OLD_UNICAST`` (keepalived <= 1.3.6 unicast: the pseudo-header names 224.0.0.18 as destination
  even though the packet went to a unicast peer; keepalived ``old_unicast_checksum``).

Hot path: a driver builds a :class:`PreparedAdvert` once with :func:`prepare` and sends
``prepared.wire`` on every advert timer. Only a priority change or an address-set change needs a
new one: :meth:`PreparedAdvert.with_priority` patches the priority byte and updates the checksum
incrementally (RFC 1624), which is how keepalived does it too; a new address set needs
:func:`prepare` again. Unicast senders whose pseudo-header depends on the peer keep one
``PreparedAdvert`` per peer.

Receiving: :func:`parse` checks structure only; :func:`matching_checksum_form` tells which accepted
checksum form (if any) the bytes satisfy; :func:`decode` does both and raises a typed
:class:`vrrpd.errors.DecodeError`. Receive *policy* (TTL, VRID, auth, interval...) lives in
:mod:`vrrpd.validate`.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum, IntEnum
from ipaddress import IPv4Address, IPv6Address

from vrrpd.errors import (
    BadChecksumError,
    BadIntervalError,
    BadLengthError,
    BadTypeError,
    BadVersionError,
    EncodeError,
    TooShortError,
)

__all__ = [
    "ADVERT_TYPE",
    "DEFAULT_RX_FORMS",
    "IPPROTO_VRRP",
    "MCAST_V4",
    "MCAST_V6",
    "Advert",
    "AuthType",
    "ChecksumForm",
    "IPAddress",
    "PreparedAdvert",
    "compute_checksum",
    "decode",
    "encode",
    "expected_length",
    "internet_checksum",
    "matching_checksum_form",
    "parse",
    "prepare",
]

IPAddress = IPv4Address | IPv6Address

IPPROTO_VRRP = 112
ADVERT_TYPE = 1
MCAST_V4 = IPv4Address("224.0.0.18")
MCAST_V6 = IPv6Address("ff02::12")

_HEADER = struct.Struct("!BBBBBBH")  # v2: ver/type, vrid, prio, count, authtype, adver_int, cksum
_HEADER_V3 = struct.Struct("!BBBBHH")  # v3: ver/type, vrid, prio, count, rsvd|max_adver_int, cksum
_HEADER_LEN = 8
_AUTH_LEN = 8
_LITTLE_ENDIAN = sys.byteorder == "little"


class AuthType(IntEnum):
    """VRRPv2 Auth Type field (RFC 2338 values; RFC 3768 keeps only NONE)."""

    NONE = 0
    PASS = 1
    AH = 2


class ChecksumForm(Enum):
    """Which bytes a VRRP checksum covers (see the module docstring)."""

    # Members are singletons compared by identity: hashed by it too, in C (Enum's own
    # __hash__ is a Python call, and every advert received is counted by its form).
    __hash__ = object.__hash__

    PSEUDO = "pseudo"
    MESSAGE = "message"
    OLD_UNICAST = "old_unicast"


#: What a receiver accepts for v3/IPv4 by default: both readings of the RFC.
DEFAULT_RX_FORMS: frozenset[ChecksumForm] = frozenset({ChecksumForm.PSEUDO, ChecksumForm.MESSAGE})


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP ADVERTISEMENT as carried on the wire.

    ``interval`` is in the version's own unit: whole **seconds** (Adver Int) for v2,
    **centiseconds** (Max Advertise Interval) for v3; :attr:`interval_cs` normalises it.
    ``family`` (4 or 6) is needed because an advert with no addresses does not reveal it.
    ``auth_type``/``auth_data`` only exist in v2 (``auth_type`` is a plain int when the type is
    unknown); ``auth_data`` is the raw 8-byte trailer.
    ``checksum`` is the value seen on the wire after :func:`parse`, or 0 for a locally built advert.
    """

    version: int
    vrid: int
    priority: int
    addresses: tuple[IPAddress, ...]
    interval: int
    family: int = 4
    auth_type: AuthType | int = AuthType.NONE
    auth_data: bytes = bytes(_AUTH_LEN)
    checksum: int = 0

    @property
    def interval_cs(self) -> int:
        """Advertisement interval in centiseconds whatever the version."""
        return self.interval * 100 if self.version == 2 else self.interval

    @property
    def count(self) -> int:
        return len(self.addresses)


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum: one's complement of the one's-complement sum of 16-bit words."""
    return ~_ones_sum(data) & 0xFFFF


def _ones_sum(data: bytes) -> int:
    # Summing native-order words and swapping once at the end gives the same result as summing
    # network-order words (RFC 1071 §2(B)); the C-level sum() over a memoryview is much faster
    # than unpacking words one by one.
    if len(data) & 1:
        data = data + b"\x00"
    total = sum(memoryview(data).cast("H"))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    if _LITTLE_ENDIAN:
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def _pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
        return src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)
    if isinstance(src, IPv6Address) and isinstance(dst, IPv6Address):
        return src.packed + dst.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)
    raise EncodeError(f"pseudo-header needs two addresses of one family, got {src} and {dst}")


def compute_checksum(
    message: bytes,
    *,
    version: int,
    family: int,
    form: ChecksumForm = ChecksumForm.PSEUDO,
    src: IPAddress | None = None,
    dst: IPAddress | None = None,
) -> int:
    """Checksum of ``message`` (its checksum field is ignored, i.e. treated as zero)."""
    zeroed = message[:6] + b"\x00\x00" + message[8:]
    if version == 2:
        return internet_checksum(zeroed)
    if family == 6:
        if form is not ChecksumForm.PSEUDO:
            raise EncodeError(f"VRRPv3 over IPv6 has only the pseudo-header checksum, not {form}")
        if src is None:
            raise EncodeError("VRRPv3 IPv6 checksum needs the source (link-local) address")
        return internet_checksum(_pseudo_header(src, dst or MCAST_V6, len(message)) + zeroed)
    if form is ChecksumForm.MESSAGE:
        return internet_checksum(zeroed)
    if src is None:
        raise EncodeError("VRRPv3 IPv4 pseudo-header checksum needs the source address")
    pseudo_dst = MCAST_V4 if form is ChecksumForm.OLD_UNICAST or dst is None else dst
    return internet_checksum(_pseudo_header(src, pseudo_dst, len(message)) + zeroed)


def matching_checksum_form(
    payload: bytes,
    *,
    version: int,
    family: int,
    src: IPAddress | None,
    dst: IPAddress | None,
    accept: Iterable[ChecksumForm] = DEFAULT_RX_FORMS,
) -> ChecksumForm | None:
    """Return the first accepted form the payload's checksum satisfies, or None.

    For v2 and for v3/IPv6 the form is fixed (MESSAGE and PSEUDO respectively), whatever
    ``accept`` says, because no alternative exists on the wire.
    """
    if version == 2:
        return ChecksumForm.MESSAGE if _ones_sum(payload) == 0xFFFF else None
    if family == 6:
        if src is None:
            return None
        pseudo = _pseudo_header(src, dst or MCAST_V6, len(payload))
        return ChecksumForm.PSEUDO if _ones_sum(pseudo + payload) == 0xFFFF else None
    # Fixed order so the answer does not depend on set iteration order.
    for form in (ChecksumForm.PSEUDO, ChecksumForm.MESSAGE, ChecksumForm.OLD_UNICAST):
        if form not in accept:
            continue
        if form is ChecksumForm.MESSAGE:
            data = payload
        else:
            if src is None:
                continue
            pseudo_dst = MCAST_V4 if form is ChecksumForm.OLD_UNICAST or dst is None else dst
            data = _pseudo_header(src, pseudo_dst, len(payload)) + payload
        if _ones_sum(data) == 0xFFFF:
            return form
    return None


def expected_length(version: int, family: int, count: int) -> int:
    """Exact VRRP payload length for this version/family/address count."""
    size = 4 if family == 4 else 16
    return _HEADER_LEN + count * size + (_AUTH_LEN if version == 2 else 0)


def parse(payload: bytes, *, family: int = 4) -> Advert:
    """Decode the structure of a VRRP payload without checking the checksum.

    Raises (in this order): TooShortError (< 8 bytes), BadVersionError, TooShortError or
    BadLengthError (length does not match the address count), BadTypeError, BadIntervalError
    (v3 interval 0). A count of 0 is *not* an error here; whether to accept it is receive policy.
    """
    if len(payload) < _HEADER_LEN:
        raise TooShortError(f"{len(payload)} bytes, a VRRP header needs {_HEADER_LEN}")
    ver_type = payload[0]
    version, type_ = ver_type >> 4, ver_type & 0x0F
    if version not in (2, 3):
        raise BadVersionError(f"version {version} (only 2 and 3 exist)")
    if version == 2 and family == 6:
        raise BadVersionError("VRRPv2 over IPv6 does not exist")
    count = payload[3]
    want = expected_length(version, family, count)
    if len(payload) < want:
        raise TooShortError(
            f"{len(payload)} bytes, v{version} with {count} IPv{family} addresses needs {want}"
        )
    if len(payload) > want:
        raise BadLengthError(
            f"{len(payload)} bytes, v{version} with {count} IPv{family} addresses is {want}"
        )
    if type_ != ADVERT_TYPE:
        raise BadTypeError(f"type {type_} (only 1 = ADVERTISEMENT exists)")
    if version == 2:
        _, vrid, priority, _, auth, interval, checksum = _HEADER.unpack_from(payload)
        auth_data = bytes(payload[want - _AUTH_LEN : want])
        auth_type: AuthType | int
        try:
            auth_type = AuthType(auth)
        except ValueError:
            # Unknown auth types still decode so the validator can report them by number.
            auth_type = auth
    else:
        _, vrid, priority, _, word, checksum = _HEADER_V3.unpack_from(payload)
        interval = word & 0x0FFF  # the top 4 bits are reserved: ignore them on receive
        if interval == 0:
            raise BadIntervalError("Max Advertise Interval 0 (must be 1..4095 cs)")
        auth_type, auth_data = AuthType.NONE, bytes(_AUTH_LEN)
    addresses: tuple[IPAddress, ...]
    if family == 4:
        addresses = tuple(
            IPv4Address(payload[i : i + 4]) for i in range(_HEADER_LEN, _HEADER_LEN + 4 * count, 4)
        )
    else:
        addresses = tuple(
            IPv6Address(payload[i : i + 16])
            for i in range(_HEADER_LEN, _HEADER_LEN + 16 * count, 16)
        )
    return Advert(
        version=version,
        vrid=vrid,
        priority=priority,
        addresses=addresses,
        interval=interval,
        family=family,
        auth_type=auth_type,
        auth_data=auth_data,
        checksum=checksum,
    )


def decode(
    payload: bytes,
    *,
    family: int = 4,
    src: IPAddress | None = None,
    dst: IPAddress | None = None,
    accept: Iterable[ChecksumForm] = DEFAULT_RX_FORMS,
) -> Advert:
    """:func:`parse` plus checksum check; raises BadChecksumError when no accepted form fits."""
    advert = parse(payload, family=family)
    form = matching_checksum_form(
        payload, version=advert.version, family=family, src=src, dst=dst, accept=accept
    )
    if form is None:
        raise BadChecksumError(
            f"checksum {advert.checksum:#06x} matches none of "
            f"{sorted(f.value for f in accept)} (src {src}, dst {dst})"
        )
    return advert


def _check_encodable(advert: Advert) -> None:
    if advert.version not in (2, 3):
        raise EncodeError(f"version {advert.version} is not 2 or 3")
    if advert.family not in (4, 6):
        raise EncodeError(f"family {advert.family} is not 4 or 6")
    if advert.version == 2 and advert.family == 6:
        raise EncodeError("VRRPv2 cannot carry IPv6")
    if not 1 <= advert.vrid <= 255:
        raise EncodeError(f"VRID {advert.vrid} outside 1..255")
    if not 0 <= advert.priority <= 255:
        raise EncodeError(f"priority {advert.priority} outside 0..255")
    if len(advert.addresses) > 255:
        raise EncodeError(f"{len(advert.addresses)} addresses, at most 255 fit")
    want = IPv4Address if advert.family == 4 else IPv6Address
    for address in advert.addresses:
        if not isinstance(address, want):
            raise EncodeError(f"{address} is not IPv{advert.family}")
    limit = 255 if advert.version == 2 else 4095
    if not 1 <= advert.interval <= limit:
        raise EncodeError(f"interval {advert.interval} outside 1..{limit} for v{advert.version}")


def encode(
    advert: Advert,
    *,
    src: IPAddress | None = None,
    dst: IPAddress | None = None,
    form: ChecksumForm = ChecksumForm.PSEUDO,
) -> bytes:
    """Serialise ``advert`` (its ``checksum`` field is ignored and recomputed).

    ``src``/``dst`` are the IP source and destination (``dst`` defaults to the VRRP multicast
    group); they are only needed for the v3 pseudo-header forms. For v2, PASS auth puts the
    first 8 bytes of ``auth_data`` (zero-padded) in the trailer; NONE and AH send zeros.
    """
    _check_encodable(advert)
    addrs = b"".join(a.packed for a in advert.addresses)
    if advert.version == 2:
        trailer = (
            advert.auth_data[:_AUTH_LEN].ljust(_AUTH_LEN, b"\x00")
            if advert.auth_type == AuthType.PASS
            else bytes(_AUTH_LEN)
        )
        head = _HEADER.pack(
            0x21,
            advert.vrid,
            advert.priority,
            len(advert.addresses),
            int(advert.auth_type),
            advert.interval,
            0,
        )
        message = head + addrs + trailer
    else:
        head = _HEADER_V3.pack(
            0x31, advert.vrid, advert.priority, len(advert.addresses), advert.interval, 0
        )
        message = head + addrs
    checksum = compute_checksum(
        message, version=advert.version, family=advert.family, form=form, src=src, dst=dst
    )
    return message[:6] + checksum.to_bytes(2, "big") + message[8:]


@dataclass(frozen=True, slots=True)
class PreparedAdvert:
    """Encoded advert bytes ready to send again and again (``wire``)."""

    advert: Advert
    wire: bytes
    src: IPAddress | None
    dst: IPAddress | None
    form: ChecksumForm

    @property
    def priority(self) -> int:
        return self.wire[2]

    def with_priority(self, priority: int) -> PreparedAdvert:
        """Same advert with another priority (e.g. 0 to resign), checksum updated per RFC 1624."""
        if not 0 <= priority <= 255:
            raise EncodeError(f"priority {priority} outside 0..255")
        if priority == self.wire[2]:
            return self
        old_word = (self.wire[2] << 8) | self.wire[3]
        new_word = (priority << 8) | self.wire[3]
        old_sum = int.from_bytes(self.wire[6:8], "big")
        # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
        total = (~old_sum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        checksum = ~total & 0xFFFF
        wire = self.wire[:2] + bytes((priority,)) + self.wire[3:6]
        wire += checksum.to_bytes(2, "big") + self.wire[8:]
        return replace(self, advert=replace(self.advert, priority=priority), wire=wire)


def prepare(
    advert: Advert,
    *,
    src: IPAddress | None = None,
    dst: IPAddress | None = None,
    form: ChecksumForm = ChecksumForm.PSEUDO,
) -> PreparedAdvert:
    """Encode once for repeated sending from ``src`` to ``dst`` with checksum form ``form``."""
    wire = encode(advert, src=src, dst=dst, form=form)
    return PreparedAdvert(
        advert=replace(advert, checksum=int.from_bytes(wire[6:8], "big")),
        wire=wire,
        src=src,
        dst=dst,
        form=form,
    )
