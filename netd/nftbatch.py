"""Atomic nftables transactions over nfnetlink, with every acknowledgement read.

pyroute2's ``NFTables`` runs each call as its own transaction, and its ``begin()/commit()``
sends a batch without reading what the kernel answered, so a failed element would go unnoticed
and the changes before it would not be atomic with the rest. This module sends one
``NFNL_MSG_BATCH_BEGIN … END`` transaction whose messages are pyroute2's own message classes
(so no attribute is encoded by hand), asks for an ACK on each, and reads the answers back:

* the kernel runs the whole batch inside ``sendmsg()`` and either commits all of it or aborts all
  of it; every message flagged ``NLM_F_ACK`` gets exactly one answer (0 or an errno with the
  extended-ack text), delivered after the batch is decided;
* a ``GETGEN`` request sent right after the batch is the fence: once its answer (the ruleset's
  new generation id) is read, every answer of the batch has been read too.

A failed transaction raises :class:`~netd.errors.NftError` naming the first failing operation
(by the description the caller gave it) and the kernel's reason; the kernel has then left the
ruleset exactly as it was.
"""

from __future__ import annotations

import errno
import itertools
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, nfgen_msg
from pyroute2.netlink.nfnetlink.nftsocket import (
    NFT_MSG_GETGEN,
    NFT_MSG_NEWGEN,
    nft_chain_msg,
    nft_gen_msg,
    nft_rule_msg,
    nft_set_elem_list_msg,
    nft_set_msg,
    nft_table_msg,
)

from netd.errors import NftError
from netd.nlbatch import NETLINK_CAP_ACK, NETLINK_EXT_ACK, SOL_NETLINK, Ack, parse_acks

__all__ = ["NftBatch", "NftRequest", "NftSocket"]

NETLINK_NETFILTER: Final = 12
NFNL_MSG_BATCH_BEGIN: Final = 0x10
NFNL_MSG_BATCH_END: Final = 0x11
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
RCVBUF: Final = 8 * 1024 * 1024
SO_SNDBUFFORCE: Final = getattr(socket, "SO_SNDBUFFORCE", 32)  # Linux; not in every Python
TIMEOUT: Final = 5.0

_HDR = struct.Struct("=IHHII")
_NLA = struct.Struct("=HH")
_NLA_TYPE_MASK: Final = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
_NFGEN_LEN: Final = 4  # struct nfgenmsg

#: nft message type -> pyroute2 class that encodes/decodes it
_CLASSES: Final[dict[int, Any]] = {
    0: nft_table_msg,
    1: nft_table_msg,
    2: nft_table_msg,
    3: nft_chain_msg,
    4: nft_chain_msg,
    5: nft_chain_msg,
    6: nft_rule_msg,
    7: nft_rule_msg,
    8: nft_rule_msg,
    9: nft_set_msg,
    10: nft_set_msg,
    11: nft_set_msg,
    12: nft_set_elem_list_msg,
    13: nft_set_elem_list_msg,
    14: nft_set_elem_list_msg,
    NFT_MSG_NEWGEN: nft_gen_msg,
    NFT_MSG_GETGEN: nft_gen_msg,
}


@dataclass(frozen=True, slots=True)
class NftRequest:
    """One message of a transaction: ``NFT_MSG_*`` type, extra ``NLM_F_*`` flags, attributes
    (as pyroute2 takes them) and a description for error messages (``add chain vs-…``).
    ``family`` is the message's ``nfgen_family`` (``None``: the socket's): one transaction may
    change tables of several families (an ``inet`` and a ``netdev`` one), as ``nft -f`` does."""

    mtype: int
    flags: int
    attrs: tuple[tuple[str, Any], ...]
    what: str
    family: int | None = None


class NftSocket:
    """An ``NETLINK_NETFILTER`` socket in the caller's namespace (one thread only)."""

    def __init__(self, family: int) -> None:
        self.family = family
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self._sock.bind((0, 0))
            self._sock.settimeout(TIMEOUT)
        except OSError as exc:
            raise _os_error("open nfnetlink", exc) from exc
        self._seq = itertools.count(1)
        self.transactions = 0

    def _encode(
        self,
        mtype: int,
        flags: int,
        attrs: Sequence[tuple[str, Any]],
        seq: int,
        family: int | None = None,
    ) -> bytes:
        msg = _CLASSES[mtype]()
        msg["nfgen_family"] = self.family if family is None else family
        msg["attrs"] = [list(a) for a in attrs]
        msg["header"]["type"] = NFNL_SUBSYS_NFTABLES << 8 | mtype
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = seq
        msg.encode()
        return bytes(msg.data)

    def _batch_marker(self, mtype: int, seq: int) -> bytes:
        msg = nfgen_msg()
        msg["res_id"] = NFNL_SUBSYS_NFTABLES
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = NLM_F_REQUEST
        msg["header"]["sequence_number"] = seq
        msg.encode()
        return bytes(msg.data)

    def transaction(self, requests: Sequence[NftRequest]) -> int:
        """Run ``requests`` as one atomic transaction; return the ruleset generation after it.

        Raises :class:`NftError` for the first failing request (the kernel then applied none).
        """
        if not requests:
            return self.generation()
        begin = next(self._seq)
        parts = [self._batch_marker(NFNL_MSG_BATCH_BEGIN, begin)]
        whats: dict[int, str] = {begin: "begin transaction"}
        for req in requests:
            seq = next(self._seq)
            whats[seq] = req.what
            flags = NLM_F_REQUEST | NLM_F_ACK | req.flags
            parts.append(self._encode(req.mtype, flags, req.attrs, seq, req.family))
        end = next(self._seq)
        whats[end] = "commit transaction"
        parts.append(self._batch_marker(NFNL_MSG_BATCH_END, end))
        fence = next(self._seq)
        payload = b"".join(parts)
        try:
            self._fit(len(payload))
            self._sock.send(payload)
            self._sock.send(self._encode(NFT_MSG_GETGEN, NLM_F_REQUEST, (), fence))
            acks, generation = self._read_until(fence)
        except OSError as exc:
            raise _os_error("nftables transaction", exc) from exc
        self.transactions += 1
        for seq in sorted(acks):
            ack = acks[seq]
            if ack.code and seq in whats:
                raise NftError(whats[seq], ack.code, ack.errno_name, ack.reason)
        missing = [whats[s] for s in whats if s not in (begin, end) and s not in acks]
        if missing:
            raise NftError(
                missing[0], errno.EPROTO, "EPROTO", "the kernel did not acknowledge the request"
            )
        return generation

    def _fit(self, size: int) -> None:
        """Let one send carry ``size`` bytes: the kernel refuses a netlink message larger than
        the socket's send buffer (EMSGSIZE), and a 1,000-server pool is a batch of several
        hundred KiB, above the default ``wmem_max``. As nft does: force a larger buffer (we
        have CAP_NET_ADMIN), else ask for what the sysctl allows."""
        need = size + 4096
        if self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= need:
            return
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, need)
        except PermissionError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, need)

    def _read_until(self, fence: int) -> tuple[dict[int, Ack], int]:
        acks: dict[int, Ack] = {}
        while True:
            data = self._sock.recv(RCVBUF)
            for seq, ack in parse_acks(data):
                acks[seq] = ack
            offset = 0
            while offset + _HDR.size <= len(data):
                length, mtype, _flags, seq, _pid = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    break
                if seq == fence and mtype & 0xFF == NFT_MSG_NEWGEN and mtype >> 8:
                    msg = nft_gen_msg(data[offset : offset + length])
                    msg.decode()
                    return acks, int(msg.get_attr("NFTA_GEN_ID"))
                if seq == fence and mtype == NLMSG_ERROR:
                    raise NftError("read generation", acks[fence].code, "?", acks[fence].reason)
                offset += (length + 3) & ~3

    def generation(self) -> int:
        """The ruleset's generation id (bumped by every committed transaction)."""
        seq = next(self._seq)
        try:
            self._sock.send(self._encode(NFT_MSG_GETGEN, NLM_F_REQUEST, (), seq))
            return self._read_until(seq)[1]
        except OSError as exc:
            raise _os_error("read generation", exc) from exc

    def dump(self, mtype: int, attrs: Sequence[tuple[str, Any]], what: str) -> list[Any]:
        """A ``GET*`` dump: decoded pyroute2 messages. ``ENOENT`` gives an empty list."""
        out = []
        for chunk in self._dump(mtype, attrs, what):
            (_, rtype, _, _, _) = _HDR.unpack_from(chunk)
            msg = _CLASSES[rtype & 0xFF](chunk)
            msg.decode()
            out.append(msg)
        return out

    def dump_attributes(
        self, mtype: int, attrs: Sequence[tuple[str, Any]], what: str
    ) -> list[dict[int, bytes]]:
        """A ``GET*`` dump as each message's top-level attributes (type -> payload), undecoded:
        reading a rule's handle and tag this way skips decoding its expressions, which made a
        1,000-rule chain's dump cost ~100 ms."""
        out = []
        for chunk in self._dump(mtype, attrs, what):
            found: dict[int, bytes] = {}
            offset = _HDR.size + _NFGEN_LEN
            while offset + _NLA.size <= len(chunk):
                length, atype = _NLA.unpack_from(chunk, offset)
                if length < _NLA.size:
                    break
                found[atype & _NLA_TYPE_MASK] = chunk[offset + _NLA.size : offset + length]
                offset += (length + 3) & ~3
            out.append(found)
        return out

    def _dump(self, mtype: int, attrs: Sequence[tuple[str, Any]], what: str) -> list[bytes]:
        seq = next(self._seq)
        out: list[bytes] = []
        try:
            self._sock.send(self._encode(mtype, NLM_F_REQUEST | NLM_F_DUMP, attrs, seq))
            while True:
                data = self._sock.recv(RCVBUF)
                offset = 0
                while offset + _HDR.size <= len(data):
                    length, rtype, _flags, rseq, _pid = _HDR.unpack_from(data, offset)
                    if length < _HDR.size:
                        break
                    chunk = data[offset : offset + length]
                    offset += (length + 3) & ~3
                    if rseq != seq:
                        continue
                    if rtype == NLMSG_DONE:
                        return out
                    if rtype == NLMSG_ERROR:
                        ((_, ack),) = parse_acks(chunk)
                        if ack.code == errno.ENOENT:
                            return []
                        raise NftError(what, ack.code, ack.errno_name, ack.reason)
                    out.append(chunk)
        except OSError as exc:
            raise _os_error(what, exc) from exc

    def close(self) -> None:
        self._sock.close()


class NftBatch:
    """Requests collected for one transaction (a thin builder over :class:`NftRequest`)."""

    def __init__(self) -> None:
        self.requests: list[NftRequest] = []

    def add(self, mtype: int, flags: int, attrs: dict[str, Any], what: str) -> None:
        self.requests.append(NftRequest(mtype, flags, tuple(attrs.items()), what))

    def __len__(self) -> int:
        return len(self.requests)


def _os_error(what: str, exc: OSError) -> NftError:
    code = exc.errno or errno.EIO
    return NftError(what, code, errno.errorcode.get(code, str(code)), str(exc))
