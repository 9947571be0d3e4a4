"""A fake IPVS for netd's IPVS backend: it reads the bytes of every request as the kernel's
``ip_vs_ctl.c`` does (attribute numbers and layouts of ``include/uapi/linux/ip_vs.h``, written
out here by hand, never taken from pyroute2), refuses what the kernel refuses, and answers
dumps with bytes laid out as the kernel's (16-byte addresses, the address family after the
destination's address, ``IP_VS_SVC_F_HASHED`` set) decoded by pyroute2's own message class,
as the real socket decodes them."""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic.ipvs import ipvsmsg

# include/uapi/linux/ip_vs.h
CMDS = {
    1: "NEW_SERVICE",
    2: "SET_SERVICE",
    3: "DEL_SERVICE",
    4: "GET_SERVICE",
    5: "NEW_DEST",
    6: "SET_DEST",
    7: "DEL_DEST",
    8: "GET_DEST",
    12: "SET_CONFIG",
    13: "GET_CONFIG",
    17: "FLUSH",
}
CMD_ATTR = {1: "SERVICE", 2: "DEST", 4: "TIMEOUT_TCP", 5: "TIMEOUT_TCP_FIN", 6: "TIMEOUT_UDP"}
SVC_ATTR = {
    1: "AF",
    2: "PROTOCOL",
    3: "ADDR",
    4: "PORT",
    5: "FWMARK",
    6: "SCHED_NAME",
    7: "FLAGS",
    8: "TIMEOUT",
    9: "NETMASK",
    11: "PE_NAME",
}
DEST_ATTR = {
    1: "ADDR",
    2: "PORT",
    3: "FWD_METHOD",
    4: "WEIGHT",
    5: "U_THRESH",
    6: "L_THRESH",
    11: "ADDR_FAMILY",
}
PERSISTENCE_ENGINES = {"sip"}
SCHEDULERS = {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"}
F_HASHED = 0x2
NLA_F_NESTED = 0x8000


def parse_attrs(data: bytes) -> list[tuple[int, bytes, bool]]:
    """Netlink attributes: (type, payload, nested flag), as ``nla_parse`` walks them."""
    out, off = [], 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, off)
        assert length >= 4, "attribute shorter than its header"
        out.append((kind & 0x3FFF, data[off + 4 : off + length], bool(kind & NLA_F_NESTED)))
        off += (length + 3) & ~3
    return out


def parse_request(raw: bytes) -> tuple[int, int, dict[str, Any]]:
    """(command, genl version, attributes by name; nested ones as dicts by name)."""
    length, _type, _flags, _seq, _pid = struct.unpack_from("=IHHII", raw)
    assert length == len(raw)
    cmd, version, _reserved = struct.unpack_from("=BBH", raw, 16)
    attrs: dict[str, Any] = {}
    for kind, payload, _nested in parse_attrs(raw[20:]):
        name = CMD_ATTR[kind]
        if name in ("SERVICE", "DEST"):
            # nla_parse_nested_deprecated: NLA_F_NESTED may be set or not (pyroute2 does not)
            names = SVC_ATTR if name == "SERVICE" else DEST_ATTR
            attrs[name] = {names[k]: p for k, p, _ in parse_attrs(payload)}
        else:
            attrs[name] = payload
    return cmd, version, attrs


def u16(b: bytes) -> int:
    assert len(b) == 2, f"u16 of {len(b)} bytes"
    return int(struct.unpack("=H", b)[0])


def u32(b: bytes) -> int:
    assert len(b) == 4, f"u32 of {len(b)} bytes"
    return int(struct.unpack("=I", b)[0])


def be16(b: bytes) -> int:
    assert len(b) == 2, f"be16 of {len(b)} bytes"
    return int(struct.unpack("!H", b)[0])


def _addr(af: int, b: bytes) -> str:
    assert len(b) <= 16
    width = 4 if af == socket.AF_INET else 16
    return socket.inet_ntop(af, (b + bytes(16))[:width])


def _nla(kind: int, payload: bytes, nested: bool = False) -> bytes:
    n = 4 + len(payload)
    head = struct.pack("=HH", n, kind | (NLA_F_NESTED if nested else 0))
    return head + payload + bytes((4 - n % 4) % 4)


def _msg(cmd: int, body: bytes) -> Any:
    payload = struct.pack("=BBH", cmd, 1, 0) + body
    raw = struct.pack("=IHHII", 16 + len(payload), 0x1E, 2, 1, 0) + payload
    msg = ipvsmsg(raw)
    msg.decode()
    return msg


@dataclass
class Svc:
    af: int
    fwmark: int
    protocol: int
    addr: str
    port: int
    sched: str
    flags: int
    timeout: int
    netmask: bytes
    pe_name: str = ""
    dests: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)


Key = tuple[int, int, int, str, int]


class FakeIpvs:
    """The kernel's IPVS table, for :class:`netd.lvs.ipvs_backend.IpvsBackend`."""

    def __init__(self) -> None:
        self.services: dict[Key, Svc] = {}
        self.timeouts = {"TIMEOUT_TCP": 900, "TIMEOUT_TCP_FIN": 120, "TIMEOUT_UDP": 300}
        self.log: list[str] = []  # every command received, by name
        self.refuse: Callable[[str, dict[str, Any]], int | None] = lambda cmd, attrs: None
        self.closed = False

    # ---- the kernel's parsing ---------------------------------------------------------------

    def _key(self, s: dict[str, bytes]) -> Key:
        if "AF" not in s:
            raise NetlinkError(errno.EINVAL, "no AF")
        af = u16(s["AF"])
        if af not in (socket.AF_INET, socket.AF_INET6):
            raise NetlinkError(errno.EAFNOSUPPORT, "family")
        if "FWMARK" in s:
            return (af, u32(s["FWMARK"]), 0, "", 0)
        if not {"PROTOCOL", "ADDR", "PORT"} <= set(s):
            raise NetlinkError(errno.EINVAL, "no protocol, address or port")
        return (af, 0, u16(s["PROTOCOL"]), _addr(af, s["ADDR"]), be16(s["PORT"]))

    def _full_service(self, s: dict[str, bytes]) -> Svc:
        key = self._key(s)
        if not {"SCHED_NAME", "FLAGS", "TIMEOUT", "NETMASK"} <= set(s):
            raise NetlinkError(errno.EINVAL, "a full entry needs sched, flags, timeout, netmask")
        name = _nul_string(s["SCHED_NAME"], "sched name")
        if name not in SCHEDULERS:
            raise NetlinkError(errno.ENOENT, f"no scheduler {name}")
        assert len(s["FLAGS"]) == 8, "struct ip_vs_flags is two u32"
        flags, mask = struct.unpack("=II", s["FLAGS"])
        netmask = s["NETMASK"]
        assert len(netmask) == 4
        if key[0] == socket.AF_INET6 and not 1 <= u32(netmask) <= 128:
            raise NetlinkError(errno.EINVAL, "IPv6 netmask is a prefix length 1..128")
        pe_name = ""
        if "PE_NAME" in s:  # NLA_NUL_STRING, IP_VS_PENAME_MAXLEN; ip_vs_pe_getbyname
            pe_name = _nul_string(s["PE_NAME"], "pe name")
            if pe_name not in PERSISTENCE_ENGINES:
                raise NetlinkError(errno.ENOENT, f"no persistence engine {pe_name}")
        return Svc(
            key[0],
            key[1],
            key[2],
            key[3],
            key[4],
            name,
            flags & mask,
            u32(s["TIMEOUT"]),
            netmask,
            pe_name,
        )

    def _dest(
        self, d: dict[str, bytes], af: int, full: bool
    ) -> tuple[tuple[str, int], dict[str, int]]:
        if not {"ADDR", "PORT"} <= set(d):
            raise NetlinkError(errno.EINVAL, "dest needs address and port")
        daf = u16(d["ADDR_FAMILY"]) if "ADDR_FAMILY" in d else af
        key = (_addr(daf, d["ADDR"]), be16(d["PORT"]))
        if not full:
            return key, {}
        if not {"FWD_METHOD", "WEIGHT", "U_THRESH", "L_THRESH"} <= set(d):
            raise NetlinkError(errno.EINVAL, "a full dest needs method, weight, thresholds")
        fields = {n: u32(d[n]) for n in ("FWD_METHOD", "WEIGHT", "U_THRESH", "L_THRESH")}
        if fields["L_THRESH"] > fields["U_THRESH"] and fields["U_THRESH"]:
            raise NetlinkError(errno.EINVAL, "lower threshold above upper")
        return key, {**fields, "AF": daf}

    # ---- IpvsKernel ------------------------------------------------------------------------

    def request(self, msg: Any) -> None:
        msg.encode()
        cmd, version, attrs = parse_request(bytes(msg.data))
        assert version == 1
        name = CMDS[cmd]
        self.log.append(name)
        code = self.refuse(name, attrs)
        if code:
            raise NetlinkError(code, "refused by the test")
        if name == "FLUSH":
            self.services.clear()
        elif name == "SET_CONFIG":
            for k in ("TIMEOUT_TCP", "TIMEOUT_TCP_FIN", "TIMEOUT_UDP"):
                if k in attrs and u32(attrs[k]):
                    self.timeouts[k] = u32(attrs[k])
        elif name.endswith("_SERVICE"):
            self._service_cmd(name, attrs)
        else:
            self._dest_cmd(name, attrs)

    def _service_cmd(self, name: str, attrs: dict[str, Any]) -> None:
        s = attrs.get("SERVICE")
        if s is None:
            raise NetlinkError(errno.EINVAL, "no service")
        if name == "DEL_SERVICE":
            if self.services.pop(self._key(s), None) is None:
                raise NetlinkError(errno.ESRCH, "no such service")
            return
        svc = self._full_service(s)
        key = self._key(s)
        if name == "NEW_SERVICE":
            if key in self.services:
                raise NetlinkError(errno.EEXIST, "exists")
            self.services[key] = svc
        else:
            if key not in self.services:
                raise NetlinkError(errno.ESRCH, "no such service")
            svc.dests = self.services[key].dests
            self.services[key] = svc

    def _dest_cmd(self, name: str, attrs: dict[str, Any]) -> None:
        if "SERVICE" not in attrs or "DEST" not in attrs:
            raise NetlinkError(errno.EINVAL, "service and dest needed")
        svc = self.services.get(self._key(attrs["SERVICE"]))
        if svc is None:
            raise NetlinkError(errno.ESRCH, "no such service")
        key, fields = self._dest(attrs["DEST"], svc.af, full=name != "DEL_DEST")
        if name == "NEW_DEST":
            if key in svc.dests:
                raise NetlinkError(errno.EEXIST, "exists")
            svc.dests[key] = fields
        elif key not in svc.dests:
            raise NetlinkError(errno.ENOENT, "no such dest")
        elif name == "DEL_DEST":
            del svc.dests[key]
        else:
            svc.dests[key] = fields

    def dump(self, msg: Any) -> list[Any]:
        msg.encode()
        cmd, _, attrs = parse_request(bytes(msg.data))
        name = CMDS[cmd]
        self.log.append(name)
        if name == "GET_SERVICE":
            return [_msg(cmd, _nla(1, self._svc_bytes(s), True)) for s in self.services.values()]
        if name == "GET_CONFIG":
            body = b"".join(
                _nla(k, struct.pack("=I", self.timeouts[CMD_ATTR[k]])) for k in (4, 5, 6)
            )
            return [_msg(cmd, body)]
        svc = self.services.get(self._key(attrs["SERVICE"]))
        if svc is None:
            raise NetlinkError(errno.ESRCH, "no such service")
        return [
            _msg(cmd, _nla(1, self._svc_bytes(svc), True) + _nla(2, self._dest_bytes(k, f), True))
            for k, f in svc.dests.items()
        ]

    def close(self) -> None:
        self.closed = True

    # ---- dumps as ip_vs_genl_fill_service / _fill_dest lay them out -------------------------

    @staticmethod
    def _svc_bytes(s: Svc) -> bytes:
        out = _nla(1, struct.pack("=H", s.af))
        if s.fwmark:
            out += _nla(5, struct.pack("=I", s.fwmark))
        else:
            addr = socket.inet_pton(s.af, s.addr).ljust(16, b"\0")  # union nf_inet_addr
            out += _nla(2, struct.pack("=H", s.protocol)) + _nla(3, addr)
            out += _nla(4, struct.pack("!H", s.port))
        out += _nla(6, s.sched.encode() + b"\0")
        if s.pe_name:
            out += _nla(11, s.pe_name.encode() + b"\0")
        out += _nla(7, struct.pack("=II", s.flags | F_HASHED, 0xFFFFFFFF))
        out += _nla(8, struct.pack("=I", s.timeout)) + _nla(9, s.netmask)
        return out

    @staticmethod
    def _dest_bytes(key: tuple[str, int], f: dict[str, int]) -> bytes:
        addr = socket.inet_pton(f["AF"], key[0]).ljust(16, b"\0")
        out = _nla(1, addr) + _nla(2, struct.pack("!H", key[1]))
        for kind, n in ((3, "FWD_METHOD"), (4, "WEIGHT"), (5, "U_THRESH"), (6, "L_THRESH")):
            out += _nla(kind, struct.pack("=I", f[n]))
        out += _nla(7, struct.pack("=I", 0)) + _nla(8, struct.pack("=I", 0))  # conns
        return out + _nla(11, struct.pack("=H", f["AF"]))

    # ---- for assertions ----------------------------------------------------------------------

    def table(self) -> dict[str, tuple[str, int, int, dict[str, tuple[int, int]]]]:
        """service -> (scheduler, flags, timeout, {rs: (method, weight)}), readable."""
        out = {}
        for (_af, fwmark, proto, addr, port), s in self.services.items():
            name = f"fwm{fwmark}" if fwmark else f"{proto}/{addr}/{port}"
            dests = {f"{a}:{p}": (f["FWD_METHOD"], f["WEIGHT"]) for (a, p), f in s.dests.items()}
            out[name] = (s.sched, s.flags, s.timeout, dests)
        return out


def _nul_string(raw: bytes, what: str) -> str:
    """An NLA_NUL_STRING of at most 16 bytes (IP_VS_SCHEDNAME_MAXLEN, IP_VS_PENAME_MAXLEN)."""
    if not raw.endswith(b"\0") or len(raw) > 16:
        raise NetlinkError(errno.EINVAL, f"{what} is not a NUL-terminated string")
    return raw.rstrip(b"\0").decode()
