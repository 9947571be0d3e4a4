"""What vrrpd knows about interfaces: only what netd publishes on ``net.link``.

The advert source is chosen as keepalived chooses it (docs/bus.md, ``net.link``): the first
IPv4 address the kernel lists as primary, or the first IPv6 link-local address that is no
longer tentative. A report from an older netd without ``primary``/``tentative`` falls back to
the first address of the family.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bus import messages
from vrrpd.packet import IPAddress

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _interfaces(texts: Iterable[Any]) -> tuple[Interface, ...]:
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_interface(str(text)))
        except ValueError:
            continue
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    ifindex: int
    up: bool
    addresses: tuple[Interface, ...] = ()
    #: IPv4 primaries in kernel order; None when netd did not say (older netd)
    primaries: tuple[Interface, ...] | None = None
    tentative: frozenset[IPAddress] = frozenset()

    @classmethod
    def from_event(cls, report: messages.LinkReport) -> Link:
        return cls(
            name=report.name,
            ifindex=report.ifindex,
            up=report.up,
            addresses=_interfaces(report.addresses),
            primaries=_interfaces(report.primary) if report.primary is not None else None,
            tentative=frozenset(i.ip for i in _interfaces(report.tentative or ())),
        )

    @property
    def ips(self) -> frozenset[IPAddress]:
        return frozenset(iface.ip for iface in self.addresses)

    @property
    def sources(self) -> tuple[object, ...]:
        """Everything the choice of an advert source depends on (to compare two reports)."""
        return (self.addresses, self.primaries, self.tentative)

    def primary(self, family: int, exclude: Iterable[IPAddress] = ()) -> IPAddress | None:
        """keepalived's choice: the first primary v4 address, or the first usable IPv6
        link-local, not a VIP."""
        skip = set(exclude) | self.tentative
        if family == 4 and self.primaries is not None:
            candidates = self.primaries
        else:
            candidates = self.addresses
        for iface in candidates:
            ip = iface.ip
            if ip.version != family or ip in skip:
                continue
            if family == 6 and not ip.is_link_local:
                continue
            return ip
        return None

    def why_no_source(self, family: int) -> str:
        """Why :meth:`primary` found nothing, for the operator."""
        if not self.up:
            return f"interface {self.name} is down"
        if family == 6:
            waiting = sorted(str(ip) for ip in self.tentative if ip.is_link_local)
            if waiting:
                return f"link-local {', '.join(waiting)} on {self.name} is tentative (DAD)"
            return f"no IPv6 link-local address on {self.name}"
        return f"no IPv4 address on {self.name}"
