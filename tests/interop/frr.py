"""FRRouting's vrrpd as an interop peer: zebra + vrrpd run by hand inside one lab node.

FRR does not create the virtual MAC itself: the operator makes one macvlan per family on the
VRRP interface (mode bridge, MAC ``00:00:5e:00:01:VRID`` for IPv4 and ``...:02:VRID`` for
IPv6, ``addrgenmode random`` so two routers never derive the same link-local) and puts the
VIPs on it. vrrpd finds it by MAC and parent, and holds it ``protodown on`` (carrier off)
while Backup, through zebra. So on an FRR node the VIP is always configured; whether it is
*held* is whether its macvlan is up (:meth:`FrrPeer.holds_vip`).

Each peer gets a private dir (configs, pid files, the zserv socket, the vty sockets, the
logs), so peers in several namespaces, or the host's own FRR, never share state. The daemons
run as the ``frr`` user the Debian package creates, because FRR insists that the user it runs
as is in its ``frrvty`` group (root is not).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from tests.lab import Node, wait_until

__all__ = ["FRR_VRRPD", "FRR_ZEBRA", "VTYSH", "FrrPeer", "frr_vmac", "frr_vmac_name"]

FRR_DIR = Path("/usr/lib/frr")
FRR_VRRPD = FRR_DIR / "vrrpd"
FRR_ZEBRA = FRR_DIR / "zebra"
VTYSH = Path("/usr/bin/vtysh")
FRR_USER = "frr"

# vrrpd's words for a datagram it refused or found odd (vrrp.c, vrrp_packet.c: every parse
# or validation failure is "Datagram invalid: ..."; an address count unlike its own is
# "Datagram has N addresses, but this VRRP instance has M"). Its own start-up races (binding
# before zebra reported the macvlan's fresh link-local) are not about our packets.
COMPLAINTS = re.compile(r"Datagram invalid|Datagram has \d+ addresses|this is a bug", re.IGNORECASE)

_FAMILY_BYTE = {4: 1, 6: 2}
_HEXDUMP = re.compile(r"\] [0-9a-f]{16}: ")  # zlog_hexdump lines: "<address>: 31 33 64 ..."
T = TypeVar("T")


def frr_vmac(vrid: int, family: int) -> str:
    """The RFC 5798 virtual MAC: 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6)."""
    return f"00:00:5e:00:{_FAMILY_BYTE[family]:02x}:{vrid:02x}"


def frr_vmac_name(vrid: int, family: int) -> str:
    """The macvlan name FRR's documentation uses (``vrrp4-2-1`` style, minus the index)."""
    return f"vrrp{family}-{vrid}"


def _family(vip: str) -> int:
    return ipaddress.ip_interface(vip).version


class FrrPeer:
    """zebra + vrrpd in one lab node with one VRRP router (one VRID, v4 and/or v6 VIPs).

    ``advert_ms`` is FRR's unit (milliseconds, multiples of 10); the wire carries centiseconds.
    ``debug vrrp`` is on, so every received advert and every refusal lands in the log.
    """

    def __init__(
        self,
        node: Node,
        *,
        vips: Sequence[str],
        vrid: int = 51,
        priority: int = 100,
        advert_ms: int = 1000,
        version: int = 3,
    ) -> None:
        self.node = node
        self.vips = tuple(vips)
        self.vrid = vrid
        self.priority = priority
        self.advert_ms = advert_ms
        self.version = version
        self.families = tuple(sorted({_family(v) for v in self.vips}))
        self.dir = Path(tempfile.mkdtemp(prefix="pk-frr-", dir="/tmp"))
        self.log_path = self.dir / "vrrpd.log"
        self.zebra: subprocess.Popen[bytes] | None = None
        self.vrrpd: subprocess.Popen[bytes] | None = None
        self._stopped: subprocess.Popen[bytes] | None = None  # stopped on purpose, not died
        self._out: list[BinaryIO] = []

    # -- set-up -----------------------------------------------------------------------------

    def vrrpd_config(self) -> str:
        v = self.vrid
        lines = [
            f"hostname frr{self.node.index}",
            "debug vrrp",
            f"interface {self.node.ifname}",
            f" vrrp {v} version {self.version}",
            f" vrrp {v} priority {self.priority}",
            f" vrrp {v} advertisement-interval {self.advert_ms}",
        ]
        for vip in self.vips:
            ip = ipaddress.ip_interface(vip).ip
            lines.append(f" vrrp {v} {'ip' if ip.version == 4 else 'ipv6'} {ip}")
        return "\n".join([*lines, ""])

    def _make_vmacs(self) -> None:
        base = self.node.ifname
        for family in self.families:
            name = frr_vmac_name(self.vrid, family)
            ip = ["ip", "link", "set", "dev", name]
            for argv in (
                ["ip", "link", "add", name, "link", base, "type", "macvlan", "mode", "bridge"],
                [*ip, "addrgenmode", "random"],
                [*ip, "address", frr_vmac(self.vrid, family)],
                *(
                    ["ip", "addr", "add", vip, "dev", name]
                    for vip in self.vips
                    if _family(vip) == family
                ),
                [*ip, "up"],
            ):
                self.node.run(argv)

    def _daemon(self, name: str) -> subprocess.Popen[bytes]:
        d = self.dir
        conf = d / f"{name}.conf"
        argv = [
            str(FRR_DIR / name),
            "-f",
            str(conf),
            "-i",
            str(d / f"{name}.pid"),
            "-z",
            str(d / "zserv.api"),
            "--vty_socket",
            str(d),
            "-P",
            "0",  # no TCP vty: peers in several namespaces would fight over its port
            "-u",
            FRR_USER,
            "-g",
            FRR_USER,
            "--log",
            f"file:{d / name}.log",
            "--log-level",
            "debug",
        ]
        out = (d / f"{name}.out").open("wb")
        self._out.append(out)
        return self.node.popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def start(self) -> FrrPeer:
        shutil.chown(self.dir, FRR_USER, FRR_USER)
        (self.dir / "zebra.conf").write_text(f"hostname zebra{self.node.index}\n")
        (self.dir / "vrrpd.conf").write_text(self.vrrpd_config())
        self._make_vmacs()
        self.zebra = self._daemon("zebra")
        # vrrpd retries a missing zserv socket only after a back-off; wait for it instead.
        self._wait_socket("zserv.api")
        self.vrrpd = self._daemon("vrrpd")
        self._wait_socket("vrrpd.vty")
        return self

    def _wait_socket(self, name: str) -> None:
        self._alive_wait((self.dir / name).exists, 10, f"FRR socket {name}")

    # -- observing --------------------------------------------------------------------------

    def vtysh(self, command: str) -> str:
        """One vtysh command against this peer's vrrpd (unix sockets need no namespace)."""
        done = subprocess.run(
            [str(VTYSH), "--vty_socket", str(self.dir), "-d", "vrrpd", "-c", command],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout

    def show(self) -> dict[str, Any]:
        """``show vrrp json`` for our VRID, e.g. ``{"v4": {"status": "Master", ...}, ...}``."""
        routers: list[dict[str, Any]] = json.loads(
            self.vtysh(f"show vrrp interface {self.node.ifname} {self.vrid} json")
        )
        (router,) = routers
        return router

    def status(self, family: int = 4) -> str:
        """``Initialize``, ``Backup`` or ``Master`` of the v4 or v6 router."""
        return str(self.show()[f"v{family}"]["status"])

    def stats(self, family: int = 4) -> dict[str, int]:
        return dict(self.show()[f"v{family}"]["stats"])

    def wait_status(self, status: str, family: int = 4, timeout: float = 10.0) -> None:
        self._alive_wait(lambda: self.status(family) == status, timeout, f"FRR v{family} {status}")

    def holds_vip(self, family: int = 4) -> bool:
        """Whether the macvlan with the VIP is up: not ``protodown`` as FRR keeps it in Backup."""
        name = frr_vmac_name(self.vrid, family)
        with self.node.ipr() as ipr:
            (link,) = ipr.link("get", ifname=name)
        return bool(link.get("IFLA_OPERSTATE") == "UP" and not link.get("IFLA_PROTO_DOWN"))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def mark(self) -> int:
        """A position in the log; pass it as ``since`` to wait only for later lines."""
        return len(self.log_text())

    def wait_log(self, pattern: str, timeout: float = 10.0, since: int = 0) -> re.Match[str]:
        rx = re.compile(pattern)
        return self._alive_wait(
            lambda: rx.search(self.log_text(), since), timeout, f"FRR log /{pattern}/"
        )

    def complaints(self) -> list[str]:
        """Log lines where vrrpd refused or questioned a received packet."""
        return [ln for ln in self.log_text().splitlines() if COMPLAINTS.search(ln)]

    def diagnostics(self) -> str:
        """The daemons' output and logs, without the packet hex dumps, for a failing test."""
        parts = []
        for name in ("zebra.out", "vrrpd.out", "zebra.log", "vrrpd.log"):
            path = self.dir / name
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()
                text = "\n".join(ln for ln in lines if not _HEXDUMP.search(ln))
                parts.append(f"--- FRR {name} ---\n{text[-6000:]}")
        return "\n".join(parts)

    def _alive_wait(self, probe: Callable[[], T | None], timeout: float, message: str) -> T:
        """``wait_until`` that fails at once, with the logs, if a daemon died on its own."""

        def check() -> T | None:
            for name, proc in (("zebra", self.zebra), ("vrrpd", self.vrrpd)):
                if proc is not None and proc.poll() is not None and proc is not self._stopped:
                    raise AssertionError(f"FRR {name} exited with {proc.returncode}")
            return probe()

        try:
            return wait_until(check, timeout, 0.05, message)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnostics()}") from exc.__cause__

    # -- stopping ---------------------------------------------------------------------------

    def stop_vrrpd(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """TERM: vrrpd's orderly Shutdown (a priority-0 advert, protodown on); KILL: silence.

        zebra stays up, as it would on a router whose vrrpd alone died.
        """
        proc = self.vrrpd
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        self._stopped = proc
        proc.send_signal(sig)  # `ip netns exec` execs vrrpd, so this is vrrpd itself
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def close(self) -> None:
        for proc in (self.vrrpd, self.zebra):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        for out in self._out:
            out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> FrrPeer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            if exc[0] is not None:
                print(self.diagnostics())
        self.close()
