"""The addresses this host has, for ``ha_suspend``, from netd's ``net.link.<ifname>`` reports.

keepalived suspends a virtual server's checkers while none of its addresses is configured on
the host: its checker process follows the kernel's address notifications (netlink), whoever
added the address - a VRRP master, ``static_ipaddress``, an operator. netd is the one process
that reads the kernel (docs/design.md, "Who owns what"), and each ``net.link`` report lists every
address of the link (docs/bus.md), so this is the same source: an address counts once it is
installed, not when a VRRP instance announces MASTER, and addresses no VRRP instance owns count
too. A link reported down counts as holding none: netd reports a removed link as down with
the addresses it last had, and an address on a down link serves nobody.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import structlog

from bus import MessageRejected, messages

log = structlog.get_logger(__name__)


class LocalAddresses:
    def __init__(self) -> None:
        self._links: dict[str, frozenset[str]] = {}

    def update(self, topic: str, body: Mapping[str, Any]) -> frozenset[str] | None:
        """Take one ``net.link.<ifname>`` report; every address the host has now, or None
        when the report is unusable (logged; what was known stays)."""
        try:
            report = messages.LinkReport.decode(topic, body)
            addresses = frozenset(_address(cidr) for cidr in report.addresses)
        except (MessageRejected, ValueError) as exc:
            log.warning("checkd.link.rejected", topic=topic, error=str(exc))
            return None
        self._links[report.name] = addresses if report.up else frozenset()
        return self.held

    @property
    def held(self) -> frozenset[str]:
        return frozenset().union(*self._links.values())


def _address(cidr: str) -> str:
    """``2001:DB8::1/64`` -> ``2001:db8::1``: the text ``ipaddress`` gives the plan's too."""
    return str(ipaddress.ip_interface(cidr).ip)
