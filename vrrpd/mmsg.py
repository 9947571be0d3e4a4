"""Reading a raw IPv4 socket in batches: one ``recvmmsg`` system call for many datagrams.

Python's socket module has no ``recvmmsg``; a backup of hundreds of instances hears thousands
of adverts a second, and one ``recv`` each (with a 4 kB buffer allocated and shrunk per call)
was most of what its receive path cost. This calls libc's ``recvmmsg`` through ctypes into
buffers allocated once.

Each datagram is scattered so that what lands in its slot is already the *key* the receive
path dedups on (see :func:`ipv4_key`): the IP header's first four bytes (version, header length,
TOS, total length), its TTL, and everything from the source address on. The identification,
fragment, protocol and header checksum bytes (which change from one advert to the next, or
cannot differ on a protocol-112 socket, and which the kernel already checked) go to a scratch
area. A slot then holds the key contiguously and one slice per datagram yields it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from typing import Any

__all__ = ["KEY_DROPPED", "BatchReader", "ipv4_key", "recvmmsg_available"]

#: bytes of the IPv4 header not in the key: identification + fragment (4), protocol +
#: checksum (3)
KEY_DROPPED = 7
_MSG_DONTWAIT = 0x40
# Scatter layout of one datagram: (length, kept in the key?). The last piece takes the rest.
_PIECES = ((4, True), (4, False), (1, True), (3, False))


def ipv4_key(data: bytes) -> bytes:
    """The key of a whole IPv4 datagram, as :class:`BatchReader` delivers it."""
    return data[0:4] + data[8:9] + data[12:]


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_IoVec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("hdr", _MsgHdr), ("len", ctypes.c_uint))


def _libc_recvmmsg() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    fn.restype = ctypes.c_int
    return fn


_RECVMMSG = _libc_recvmmsg()


def recvmmsg_available() -> bool:
    return _RECVMMSG is not None


class BatchReader:
    """Reads up to ``slots`` datagrams of at most ``size`` bytes per call from ``fd``.

    A datagram longer than ``size`` is cut to it, as ``recv(size)`` cuts it.
    """

    def __init__(self, fd: int, slots: int, size: int) -> None:
        if _RECVMMSG is None:
            raise OSError(errno.ENOSYS, "recvmmsg is not available")
        self._fd, self._slots = fd, slots
        self._stride = size - KEY_DROPPED  # a slot holds one datagram's key
        self._buf = ctypes.create_string_buffer(slots * self._stride)
        self._scratch = ctypes.create_string_buffer(8)
        self._iov = (_IoVec * (slots * (len(_PIECES) + 1)))()
        self._msgs = (_MMsgHdr * slots)()
        base, scratch = ctypes.addressof(self._buf), ctypes.addressof(self._scratch)
        pieces = len(_PIECES) + 1
        for i in range(slots):
            at = base + i * self._stride
            for j, (length, kept) in enumerate(_PIECES):
                iov = self._iov[i * pieces + j]
                iov.base, iov.len = (at, length) if kept else (scratch, length)
                at += length if kept else 0
            last = self._iov[i * pieces + len(_PIECES)]
            last.base, last.len = at, size - sum(length for length, _ in _PIECES)
            self._msgs[i].hdr.iov = ctypes.pointer(self._iov[i * pieces])
            self._msgs[i].hdr.iovlen = pieces
        self._view = memoryview(self._buf).cast("B")
        # Each message's received length, read for all of them at once.
        words = ctypes.sizeof(_MMsgHdr) // 4
        first = _MMsgHdr.len.offset // 4
        self._lens = memoryview(self._msgs).cast("B").cast("I")[first::words]
        self._msgs_at = ctypes.addressof(self._msgs)

    def read(self) -> list[bytes]:
        """The keys of the datagrams queued now (at most ``slots``); raises OSError."""
        assert _RECVMMSG is not None
        n = _RECVMMSG(self._fd, self._msgs_at, self._slots, _MSG_DONTWAIT, None)
        if n < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK):
                return []
            raise OSError(err, os.strerror(err))
        view, stride, dropped = self._view, self._stride, KEY_DROPPED
        out = []
        at = 0
        for length in self._lens[:n].tolist():
            # A raw IPv4 socket always delivers the 20-byte header; anything shorter has no
            # key (recv's caller drops such a datagram too).
            if length >= 20:
                out.append(view[at : at + length - dropped].tobytes())
            at += stride
        return out
