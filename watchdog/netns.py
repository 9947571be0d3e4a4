"""Enter the network namespace the daemon runs in (``net_namespace NAME`` or ``-s NAME``).

keepalived's parent opens ``/var/run/netns/NAME`` and calls ``setns(CLONE_NEWNET)`` before it
starts any child, so every process and socket it has lives in that namespace. The watchdog
does the same before it starts the bus: every child it starts (and every script they run)
inherits the namespace. The bus's ipc sockets are files, so ``pykeepalivedctl`` reaches the
daemon from any namespace. No pyroute2 here (only netd talks to the kernel's network side):
``setns(2)`` through libc, as ``os.setns`` does from Python 3.12.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path
from typing import Final

from watchdog.errors import NamespaceUnavailable

NETNS_DIR: Final = Path("/var/run/netns")  # where `ip netns add` puts them, as keepalived
CLONE_NEWNET: Final = 0x40000000


def enter(name: str, netns_dir: Path = NETNS_DIR) -> None:
    """Move this process (single-threaded: setns changes the calling thread only, and every
    thread and process started afterwards inherits it) into namespace ``name``."""
    path = netns_dir / name
    if "/" in name or name in ("", ".", ".."):
        raise NamespaceUnavailable(f"network namespace {name!r} is not a namespace name")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceUnavailable(
            f"network namespace {name} does not exist ({path} is missing; "
            f"create it with `ip netns add {name}`)"
        ) from None
    except OSError as exc:
        raise NamespaceUnavailable(
            f"cannot open network namespace {name} ({path}): {exc.strerror}"
        ) from None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise NamespaceUnavailable(
                f"cannot enter network namespace {name} ({path}): {os.strerror(code)}"
                + (" (needs CAP_SYS_ADMIN)" if code == errno.EPERM else "")
            )
    finally:
        os.close(fd)
