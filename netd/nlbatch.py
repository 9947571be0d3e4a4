"""Pipelined netlink requests: many messages per send, acknowledgements matched by sequence.

A request/ack round trip per address costs ~0.3 ms of Python in pyroute2's synchronous API;
a failover that installs hundreds of VIPs should not pay that per item. The kernel handles a
buffer of several netlink messages in order, so we encode the messages with pyroute2's own
message classes, send them in chunks and match the acks (with the kernel's extended-ack text
as the failure reason) back to each request by sequence number. Order is kept: the kernel
processes the messages of one socket sequentially, so "address before the route that uses it"
still holds.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from netd.errors import KernelError

__all__ = ["Ack", "NetlinkBatch", "RawRequest", "attributes", "nla"]

SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10
NETLINK_EXT_ACK: Final = 11
NETLINK_ROUTE: Final = 0
NLMSG_ERROR: Final = 2
NLM_F_CAPPED: Final = 0x100
NLM_F_ACK_TLVS: Final = 0x200
NLMSGERR_ATTR_MSG: Final = 1
CHUNK: Final = 256
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x1
NLM_F_DUMP: Final = 0x300
NLM_F_DUMP_INTR: Final = 0x10
DUMP_RETRIES: Final = 3
ACK_TIMEOUT: Final = 5.0
RCVBUF: Final = 4 * 1024 * 1024

_HDR = struct.Struct("=IHHII")


def nla(atype: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    head = struct.pack("=HH", 4 + len(payload), atype)
    return head + payload + b"\0" * (-len(payload) % 4)


def attributes(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Walk netlink attributes in ``data[pos:end]``: (type without flag bits, value start,
    value end). Stops at a malformed length instead of looping."""
    while pos + 4 <= end:
        alen, atype = struct.unpack_from("=HH", data, pos)
        if alen < 4:
            return
        yield atype & 0x3FFF, pos + 4, pos + alen  # drop NLA_F_NESTED / NLA_F_NET_BYTEORDER
        pos += (alen + 3) & ~3


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A request encoded by hand (hot paths): message type, flags and body after the header."""

    mtype: int
    flags: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    """Outcome of one request: ``code`` 0 on success, else a positive errno."""

    code: int
    message: str | None = None

    @property
    def errno_name(self) -> str:
        return errno.errorcode.get(self.code, str(self.code)) if self.code else "OK"

    @property
    def reason(self) -> str:
        base = os.strerror(self.code) if self.code else "Success"
        return f"{base}: {self.message}" if self.message else base


def parse_acks(data: bytes) -> list[tuple[int, Ack]]:
    """Decode NLMSG_ERROR messages (acks) of one datagram into (seq, Ack) pairs."""
    out: list[tuple[int, Ack]] = []
    offset = 0
    while offset + _HDR.size <= len(data):
        length, mtype, flags, seq, _pid = _HDR.unpack_from(data, offset)
        if length < _HDR.size:
            break
        if mtype == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, offset + 16)
            inner = offset + 20
            (inner_len,) = struct.unpack_from("=I", data, inner)
            # With NETLINK_CAP_ACK the request is echoed as its header only.
            tlv = inner + (_HDR.size if flags & NLM_F_CAPPED or err == 0 else inner_len)
            message = None
            if flags & NLM_F_ACK_TLVS:
                end = offset + length
                while tlv + 4 <= end:
                    tlen, ttype = struct.unpack_from("=HH", data, tlv)
                    if tlen < 4:
                        break
                    if ttype == NLMSGERR_ATTR_MSG:
                        message = data[tlv + 4 : tlv + tlen].rstrip(b"\0").decode(errors="replace")
                    tlv += (tlen + 3) & ~3
            out.append((seq, Ack(-err, message)))
        offset += (length + 3) & ~3
    return out


class NetlinkBatch:
    """A ``NETLINK_ROUTE`` socket (current namespace) that runs requests in pipelined chunks."""

    def __init__(self) -> None:
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self._sock.bind((0, 0))
            self._sock.settimeout(ACK_TIMEOUT)
        except OSError as exc:
            code = exc.errno or errno.EIO
            raise KernelError(
                "netlink socket", code, errno.errorcode.get(code, "?"), str(exc)
            ) from exc
        self._seq = itertools.count(1)
        self.sends = 0

    def run(self, messages: Sequence[Any]) -> list[Ack]:
        """Send pyroute2 messages (header type/flags set, not yet encoded); one Ack each.

        Every message must carry NLM_F_ACK so each gets exactly one reply.
        """
        acks: list[Ack] = []
        for start in range(0, len(messages), CHUNK):
            chunk = messages[start : start + CHUNK]
            seqs = []
            parts = []
            for msg in chunk:
                seq = next(self._seq)
                if isinstance(msg, RawRequest):
                    head = _HDR.pack(_HDR.size + len(msg.body), msg.mtype, msg.flags, seq, 0)
                    parts.append(head + msg.body)
                else:
                    msg["header"]["sequence_number"] = seq
                    msg.encode()
                    parts.append(bytes(msg.data))
                seqs.append(seq)
            try:
                self._sock.send(b"".join(parts))
                self.sends += 1
                got: dict[int, Ack] = {}
                while len(got) < len(seqs):
                    for seq, ack in parse_acks(self._sock.recv(RCVBUF)):
                        got[seq] = ack
            except OSError as exc:
                code = exc.errno or errno.EIO
                raise KernelError(
                    "netlink batch", code, errno.errorcode.get(code, "?"), str(exc)
                ) from exc
            acks.extend(got[s] for s in seqs)
        return acks

    def dump(self, msg: Any) -> list[tuple[int, bytes, int, int]]:
        """Run a dump request; return every reply as (type, datagram, offset, length).

        The caller decodes only what it needs (pyroute2's full decode costs ~0.1 ms per
        message). A dump the kernel flags as interrupted (NLM_F_DUMP_INTR: the table changed
        meanwhile) is retried.
        """
        for _ in range(DUMP_RETRIES):
            seq = next(self._seq)
            msg["header"]["sequence_number"] = seq
            msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
            msg.encode()
            out: list[tuple[int, bytes, int, int]] = []
            interrupted = False
            try:
                self._sock.send(bytes(msg.data))
                self.sends += 1
                done = False
                while not done:
                    data = self._sock.recv(RCVBUF)
                    offset = 0
                    while offset + _HDR.size <= len(data):
                        length, mtype, flags, rseq, _pid = _HDR.unpack_from(data, offset)
                        if length < _HDR.size:
                            break
                        if rseq == seq:
                            interrupted |= bool(flags & NLM_F_DUMP_INTR)
                            if mtype == NLMSG_DONE:
                                done = True
                            elif mtype == NLMSG_ERROR:
                                ((_, ack),) = parse_acks(data[offset : offset + length])
                                raise KernelError(
                                    "netlink dump", ack.code, ack.errno_name, ack.reason
                                )
                            else:
                                out.append((mtype, data, offset, length))
                        offset += (length + 3) & ~3
            except OSError as exc:
                code = exc.errno or errno.EIO
                raise KernelError(
                    "netlink dump", code, errno.errorcode.get(code, "?"), str(exc)
                ) from exc
            if not interrupted:
                return out
        raise KernelError("netlink dump", errno.EINTR, "EINTR", "dump kept being interrupted")

    def close(self) -> None:
        self._sock.close()
