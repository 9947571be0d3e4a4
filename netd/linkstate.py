"""What netd knows and publishes about one interface (``net.link.<ifname>``).

Pure bookkeeping, apart from the kernel and the bus. Addresses are kept in the kernel's own
order (a dump lists primaries first; a new address is appended, as the kernel appends it
after the existing ones of its scope) with the two IFA_F_* facts vrrpd needs to pick an
advert source the way keepalived does:

* ``primary`` — the IPv4 addresses without IFA_F_SECONDARY, in kernel order: the first one
  that is not a VIP is what keepalived sends from, never a secondary that merely sorts lower;
* ``tentative`` — the IPv6 addresses still in duplicate address detection (or whose DAD
  failed): a socket cannot bind to them, so vrrpd waits for the kernel to clear the flag.

Both change without an address coming or going (the kernel promotes a secondary when the
primary is deleted; DAD ends), so a flag change is a change of the link.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from bus import messages
from netd.monitor import AddrEvent, LinkEvent

__all__ = ["AddrFacts", "LinkState"]


@dataclass(frozen=True, slots=True)
class AddrFacts:
    """The published facts of one address on a link."""

    family: int
    primary: bool
    tentative: bool

    @classmethod
    def of(cls, ev: AddrEvent) -> AddrFacts:
        return cls(ev.family, ev.primary, ev.family == socket.AF_INET6 and ev.tentative)


@dataclass(slots=True)
class LinkState:
    ifindex: int
    name: str
    up: bool
    mac: str | None
    oper_state: str | None
    #: ``ip/len`` -> facts, in the kernel's order (dict insertion order)
    addresses: dict[str, AddrFacts] = field(default_factory=dict)

    @classmethod
    def from_event(cls, ev: LinkEvent) -> LinkState:
        return cls(ev.ifindex, ev.ifname or str(ev.ifindex), ev.usable, ev.mac, ev.oper_state)

    def observe(self, ev: AddrEvent) -> bool:
        """Apply one address event; True when what ``body`` publishes changed."""
        cidr = f"{ev.ip}/{ev.prefix}"
        if not ev.added:
            return self.addresses.pop(cidr, None) is not None
        facts = AddrFacts.of(ev)
        if self.addresses.get(cidr) == facts:
            return False
        self.addresses[cidr] = facts
        return True

    def primary(self) -> list[str]:
        """IPv4 primaries in kernel order (the first is keepalived's advert source)."""
        return [
            cidr for cidr, f in self.addresses.items() if f.family == socket.AF_INET and f.primary
        ]

    def tentative(self) -> list[str]:
        return sorted(cidr for cidr, f in self.addresses.items() if f.tentative)

    def link_local(self, *, tentative: bool = False) -> str | None:
        """The first IPv6 link-local address in kernel order; a tentative one only if
        ``tentative`` and no usable one exists."""
        local = [(cidr, f) for cidr, f in self.addresses.items() if cidr.startswith("fe80:")]
        usable = next((cidr for cidr, f in local if not f.tentative), None)
        if usable is None and tentative and local:
            return local[0][0]
        return usable

    def report(self) -> messages.LinkReport:
        return messages.LinkReport(
            ifindex=self.ifindex,
            name=self.name,
            up=self.up,
            mac=self.mac,
            oper_state=self.oper_state,
            # sorted, as ever: a reader that only wants membership needs no order
            addresses=tuple(sorted(self.addresses)),
            primary=tuple(self.primary()),
            tentative=tuple(self.tentative()),
        )
