"""Virtual servers as IPVS sees them, and the generic netlink messages that program them. Pure.

:func:`service_spec` and :func:`dest_specs` say what the kernel should hold for a
:class:`~netd.lvs.model.VirtualServer` (comparable values, so the backend can diff them
against a dump), :func:`request` builds the message for one command, and
:func:`service_from_message` / :func:`dest_from_message` read a dump back. The attributes are
laid out as the kernel's ``include/uapi/linux/ip_vs.h`` and ``ip_vs_ctl.c`` expect them
(``tests/netd/test_lvs_ipvs.py`` checks the bytes).

pyroute2 0.9.7's ``IPVSService``/``IPVSDest`` helpers are not used, for four bugs (docs/lvs.md):
its ``"update"`` command sends ``IPVS_CMD_DEL_*``; ``IPVSService`` sends no ``NETMASK`` (and no
``AF`` for a fwmark) except for IPv4 address services, which the kernel refuses with
``EINVAL``; ``from_message`` reports its own defaults instead of the kernel's forwarding
method (DR for every server), thresholds, flags and timeout; and the ``TIMEOUT_*`` command
attributes are typed ``hex``, so ``SET_CONFIG`` cannot be encoded. Only its message classes
(:class:`IpvsMsg`, with the timeouts retyped) are used.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any, Final

from pyroute2.netlink.generic import ipvs as genl

from netd.lvs.model import PROTOCOLS, Forwarding, Member, Service, VirtualServer

__all__ = [
    "CMD",
    "FLAG_BITS",
    "FWD_METHODS",
    "F_PERSISTENT",
    "DestSpec",
    "IpvsMsg",
    "ServiceKey",
    "ServiceSpec",
    "Timeouts",
    "dest_from_message",
    "dest_specs",
    "request",
    "service_from_message",
    "service_keys",
    "service_spec",
    "service_specs",
    "timeouts_from_message",
]

# include/uapi/linux/ip_vs.h
F_PERSISTENT: Final = 0x0001
F_HASHED: Final = 0x0002  # set by the kernel on every service it holds; never ours to send
F_ONEPACKET: Final = 0x0004
F_SCHED1: Final = 0x0008
F_SCHED2: Final = 0x0010
F_SCHED3: Final = 0x0020
#: keepalived's flag keywords -> IP_VS_SVC_F_* (sh-/mh- flags are the scheduler flags 1 and 2)
FLAG_BITS: Final = {
    "hashed": F_HASHED,
    "ops": F_ONEPACKET,
    "flag-1": F_SCHED1,
    "flag-2": F_SCHED2,
    "flag-3": F_SCHED3,
    "sh-fallback": F_SCHED1,
    "sh-port": F_SCHED2,
    "mh-fallback": F_SCHED1,
    "mh-port": F_SCHED2,
}
#: IP_VS_CONN_F_MASQ / _TUNNEL / _DROUTE
FWD_METHODS: Final = {Forwarding.NAT: 0, Forwarding.TUN: 2, Forwarding.DR: 3}
_FWD_MASK: Final = 0x0007
_AF: Final[dict[int, int]] = {4: int(socket.AF_INET), 6: int(socket.AF_INET6)}
_FAMILY: Final[dict[int, int]] = {v: k for k, v in _AF.items()}

#: the commands this backend sends (enum of ip_vs.h)
CMD: Final = {
    "new_service": genl.IPVS_CMD_NEW_SERVICE,
    "set_service": genl.IPVS_CMD_SET_SERVICE,
    "del_service": genl.IPVS_CMD_DEL_SERVICE,
    "get_service": genl.IPVS_CMD_GET_SERVICE,
    "new_dest": genl.IPVS_CMD_NEW_DEST,
    "set_dest": genl.IPVS_CMD_SET_DEST,
    "del_dest": genl.IPVS_CMD_DEL_DEST,
    "get_dest": genl.IPVS_CMD_GET_DEST,
    "set_config": genl.IPVS_CMD_SET_CONFIG,
    "get_config": genl.IPVS_CMD_GET_CONFIG,
    "flush": genl.IPVS_CMD_FLUSH,
}


# (misc: pyroute2 ships no type information, so the base class is Any to mypy)
class IpvsMsg(genl.ipvsmsg):  # type: ignore[misc]
    """pyroute2's IPVS message with the connection timeouts typed as the kernel's ``NLA_U32``
    (pyroute2 0.9.7 declares them ``hex``, which cannot encode a number)."""

    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "hex"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
    )


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """What identifies an IPVS service: family and address · protocol · port, or fwmark."""

    family: int
    protocol: int = 0
    address: str = ""
    port: int = 0
    fwmark: int = 0

    def __str__(self) -> str:
        if self.fwmark:
            return f"fwmark {self.fwmark}" + ("" if self.family == 4 else " (IPv6)")
        proto = {v: k for k, v in PROTOCOLS.items()}.get(self.protocol, str(self.protocol))
        host = self.address if self.family == 4 else f"[{self.address}]"
        return f"{proto} {host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service as the kernel holds it. ``netmask`` is the persistence granularity: a
    prefix length for both families here (the kernel wants a mask for IPv4)."""

    key: ServiceKey
    scheduler: str = "wlc"
    flags: int = 0
    timeout: int = 0
    netmask: int = 32
    pe_name: str = ""  # persistence_engine ("sip"), persistent services only


@dataclass(frozen=True, slots=True)
class DestSpec:
    """One real server (destination) of a service as the kernel holds it."""

    family: int
    address: str
    port: int = 0
    method: int = 0
    weight: int = 1
    upper: int = 0
    lower: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``lvs_timeouts``: TCP, TCP FIN and UDP connection timeouts in seconds (0: unchanged)."""

    tcp: int = 0
    tcpfin: int = 0
    udp: int = 0


# ---- desired state -----------------------------------------------------------------------------


def _key_of(svc: Service) -> ServiceKey:
    if svc.fwmark is not None:
        return ServiceKey(svc.family, fwmark=svc.fwmark)
    assert svc.address is not None
    return ServiceKey(svc.family, PROTOCOLS[svc.protocol], svc.address, svc.port)


def service_key(vs: VirtualServer) -> ServiceKey:
    """The key of ``vs``'s (first) service."""
    return _key_of(vs.service)


def service_keys(vs: VirtualServer) -> tuple[ServiceKey, ...]:
    """Every IPVS service ``vs`` is: its own, and for a ``virtual_server_group`` one per
    address (ranges expanded) and port, and one per fwmark, as keepalived's
    ``ipvs_group_cmd`` makes them. An entry listed twice is one service."""
    return tuple(dict.fromkeys(_key_of(s) for s in (vs.service, *vs.aliases)))


def service_spec(vs: VirtualServer, key: ServiceKey | None = None) -> ServiceSpec:
    """What the kernel should hold for ``vs``'s service ``key`` (default: its first; keepalived's
    ``ipvs_set_srule``): every service of a group has the virtual server's scheduler, flags and
    persistence."""
    width = 32 if vs.service.family == 4 else 128
    flags = 0
    for name in vs.flags:
        flags |= FLAG_BITS[name]
    flags &= ~F_HASHED
    timeout, netmask, engine = 0, width, ""
    if vs.persistence is not None:
        flags |= F_PERSISTENT
        timeout = vs.persistence.timeout
        if vs.persistence.prefix is not None:
            netmask = vs.persistence.prefix
        engine = vs.persistence.engine or ""
    return ServiceSpec(key or service_key(vs), vs.scheduler, flags, timeout, netmask, engine)


def service_specs(vs: VirtualServer) -> tuple[ServiceSpec, ...]:
    """One :class:`ServiceSpec` per service of ``vs`` (:func:`service_keys`)."""
    return tuple(service_spec(vs, k) for k in service_keys(vs))


def dest_specs(vs: VirtualServer, key: ServiceKey | None = None) -> tuple[DestSpec, ...]:
    """The destinations of ``vs``'s service ``key`` (default: its first): the sorry server
    alone while it stands in, else the members (weight 0 ones included: IPVS quiesces them).
    Every service of a group gets the same ones."""
    target = key or service_key(vs)
    return tuple(_dest(vs, m, target) for _, m in vs.pool())


def _dest(vs: VirtualServer, m: Member, key: ServiceKey) -> DestSpec:
    # DR and TUN cannot change the port: the destination has the service's (0 for a fwmark),
    # per group entry, as keepalived and ipvsadm send it; NAT has the real server's.
    port = (m.port or 0) if vs.forwarding is Forwarding.NAT else key.port
    return DestSpec(
        m.family,
        m.address,
        port,
        FWD_METHODS[vs.forwarding],
        m.weight,
        m.upper,
        m.lower,
    )


# ---- messages ----------------------------------------------------------------------------------


def _netmask(spec: ServiceSpec) -> str:
    """``IPVS_SVC_ATTR_NETMASK`` is a u32: an IPv4 mask in network order, or for IPv6 the
    prefix length in host order. pyroute2 types it as an IPv4 address, so the IPv6 prefix
    length is handed over as the address with those bytes."""
    if spec.key.family == 4:
        mask = (0xFFFFFFFF << (32 - spec.netmask)) & 0xFFFFFFFF
        return socket.inet_ntoa(struct.pack("!I", mask))
    return socket.inet_ntoa(struct.pack("=I", spec.netmask))


def service_attrs(spec: ServiceSpec | ServiceKey) -> dict[str, Any]:
    """The nested ``IPVS_CMD_ATTR_SERVICE``: the key alone for a :class:`ServiceKey`, the full
    entry (``ip_vs_genl_parse_service(full_entry)`` needs scheduler, flags, timeout and
    netmask) for a :class:`ServiceSpec`. In the order the kernel dumps them."""
    key = spec.key if isinstance(spec, ServiceSpec) else spec
    attrs: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", _AF[key.family])]
    if key.fwmark:
        attrs.append(("IPVS_SVC_ATTR_FWMARK", key.fwmark))
    else:
        attrs += [
            ("IPVS_SVC_ATTR_PROTOCOL", key.protocol),
            ("IPVS_SVC_ATTR_ADDR", key.address),
            ("IPVS_SVC_ATTR_PORT", key.port),
        ]
    if isinstance(spec, ServiceSpec):
        attrs.append(("IPVS_SVC_ATTR_SCHED_NAME", spec.scheduler))
        if spec.pe_name:  # absent: the kernel drops the service's engine (ip_vs_edit_service)
            attrs.append(("IPVS_SVC_ATTR_PE_NAME", spec.pe_name))
        attrs += [
            # the mask says which flags this message sets: all of them, as keepalived
            ("IPVS_SVC_ATTR_FLAGS", {"flags": spec.flags, "mask": 0xFFFFFFFF}),
            ("IPVS_SVC_ATTR_TIMEOUT", spec.timeout),
            ("IPVS_SVC_ATTR_NETMASK", _netmask(spec)),
        ]
    return {"attrs": attrs}


def dest_attrs(d: DestSpec, *, full: bool = True) -> dict[str, Any]:
    """The nested ``IPVS_CMD_ATTR_DEST``: address and port (enough to delete), plus forwarding
    method, weight and thresholds (all four required to add or change one)."""
    attrs: list[tuple[str, Any]] = [
        ("IPVS_DEST_ATTR_ADDR_FAMILY", _AF[d.family]),
        ("IPVS_DEST_ATTR_ADDR", d.address),
        ("IPVS_DEST_ATTR_PORT", d.port),
    ]
    if full:
        attrs += [
            ("IPVS_DEST_ATTR_FWD_METHOD", d.method),
            ("IPVS_DEST_ATTR_WEIGHT", d.weight),
            ("IPVS_DEST_ATTR_U_THRESH", d.upper),
            ("IPVS_DEST_ATTR_L_THRESH", d.lower),
        ]
    return {"attrs": attrs}


def request(
    cmd: str,
    service: ServiceSpec | ServiceKey | None = None,
    dest: DestSpec | None = None,
    *,
    full_dest: bool = True,
    timeouts: Timeouts | None = None,
) -> IpvsMsg:
    """One IPVS command (``CMD`` names) as a message ready to send."""
    msg = IpvsMsg()
    msg["cmd"] = CMD[cmd]
    msg["version"] = genl.GENL_VERSION
    attrs: list[tuple[str, Any]] = []
    if service is not None:
        attrs.append(("IPVS_CMD_ATTR_SERVICE", service_attrs(service)))
    if dest is not None:
        attrs.append(("IPVS_CMD_ATTR_DEST", dest_attrs(dest, full=full_dest)))
    if timeouts is not None:
        attrs += [
            ("IPVS_CMD_ATTR_TIMEOUT_TCP", timeouts.tcp),
            ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", timeouts.tcpfin),
            ("IPVS_CMD_ATTR_TIMEOUT_UDP", timeouts.udp),
        ]
    msg["attrs"] = attrs
    return msg


# ---- reading dumps -----------------------------------------------------------------------------


def _prefix_of(family: int, raw: str) -> int:
    packed = socket.inet_aton(raw)
    if family == 6:
        return int(struct.unpack("=I", packed)[0])
    return bin(struct.unpack("!I", packed)[0]).count("1")


def service_from_message(msg: Any) -> ServiceSpec:
    """A ``GET_SERVICE`` dump entry, read from the attributes themselves."""
    svc = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    family = _FAMILY[int(svc.get_attr("IPVS_SVC_ATTR_AF"))]
    fwmark = int(svc.get_attr("IPVS_SVC_ATTR_FWMARK") or 0)
    if fwmark:
        key = ServiceKey(family, fwmark=fwmark)
    else:
        key = ServiceKey(
            family,
            int(svc.get_attr("IPVS_SVC_ATTR_PROTOCOL")),
            str(svc.get_attr("IPVS_SVC_ATTR_ADDR")),
            int(svc.get_attr("IPVS_SVC_ATTR_PORT")),
        )
    flags = svc.get_attr("IPVS_SVC_ATTR_FLAGS") or {"flags": 0}
    return ServiceSpec(
        key,
        str(svc.get_attr("IPVS_SVC_ATTR_SCHED_NAME")),
        int(flags["flags"]) & ~F_HASHED,
        int(svc.get_attr("IPVS_SVC_ATTR_TIMEOUT") or 0),
        _prefix_of(family, str(svc.get_attr("IPVS_SVC_ATTR_NETMASK"))),
        str(svc.get_attr("IPVS_SVC_ATTR_PE_NAME") or ""),
    )


def dest_from_message(msg: Any) -> DestSpec:
    """A ``GET_DEST`` dump entry."""
    d = msg.get_attr("IPVS_CMD_ATTR_DEST")
    family = _FAMILY[int(d.get_attr("IPVS_DEST_ATTR_ADDR_FAMILY"))]
    return DestSpec(
        family,
        str(d.get_attr("IPVS_DEST_ATTR_ADDR")),
        int(d.get_attr("IPVS_DEST_ATTR_PORT")),
        int(d.get_attr("IPVS_DEST_ATTR_FWD_METHOD")) & _FWD_MASK,
        int(d.get_attr("IPVS_DEST_ATTR_WEIGHT")),
        int(d.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0),
        int(d.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0),
    )


def _u32(value: Any) -> int:
    # A socket that decodes with pyroute2's own class reads these "hex" typed attributes as
    # "84:03:00:00"; ours (IpvsMsg) as numbers.
    if isinstance(value, str):
        return int(struct.unpack("=I", bytes.fromhex(value.replace(":", "")))[0])
    return int(value or 0)


def timeouts_from_message(msg: Any) -> Timeouts:
    """A ``GET_CONFIG`` reply."""
    return Timeouts(
        _u32(msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP")),
        _u32(msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")),
        _u32(msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_UDP")),
    )
