"""VRRPv2 IPsec-AH authentication as keepalived does it (``auth_type AH``), IPv4 only.

keepalived sends the whole IPv4 datagram itself (IP_HDRINCL): IP header (TOS 0xC0, TTL 255,
protocol 51), a 24-byte AH header, then the VRRPv2 message with Auth Type 2 and a zero 8-byte
auth field. The AH header is: next header 112, payload length 4, reserved 0, SPI = the sender's
IPv4 source address, a sequence number incremented for every advert, and a 12-byte ICV =
HMAC-MD5-96 keyed with the 8-byte zero-padded ``auth_pass``. The ICV covers the datagram with
TOS, fragment offset, IP checksum and ICV zeroed; TTL is zeroed too **only for unicast** (unlike
RFC 4302, which always zeroes it, so a generic IPsec stack cannot check keepalived's multicast
AH). On receive the SPI must equal the IP source and the sequence number must be greater than
the last one accepted (anti-replay).

A driver with an ``auth_type AH`` instance opens a raw socket for protocol 51, calls
:func:`unwrap` on each datagram, then hands the returned VRRP payload to
:func:`vrrpd.validate.validate` with ``IpFacts(ah_seq=...)`` so validation knows the AH check
passed. To send, :func:`wrap` builds the full datagram (the kernel recomputes the IP checksum).
:class:`AhSession` keeps one instance's state for both directions, as keepalived does.
keepalived itself calls AH "not recommended"; it is here for drop-in compatibility only.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from vrrpd.errors import DecodeError
from vrrpd.packet import IPPROTO_VRRP, internet_checksum

__all__ = [
    "AH_LEN",
    "IPPROTO_AH",
    "AhError",
    "AhSession",
    "Unwrapped",
    "unwrap",
    "wrap",
]

IPPROTO_AH = 51
AH_LEN = 24
_ICV_LEN = 12
_AH_PAYLOAD_LEN = 4  # (24 bytes / 4) - 2, RFC 4302 §2.2
_IP = struct.Struct("!BBHHHBBH4s4s")
_AH = struct.Struct("!BBHII")
_TOS = 0xC0


class AhError(DecodeError):
    """An AH-wrapped advert failed authentication (bad ICV, SPI or a replayed sequence)."""

    reason = "auth"


@dataclass(frozen=True, slots=True)
class Unwrapped:
    payload: bytes
    seq: int
    src: IPv4Address
    dst: IPv4Address
    ttl: int


def _key(auth_pass: bytes) -> bytes:
    return auth_pass[:8].ljust(8, b"\x00")


def _icv(datagram: bytes, key: bytes, *, unicast: bool) -> bytes:
    buf = bytearray(datagram)
    buf[1] = 0  # TOS
    buf[6:8] = b"\x00\x00"  # flags + fragment offset
    buf[10:12] = b"\x00\x00"  # IP header checksum
    if unicast:
        buf[8] = 0  # TTL: keepalived zeroes it only for unicast peers
    ihl = (buf[0] & 0x0F) * 4
    buf[ihl + 12 : ihl + AH_LEN] = bytes(_ICV_LEN)
    return hmac.new(key, bytes(buf), hashlib.md5).digest()[:_ICV_LEN]


def wrap(
    vrrp_payload: bytes,
    *,
    src: IPv4Address,
    dst: IPv4Address,
    auth_pass: bytes,
    seq: int,
    ip_id: int,
    ttl: int = 255,
    unicast: bool = False,
) -> bytes:
    """Full IPv4 datagram carrying ``vrrp_payload`` (already encoded with Auth Type AH)."""
    total = 20 + AH_LEN + len(vrrp_payload)
    header = _IP.pack(
        0x45, _TOS, total, ip_id & 0xFFFF, 0, ttl, IPPROTO_AH, 0, src.packed, dst.packed
    )
    ah = _AH.pack(IPPROTO_VRRP, _AH_PAYLOAD_LEN, 0, int(src), seq & 0xFFFFFFFF) + bytes(_ICV_LEN)
    datagram = header + ah + vrrp_payload
    icv = _icv(datagram, _key(auth_pass), unicast=unicast)
    datagram = datagram[:32] + icv + datagram[44:]
    # The kernel fills the IP checksum for IP_HDRINCL anyway; filling it here keeps frames valid
    # for AF_PACKET injection and test tools. It is zeroed before the ICV, so order is free.
    checksum = internet_checksum(datagram[:20])
    return datagram[:10] + checksum.to_bytes(2, "big") + datagram[12:]


def unwrap(datagram: bytes, *, auth_pass: bytes, last_seq: int, unicast: bool = False) -> Unwrapped:
    """Check an AH-wrapped advert; returns the VRRP payload and the sequence to remember."""
    if len(datagram) < 20:
        raise AhError(f"{len(datagram)} bytes, shorter than an IPv4 header")
    ihl = (datagram[0] & 0x0F) * 4
    if datagram[0] >> 4 != 4 or ihl < 20 or len(datagram) < ihl + AH_LEN:
        raise AhError(f"{len(datagram)} bytes, not an IPv4 datagram with an AH header")
    src = IPv4Address(datagram[12:16])
    dst = IPv4Address(datagram[16:20])
    if datagram[9] != IPPROTO_AH:
        raise AhError(f"IP protocol {datagram[9]} from {src}, AH is 51")
    total = int.from_bytes(datagram[2:4], "big")
    if total > len(datagram) or total < ihl + AH_LEN:
        raise AhError(f"IP total length {total} but {len(datagram)} bytes from {src}")
    datagram = datagram[:total]
    next_header, _plen, _res, spi, seq = _AH.unpack_from(datagram, ihl)
    received = datagram[ihl + 12 : ihl + AH_LEN]
    if not hmac.compare_digest(received, _icv(datagram, _key(auth_pass), unicast=unicast)):
        raise AhError(f"IPSEC-AH ICV from {src} does not match (mutated fields or bad password)")
    if spi != int(src):
        raise AhError(f"IPSEC-AH SPI {IPv4Address(spi)} is not the source address {src}")
    if seq <= last_seq:
        raise AhError(f"IPSEC-AH sequence {seq} from {src} already seen (last {last_seq})")
    if next_header != IPPROTO_VRRP:
        raise AhError(f"AH next header {next_header} from {src}, VRRP is 112")
    return Unwrapped(
        payload=bytes(datagram[ihl + AH_LEN :]), seq=seq, src=src, dst=dst, ttl=datagram[8]
    )


_SEQ_MAX = 0xFFFFFFFE  # keepalived stops counting here ("cycled") rather than wrapping to 0


@dataclass(slots=True)
class AhSession:
    """One AH instance's sequence counter and IP id (mutable on purpose).

    keepalived keeps a single counter per instance for both directions: every accepted advert
    raises it to the sender's sequence number and every sent advert uses counter + 1. So a
    router that takes over continues above the sequence of the master it replaces, and a
    restarted peer (counting from 1 again) is dropped as a replay until it has seen ours.
    """

    auth_pass: bytes
    src: IPv4Address
    unicast: bool = False
    seq: int = 0
    ip_id: int = 0
    #: ``unicast_ttl`` (multicast adverts always go out with 255)
    ttl: int = 255

    def seal(self, vrrp_payload: bytes, dsts: tuple[IPv4Address, ...]) -> list[bytes]:
        """One advert round: a datagram per destination, all with the same sequence and id."""
        if self.seq < _SEQ_MAX:
            self.seq += 1
        self.ip_id = self.ip_id % 0xFFFF + 1  # 1..65535: an id of 0 lets the kernel pick one
        return [
            wrap(
                vrrp_payload,
                src=self.src,
                dst=dst,
                auth_pass=self.auth_pass,
                seq=self.seq,
                ip_id=self.ip_id,
                unicast=self.unicast,
                ttl=self.ttl if self.unicast else 255,
            )
            for dst in dsts
        ]

    def open(self, datagram: bytes) -> Unwrapped:
        """Check a received datagram (:func:`unwrap`) and remember its sequence number."""
        got = unwrap(datagram, auth_pass=self.auth_pass, last_seq=self.seq, unicast=self.unicast)
        self.seq = got.seq
        return got
