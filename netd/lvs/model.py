"""The desired state of the LVS datapath: virtual servers as the kernel should forward them.

Pure data with validation; no I/O. keepalived's ``virtual_server`` blocks map onto these (the
daemon builds them from the configuration and the checkers' verdicts): a service is an
``address · protocol · port`` or a firewall mark, each member a real server with a weight
(0 = inhibited: no new connections, established and persistent clients kept), and when the
quorum is lost the ``sorry_server`` replaces the whole pool (``sorry_active``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from netd.errors import LvsConfigError

__all__ = [
    "FALLBACK_SCHEDULERS",
    "SCHEDULERS",
    "SERVICE_FLAGS",
    "Forwarding",
    "Member",
    "Persistence",
    "Service",
    "VirtualServer",
]

#: keepalived's ``lvs_sched`` values this datapath implements as IPVS does.
SCHEDULERS: Final = frozenset({"rr", "wrr", "sh", "mh", "dh", "fo", "lc", "wlc", "sed", "nq"})
#: Schedulers that need per-server connection counts, which nftables does not keep: they fall
#: back to a weighted random choice (see docs/lvs.md).
FALLBACK_SCHEDULERS: Final = frozenset({"lc", "wlc", "sed", "nq", "lblc", "lblcr", "ovf", "twos"})
PROTOCOLS: Final = {"tcp": 6, "udp": 17, "sctp": 132}
#: keepalived's virtual_server flag keywords (IPVS service flags; nftables ignores them).
SERVICE_FLAGS: Final = frozenset(
    {
        "hashed",
        "ops",
        "flag-1",
        "flag-2",
        "flag-3",
        "sh-port",
        "sh-fallback",
        "mh-port",
        "mh-fallback",
    }
)


class Forwarding(Enum):
    NAT = "NAT"
    DR = "DR"
    TUN = "TUN"


@dataclass(frozen=True, slots=True, order=True)
class Service:
    """What a client addresses: ``address`` · ``protocol`` · ``port``, or a firewall ``fwmark``
    (with the address family in ``family``)."""

    address: str | None = None
    protocol: str = "tcp"
    port: int = 0
    fwmark: int | None = None
    family: int = 4

    def __post_init__(self) -> None:
        if self.fwmark is not None:
            if not 0 < self.fwmark < 2**32:
                raise LvsConfigError(f"fwmark {self.fwmark}: must be 1..4294967295")
            if self.address is not None:
                raise LvsConfigError("a service is an address or a fwmark, not both")
            if self.family not in (4, 6):
                raise LvsConfigError(f"fwmark {self.fwmark}: family must be 4 or 6")
            return
        if self.address is None:
            raise LvsConfigError("a service needs an address (or a fwmark)")
        try:
            addr = ipaddress.ip_address(self.address)
        except ValueError as exc:
            raise LvsConfigError(f"virtual server address {self.address!r}: {exc}") from exc
        object.__setattr__(self, "family", addr.version)
        object.__setattr__(self, "address", str(addr))
        if self.protocol not in PROTOCOLS:
            raise LvsConfigError(
                f"{self.address}: protocol {self.protocol!r} (expected tcp, udp or sctp)"
            )
        if not 0 <= self.port < 65536:
            # port 0: every port (IPVS, with persistence); the nftables datapath refuses it
            raise LvsConfigError(f"{self.address}: port {self.port} (0..65535)")

    def __str__(self) -> str:
        if self.fwmark is not None:
            return f"fwmark {self.fwmark}" + ("" if self.family == 4 else " (IPv6)")
        host = self.address if self.family == 4 else f"[{self.address}]"
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Member:
    """A real server: where connections go, and its share (``weight`` 0 = inhibited)."""

    address: str
    port: int | None = None  # None: the client's destination port is kept
    weight: int = 1
    upper: int = 0  # uthreshold: IPVS stops sending new connections above it (0: none)
    lower: int = 0  # lthreshold: and resumes below it

    def __post_init__(self) -> None:
        try:
            addr = ipaddress.ip_address(self.address)
        except ValueError as exc:
            raise LvsConfigError(f"real server address {self.address!r}: {exc}") from exc
        object.__setattr__(self, "address", str(addr))
        if self.port is not None and not 0 < self.port < 65536:
            raise LvsConfigError(f"real server {self.address}: port {self.port} (1..65535)")
        if not 0 <= self.weight <= 65535:
            raise LvsConfigError(f"real server {self.address}: weight {self.weight} (0..65535)")
        if not (0 <= self.upper < 2**32 and 0 <= self.lower < 2**32):
            raise LvsConfigError(f"real server {self.address}: thresholds must be 0..4294967295")

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.address, self.port)


@dataclass(frozen=True, slots=True)
class Persistence:
    """``persistence_timeout`` (seconds), ``persistence_granularity`` (a prefix length:
    clients in one prefix stick to one server) and ``persistence_engine`` (IPVS's ``sip``:
    persistence by Call-ID; the nftables datapath ignores it)."""

    timeout: int = 360
    prefix: int | None = None  # None: the whole address (32 or 128)
    engine: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= 2**31 // 1000:
            raise LvsConfigError(f"persistence_timeout {self.timeout}: must be 1..2147483 s")


@dataclass(frozen=True, slots=True)
class VirtualServer:
    """One ``virtual_server``: its service, scheduler, forwarding and pool."""

    service: Service
    scheduler: str = "wlc"
    forwarding: Forwarding = Forwarding.NAT
    persistence: Persistence | None = None
    members: tuple[Member, ...] = ()
    sorry: Member | None = None
    sorry_active: bool = False
    name: str = field(default="", compare=False)  # where it came from, for messages
    flags: frozenset[str] = frozenset()  # IPVS service flags (SERVICE_FLAGS), e.g. "ops"
    #: a virtual_server_group's other addresses, ports and marks: they share this one's pool
    aliases: tuple[Service, ...] = ()
    #: sorry_server_inhibit: the sorry server stays in at weight 0 while the pool serves
    sorry_inhibit: bool = False

    def __post_init__(self) -> None:
        # Which forwarding methods a datapath implements is the backend's to say
        # (netd.lvs.nft_support for nftables; IPVS has all three).
        where = self.name or str(self.service)
        for alias in self.aliases:
            if alias.family != self.service.family:
                raise LvsConfigError(
                    f"{where}: {alias} is IPv{alias.family}, the service is "
                    f"IPv{self.service.family}"
                )
        if self.scheduler not in SCHEDULERS | FALLBACK_SCHEDULERS:
            raise LvsConfigError(f"{where}: unknown lvs_sched {self.scheduler!r}")
        if not self.flags <= SERVICE_FLAGS:
            raise LvsConfigError(f"{where}: unknown flags {sorted(self.flags - SERVICE_FLAGS)}")
        seen: set[tuple[str, int | None]] = set()
        for m in (*self.members, *((self.sorry,) if self.sorry else ())):
            if m.family != self.service.family:
                raise LvsConfigError(
                    f"{where}: real server {m.address} is IPv{m.family}, the service is "
                    f"IPv{self.service.family}"
                )
            if m.key in seen and m is not self.sorry:
                raise LvsConfigError(f"{where}: real server {m.address} listed twice")
            seen.add(m.key)
        if self.persistence and self.persistence.prefix is not None:
            width = 32 if self.service.family == 4 else 128
            if not 0 < self.persistence.prefix <= width:
                raise LvsConfigError(
                    f"{where}: persistence_granularity /{self.persistence.prefix} "
                    f"(1..{width} for IPv{self.service.family})"
                )

    def pool(self) -> tuple[tuple[str, Member], ...]:
        """The servers the datapath forwards to now, with a stable id each: the sorry server
        alone when it is active, else the members (inhibited ones included, at weight 0)."""
        if self.sorry_active and self.sorry is not None:
            return ((_member_id("sorry", self.sorry), self.sorry),)
        pool = tuple((_member_id("rs", m), m) for m in self.members)
        if self.sorry_inhibit and self.sorry is not None:
            quiet = Member(self.sorry.address, self.sorry.port, 0)
            pool += ((_member_id("sorry", self.sorry), quiet),)
        return pool


def _member_id(kind: str, m: Member) -> str:
    # From the address and port, never the position: removing one server leaves the others'
    # names (and so their chains, sets and slots) alone.
    return f"{kind}-{m.address}-{m.port if m.port is not None else 'any'}"
