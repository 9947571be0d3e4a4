"""Netlink observation: link, address and route events as small typed values.

Thread-free and loop-friendly: :class:`Monitor` owns one non-blocking ``NETLINK_ROUTE``
socket bound to the multicast groups; the netd process registers :meth:`Monitor.fileno`
with ``loop.add_reader`` and calls :meth:`Monitor.read` when it is readable (or calls
:meth:`Monitor.poll` with a timeout outside asyncio). Messages are decoded with pyroute2's
rtnl marshal.

If the kernel drops notifications because the socket buffer overflowed (ENOBUFS), ``read``
returns a single :class:`Overflow` event: the consumer must re-read the kernel state
(level-triggered recovery, as everywhere else in the design).
"""

from __future__ import annotations

import errno
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from pyroute2.netlink import rtnl
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from netd.errors import KernelError

__all__ = [
    "AddrEvent",
    "Event",
    "LinkEvent",
    "Monitor",
    "Overflow",
    "RouteEvent",
    "addr_event",
    "decode",
    "link_event",
]

IFF_UP: Final = 0x1
IFF_RUNNING: Final = 0x40
NETLINK_ROUTE: Final = 0
RCVBUF: Final = 4 * 1024 * 1024

DEFAULT_GROUPS: Final = (
    rtnl.RTMGRP_LINK
    | rtnl.RTMGRP_IPV4_IFADDR
    | rtnl.RTMGRP_IPV6_IFADDR
    | rtnl.RTMGRP_IPV4_ROUTE
    | rtnl.RTMGRP_IPV6_ROUTE
)


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """An interface appeared, changed or (``removed``) disappeared.

    ``up`` is IFF_UP (administratively up), ``running`` IFF_RUNNING (carrier);
    keepalived's FAULT rule is "not up and running". ``oper_state`` is the kernel's
    IFLA_OPERSTATE text (``"UP"``, ``"DOWN"``, ``"LOWERLAYERDOWN"``, ``"UNKNOWN"``...).
    """

    ifindex: int
    ifname: str | None
    oper_state: str | None
    up: bool
    running: bool
    mac: str | None
    removed: bool = False

    @property
    def usable(self) -> bool:
        return self.up and self.running and not self.removed


IFA_F_SECONDARY: Final = 0x01
IFA_F_TENTATIVE: Final = 0x40
IFA_F_DADFAILED: Final = 0x08


@dataclass(frozen=True, slots=True)
class AddrEvent:
    """An address appeared (``added``) or went away; ``flags`` are the IFA_F_* bits."""

    added: bool
    ifindex: int
    family: int
    ip: str
    prefix: int
    label: str | None
    proto: int | None
    flags: int

    @property
    def primary(self) -> bool:
        return not self.flags & IFA_F_SECONDARY

    @property
    def tentative(self) -> bool:
        """IPv6 DAD still running (or failed): not yet usable as a source address."""
        return bool(self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED))


@dataclass(frozen=True, slots=True)
class RouteEvent:
    added: bool
    family: int
    dst: str
    table: int
    proto: int
    type: int
    oif: int | None
    via: str | None


@dataclass(frozen=True, slots=True)
class Overflow:
    """Notifications were lost; re-read the kernel."""


Event: TypeAlias = LinkEvent | AddrEvent | RouteEvent | Overflow


def link_event(msg: Any, removed: bool = False) -> LinkEvent:
    """A LinkEvent from a decoded RTM_NEWLINK/DELLINK (pyroute2 message or dict)."""
    flags = int(msg["flags"])
    return LinkEvent(
        ifindex=int(msg["index"]),
        ifname=msg.get("IFLA_IFNAME"),
        oper_state=msg.get("IFLA_OPERSTATE"),
        up=bool(flags & IFF_UP),
        running=bool(flags & IFF_RUNNING),
        mac=msg.get("IFLA_ADDRESS"),
        removed=removed,
    )


def addr_event(msg: Any, added: bool = True) -> AddrEvent:
    """An AddrEvent from a decoded RTM_NEWADDR/DELADDR (pyroute2 message or dict)."""
    local = msg.get("IFA_LOCAL")
    return AddrEvent(
        added=added,
        ifindex=int(msg["index"]),
        family=int(msg["family"]),
        ip=str(local if local is not None else msg.get("IFA_ADDRESS")),
        prefix=int(msg["prefixlen"]),
        label=msg.get("IFA_LABEL"),
        proto=msg.get("IFA_PROTO"),
        flags=int(msg.get("IFA_FLAGS", msg["flags"])),
    )


def _route(msg: Any, added: bool) -> RouteEvent:
    family = int(msg["family"])
    dst = msg.get("RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
    return RouteEvent(
        added=added,
        family=family,
        dst=f"{dst}/{msg['dst_len']}",
        table=int(msg.get("RTA_TABLE", msg["table"])),
        proto=int(msg["proto"]),
        type=int(msg["type"]),
        oif=msg.get("RTA_OIF"),
        via=msg.get("RTA_GATEWAY"),
    )


_DECODERS: Final[dict[int, Callable[[Any], Event]]] = {
    rtnl.RTM_NEWLINK: lambda m: link_event(m, False),
    rtnl.RTM_DELLINK: lambda m: link_event(m, True),
    rtnl.RTM_NEWADDR: lambda m: addr_event(m, True),
    rtnl.RTM_DELADDR: lambda m: addr_event(m, False),
    rtnl.RTM_NEWROUTE: lambda m: _route(m, True),
    rtnl.RTM_DELROUTE: lambda m: _route(m, False),
}


def decode(data: bytes) -> list[Event]:
    """Decode one netlink datagram into events (pure; unknown messages are skipped)."""
    out: list[Event] = []
    for msg in MarshalRtnl().parse(data):
        decoder = _DECODERS.get(msg["header"]["type"])
        if decoder is not None:
            out.append(decoder(msg))
    return out


class Monitor:
    """Subscribe to rtnetlink notifications in the current network namespace."""

    def __init__(self, groups: int = DEFAULT_GROUPS, rcvbuf: int = RCVBUF) -> None:
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self._sock.bind((0, groups))
            self._sock.setblocking(False)
        except OSError as exc:
            code = exc.errno or errno.EIO
            raise KernelError(
                "netlink subscribe", code, errno.errorcode.get(code, str(code)), str(exc)
            ) from exc
        self.received = 0
        self.overflows = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[Event]:
        """Everything queued right now, without blocking."""
        events: list[Event] = []
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return events
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overflows += 1
                    events.append(Overflow())
                    continue
                raise KernelError("netlink read", exc.errno or errno.EIO, "EIO", str(exc)) from exc
            self.received += 1
            events.extend(decode(data))

    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for events (for use outside an event loop)."""
        ready, _, _ = select.select([self._sock], [], [], timeout)
        return self.read() if ready else []

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
