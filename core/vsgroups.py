"""A ``virtual_server_group``'s lines as address ranges and fwmarks, as keepalived reads them.

checkd plans a check per group member from these and netd programs them into its datapath,
so both expand a group the same way, here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from core.errors import CoreError
from core.model import VsgEntry

__all__ = ["GroupEntryError", "VsgMember", "expand_group"]


class GroupEntryError(CoreError, ValueError):
    """A virtual_server_group line that is no address, range or network."""


@dataclass(frozen=True, slots=True)
class VsgMember:
    """One expanded virtual_server_group line: an address range with a port, or a fwmark."""

    first: str | None = None
    last: str | None = None
    port: int | None = None
    fwmark: int | None = None
    family: str | None = None

    @property
    def count(self) -> int:
        if self.first is None or self.last is None:
            return 1
        return int(ipaddress.ip_address(self.last)) - int(ipaddress.ip_address(self.first)) + 1

    def addresses(self) -> Iterator[str]:
        if self.first is None or self.last is None:
            return
        start = ipaddress.ip_address(self.first)
        for i in range(self.count):
            yield str(start + i)


def expand_group(entries: tuple[VsgEntry, ...]) -> tuple[VsgMember, ...]:
    """The lines of a virtual_server_group as address ranges, keepalived's three spellings.

    ``A/len`` is the whole network (host bits must be zero); ``A-B`` with a full end address is
    that range; ``A-N`` replaces the last IPv4 byte (or the last IPv6 16-bit group, in hex).
    """
    return tuple(_expand_entry(e) for e in entries)


def _expand_entry(e: VsgEntry) -> VsgMember:
    if e.fwmark is not None:
        return VsgMember(fwmark=e.fwmark, family=e.family)
    text = e.address or ""
    try:
        first, last = _range(text)
    except ValueError as exc:
        raise GroupEntryError(f"virtual_server_group entry {text!r}: {exc}") from None
    if int(last) < int(first):
        raise GroupEntryError(
            f"virtual_server_group entry {text!r}: range end is less than range start"
        )
    return VsgMember(first=str(first), last=str(last), port=e.port)


def _range(
    text: str,
) -> tuple[
    ipaddress.IPv4Address | ipaddress.IPv6Address, ipaddress.IPv4Address | ipaddress.IPv6Address
]:
    if "/" in text:
        net = ipaddress.ip_network(text, strict=True)
        return net.network_address, net.broadcast_address
    if "-" not in text:
        addr = ipaddress.ip_address(text)
        return addr, addr
    base_text, end_text = text.split("-", 1)
    base = ipaddress.ip_address(base_text)
    if "." in end_text or ":" in end_text:
        end = ipaddress.ip_address(end_text)
        if end.version != base.version:
            raise ValueError("range address families do not match")
        return base, end
    if not end_text.isalnum():
        raise ValueError(f"invalid range end {end_text!r}")
    if base.version == 4:
        last_byte = int(end_text, 10)
        if not 0 <= last_byte <= 255 or last_byte <= int(base) & 0xFF:
            raise ValueError("range end is not greater than range start")
        return base, ipaddress.ip_address((int(base) & ~0xFF) | last_byte)
    last_group = int(end_text, 16)
    if not 0 <= last_group <= 0xFFFF or last_group <= int(base) & 0xFFFF:
        raise ValueError("range end is not greater than range start")
    return base, ipaddress.ip_address((int(base) & ~0xFFFF) | last_group)
