"""What vrrpd knows about interfaces: only what netd publishes on ``net.link``."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from bus import messages
from vrrpd.packet import IPAddress


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    ifindex: int
    up: bool
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = ()

    @classmethod
    def from_event(cls, report: messages.LinkReport) -> Link:
        addrs = []
        for text in report.addresses:
            try:
                addrs.append(ipaddress.ip_interface(text))
            except ValueError:
                continue
        return cls(
            name=report.name,
            ifindex=report.ifindex,
            up=report.up,
            addresses=tuple(addrs),
        )

    @property
    def ips(self) -> frozenset[IPAddress]:
        return frozenset(iface.ip for iface in self.addresses)

    def primary(self, family: int, exclude: Iterable[IPAddress] = ()) -> IPAddress | None:
        """keepalived's choice: the first v4 address, or the IPv6 link-local, not a VIP."""
        skip = set(exclude)
        for iface in self.addresses:
            ip = iface.ip
            if ip.version != family or ip in skip:
                continue
            if family == 6 and not ip.is_link_local:
                continue
            return ip
        return None
