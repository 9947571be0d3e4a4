"""Notice nftables transactions committed by other processes (``nft flush ruleset``, a firewall
manager) in our network namespace, so the tables netd owns are read back at once rather than at
the next periodic check.

The kernel announces every committed transaction on the ``NFNLGRP_NFTABLES`` multicast group
with a ``NEWGEN`` message naming the committing thread (``NFTA_GEN_PROC_PID``); those of
this process's threads are ignored. A full receive buffer (``ENOBUFS``: notifications were
lost) counts as a change. Non-blocking; read it from the event loop when it is readable.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Final

from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, NFNLGRP_NFTABLES
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_NEWGEN, nft_gen_msg

from netd.errors import NftError
from netd.nftbatch import NETLINK_NETFILTER

__all__ = ["NftWatch"]

_HDR: Final = struct.Struct("=IHHII")
_NEWGEN: Final = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN
_RCVBUF: Final = 1024 * 1024


class NftWatch:
    """A subscription to this namespace's nftables commits."""

    def __init__(self) -> None:
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
            if mtype == _NEWGEN:
                msg = nft_gen_msg(data[offset : offset + length])
                msg.decode()
                found |= not _ours(int(msg.get_attr("NFTA_GEN_PROC_PID") or 0))
            offset += (length + 3) & ~3
        return found

    def close(self) -> None:
        self._sock.close()


def _ours(pid: int) -> bool:
    # The kernel names the committing thread (task_pid_nr), and netd commits from its netlink
    # worker thread: a thread of this process is ours.
    return pid > 0 and os.path.exists(f"/proc/self/task/{pid}")
