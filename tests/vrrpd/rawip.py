"""IPv4 datagrams as a raw protocol-112 socket hands them to vrrpd, built by hand for the
receive-path tests (the kernel has already checked the header checksum; validation never
reads it, so it is left as a value that changes with the identification)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

__all__ = ["ipv4_datagram"]

DONT_FRAGMENT = 0x4000


def ipv4_datagram(
    payload: bytes,
    src: IPv4Address,
    dst: IPv4Address,
    *,
    ttl: int = 255,
    ident: int = 0,
    flags: int = 0,
    padding: bytes = b"",
) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0xC0,
        20 + len(payload),
        ident,
        flags,
        ttl,
        112,
        ident ^ 0xFFFF,
        src.packed,
        dst.packed,
    )
    return header + payload + padding
