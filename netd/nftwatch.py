"""Notice nftables transactions committed by other processes (``nft flush ruleset``, a firewall
manager) that touch a table netd owns, so it is read back at once rather than at the next
periodic check.

The kernel announces every committed transaction on the ``NFNLGRP_NFTABLES`` multicast group:
one message per changed object (each naming its table in attribute 1: ``NFTA_TABLE_NAME``,
``NFTA_CHAIN_TABLE``, ``NFTA_RULE_TABLE``, ``NFTA_SET_TABLE``, ``NFTA_SET_ELEM_LIST_TABLE``),
then a ``NEWGEN`` naming the committing thread (``NFTA_GEN_PROC_PID``). A transaction counts
when one of its messages names a watched table and the thread is not one of this process's. A
full receive buffer (``ENOBUFS``: notifications were lost) counts as a change. Non-blocking;
read it from the event loop when it is readable.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Collection
from typing import Final

from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, NFNLGRP_NFTABLES
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_NEWGEN, nft_gen_msg

from netd.errors import NftError
from netd.nftbatch import NETLINK_NETFILTER

__all__ = ["NftWatch"]

_HDR: Final = struct.Struct("=IHHII")
_NLA: Final = struct.Struct("=HH")
_NFGEN_LEN: Final = 4  # struct nfgenmsg: family, version, res_id
_NEWGEN: Final = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN
_RCVBUF: Final = 1024 * 1024
_TABLE_ATTR: Final = 1  # the table's name, in every table/chain/rule/set/element message


class NftWatch:
    """A subscription to this namespace's nftables commits touching ``tables`` ((family,
    name) pairs; ``None``: any commit)."""

    def __init__(self, tables: Collection[tuple[int, str]] | None = None) -> None:
        self._tables = None if tables is None else frozenset(tables)
        self._touched = False  # since the last NEWGEN, a message named a watched table
        try:
            self._sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, NETLINK_NETFILTER
            )
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            self._sock.bind((0, 1 << (NFNLGRP_NFTABLES - 1)))
        except OSError as exc:
            code = exc.errno or errno.EIO
            raise NftError(
                "watch nftables commits", code, errno.errorcode.get(code, str(code)), str(exc)
            ) from exc

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> bool:
        """Drain what arrived; whether another process committed a transaction meanwhile."""
        others = False
        while True:
            try:
                data = self._sock.recv(_RCVBUF)
            except BlockingIOError:
                return others
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    others = True  # lost notifications: assume the worst
                    continue
                raise NftError(
                    "read nftables notifications", exc.errno or errno.EIO, "EIO", str(exc)
                ) from exc
            others |= self._foreign_commit(data)

    def _foreign_commit(self, data: bytes) -> bool:
        offset, found = 0, False
        while offset + _HDR.size <= len(data):
            length, mtype, _flags, _seq, _pid = _HDR.unpack_from(data, offset)
            if length < _HDR.size:
                break
            chunk = data[offset : offset + length]
            offset += (length + 3) & ~3
            if mtype == _NEWGEN:
                msg = nft_gen_msg(chunk)
                msg.decode()
                foreign = not _ours(int(msg.get_attr("NFTA_GEN_PROC_PID") or 0))
                found |= foreign and (self._touched or self._tables is None)
                self._touched = False
            elif mtype >> 8 == NFNL_SUBSYS_NFTABLES and self._tables is not None:
                self._touched = self._touched or _table_of(chunk) in self._tables
        return found

    def close(self) -> None:
        self._sock.close()


def _table_of(msg: bytes) -> tuple[int, str] | None:
    """(family, table name) of one nftables object message, read without decoding the rest
    (a foreign transaction on a big table is thousands of these)."""
    if len(msg) < _HDR.size + _NFGEN_LEN:
        return None
    family = msg[_HDR.size]
    offset = _HDR.size + _NFGEN_LEN
    while offset + _NLA.size <= len(msg):
        length, kind = _NLA.unpack_from(msg, offset)
        if length < _NLA.size:
            return None
        if kind & 0x3FFF == _TABLE_ATTR:
            name = msg[offset + _NLA.size : offset + length].split(b"\0", 1)[0]
            return family, name.decode(errors="replace")
        offset += (length + 3) & ~3
    return None


def _ours(pid: int) -> bool:
    # The kernel names the committing thread (task_pid_nr), and netd commits from its netlink
    # worker thread: a thread of this process is ours.
    return pid > 0 and os.path.exists(f"/proc/self/task/{pid}")
