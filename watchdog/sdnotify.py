"""systemd's notify protocol (sd_notify(3)), spoken without libsystemd.

A ``Type=notify`` unit (Debian's keepalived.service is one) waits for ``READY=1`` and kills a
daemon that never sends it; ``WatchdogSec=`` kills one whose ``WATCHDOG=1`` pings stop. The
protocol is one datagram of ``KEY=value`` lines to the socket named by ``$NOTIFY_SOCKET``
(a leading ``@`` means the abstract namespace), so a few lines of socket code replace a
dependency. Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"


class Notifier:
    """Sends notify messages to systemd; a no-op when not started by it."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get(NOTIFY_SOCKET, "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self._sock: socket.socket | None = None
        self._failed = False
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *lines: str) -> None:
        if not self._address:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            # systemd gone or the socket wrong: say so once, never stop the daemon for it.
            if not self._failed:
                log.warning("watchdog.sdnotify.failed", socket=self._address, reason=str(exc))
            self._failed = True
            return
        self._failed = False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        # systemd >= 253 (Type=notify-reload) wants the monotonic time beside RELOADING=1.
        self.send(
            "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        )

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of WatchdogSec, as sd_watchdog_enabled(3) advises."""
    usec = env.get(WATCHDOG_USEC)
    if not usec:
        return None
    pid = env.get(WATCHDOG_PID)
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (e.g. a wrapper that exec'd us is not us)
    try:
        value = int(usec)
    except ValueError:
        log.warning("watchdog.sdnotify.bad_watchdog_usec", value=usec)
        return None
    return value / 2e6 if value > 0 else None
