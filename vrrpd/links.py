"""What vrrpd knows about interfaces: only what netd publishes on ``net.link``."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vrrpd.packet import IPAddress


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    ifindex: int
    up: bool
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = ()

    @classmethod
    def from_event(cls, body: Mapping[str, Any]) -> Link:
        addrs = []
        for text in body.get("addresses", ()):
            try:
                addrs.append(ipaddress.ip_interface(str(text)))
            except ValueError:
                continue
        return cls(
            name=str(body["name"]),
            ifindex=int(body["ifindex"]),
            up=bool(body["up"]),
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
