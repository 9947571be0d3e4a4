"""Helpers for interop tests: one keepalived.conf for both daemons, a keepalived peer, observers.

* :func:`vrrp_config` renders one ``vrrp_instance`` config; the *same text* is given to Debian's
  keepalived and to pykeepalived, which is the drop-in promise being tested.
* :class:`KeepalivedPeer` runs ``/usr/sbin/keepalived`` in a lab node (foreground, log on
  stdout into a file), lets a test wait for its log lines, and stops or kills it.
* :class:`BusWatch` follows ``vrrp.state.<instance>`` of a pykeepalived group synchronously.
* :func:`vip_holders` asks the kernels which nodes hold an address.
* :func:`vrrp_frames` / :func:`decode_vrrp` pick VRRP adverts out of a capture and decode them
  with scapy, the independent reference.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from bus import RuntimeDir, decode
from bus.errors import MessageRejected
from tests.lab import Lab, Node, wait_until

__all__ = [
    "KEEPALIVED",
    "BusWatch",
    "KeepalivedPeer",
    "VrrpFrame",
    "decode_vrrp",
    "log_times",
    "vip_holders",
    "vrrp_config",
    "vrrp_frames",
    "wait_holders",
    "wait_sole_holder",
]

KEEPALIVED = Path("/usr/sbin/keepalived")

# keepalived words for a packet it refused; none may appear while it talks to us.
COMPLAINTS = re.compile(
    r"invalid|bogus|checksum|malformed|mismatch|wrong|unknown|discard(?!ing)|error",
    re.IGNORECASE,
)


def vrrp_config(
    *,
    router_id: str,
    interface: str = "eth0",
    vrid: int = 51,
    priority: int = 100,
    vips: Sequence[str] = ("192.0.2.100/24",),
    advert_int: float = 1,
    version: int = 2,
    auth_pass: str | None = None,
    auth_type: str = "PASS",
    unicast_src: str | None = None,
    unicast_peers: Sequence[str] = (),
    nopreempt: bool = False,
    preempt_delay: float | None = None,
    native_ipv6: bool = False,
    instance: str = "VI_1",
) -> str:
    """A keepalived.conf with one instance, readable by keepalived 2.2.7 and pykeepalived."""
    lines = [
        "global_defs {",
        f"    router_id {router_id}",
        f"    vrrp_version {version}",
        # keepalived's defaults send a second GARP burst 5 s later; it only slows teardown.
        "    vrrp_garp_master_delay 0",
        "}",
        f"vrrp_instance {instance} {{",
        "    state BACKUP",
        f"    interface {interface}",
        f"    virtual_router_id {vrid}",
        f"    priority {priority}",
        f"    advert_int {advert_int:g}",
    ]
    if native_ipv6:
        lines.append("    native_ipv6")
    if nopreempt:
        lines.append("    nopreempt")
    if preempt_delay is not None:
        lines.append(f"    preempt_delay {preempt_delay:g}")
    if auth_pass is not None:
        lines += [
            "    authentication {",
            f"        auth_type {auth_type}",
            f"        auth_pass {auth_pass}",
            "    }",
        ]
    if unicast_src is not None:
        lines.append(f"    unicast_src_ip {unicast_src}")
    if unicast_peers:
        lines += ["    unicast_peer {", *(f"        {p}" for p in unicast_peers), "    }"]
    lines += ["    virtual_ipaddress {", *(f"        {v}" for v in vips), "    }", "}", ""]
    return "\n".join(lines)


def keepalived_argv(binary: Path, conf: Path, workdir: Path) -> list[str]:
    """keepalived in the foreground, logging to the console, its pid files in ``workdir``."""
    return [
        str(binary),
        "-n",
        "-l",
        "-D",
        "-f",
        str(conf),
        "-p",
        str(workdir / "keepalived.pid"),
        "-r",
        str(workdir / "vrrp.pid"),
        "-c",
        str(workdir / "checkers.pid"),
    ]


class KeepalivedPeer:
    """Debian's keepalived in one lab node, as a context manager.

    The config goes to a private temp dir together with the three pid files, so several
    keepalived processes (one per namespace) never share state. ``-n -l -D`` keeps it in the
    foreground with detailed logs on stdout, which land in ``log_path``.
    """

    def __init__(self, node: Node, config: str, binary: Path = KEEPALIVED) -> None:
        self.node = node
        self.config = config
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="pk-ka-", dir="/tmp"))
        self.conf_path = self.dir / "keepalived.conf"
        self.log_path = self.dir / "keepalived.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> KeepalivedPeer:
        self.conf_path.write_text(self.config)
        self._log = self.log_path.open("wb")
        self.proc = self.node.popen(
            keepalived_argv(self.binary, self.conf_path, self.dir),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def mark(self) -> int:
        """A position in the log; pass it as ``since`` to wait only for later lines."""
        return len(self.log_text())

    def wait_log(self, pattern: str, timeout: float = 10.0, since: int = 0) -> re.Match[str]:
        rx = re.compile(pattern)

        def found() -> re.Match[str] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"keepalived exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            return rx.search(self.log_text(), since)

        try:
            return wait_until(found, timeout, 0.02, f"keepalived log /{pattern}/")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- keepalived log ---\n{self.log_text()}") from None

    def wait_state(
        self, state: str, instance: str = "VI_1", timeout: float = 10.0, since: int = 0
    ) -> re.Match[str]:
        return self.wait_log(rf"\({re.escape(instance)}\) Entering {state} STATE", timeout, since)

    def current_state(self, instance: str = "VI_1") -> str | None:
        """The state of the last "Entering X STATE" line, or None before the first."""
        found = re.findall(rf"\({re.escape(instance)}\) Entering (\w+) STATE", self.log_text())
        return found[-1] if found else None

    def wait_current(self, state: str, instance: str = "VI_1", timeout: float = 10.0) -> None:
        try:
            wait_until(
                lambda: self.current_state(instance) == state,
                timeout,
                0.02,
                f"keepalived ({instance}) in {state}",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- keepalived log ---\n{self.log_text()}") from None

    def complaints(self) -> list[str]:
        """Log lines where keepalived reports a packet it did not like."""
        return [ln for ln in self.log_text().splitlines() if COMPLAINTS.search(ln)]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig`` (TERM: orderly stop with priority-0 adverts) and wait for the exit."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(sig)  # `ip netns exec` execs keepalived, so this is its parent
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def signal(self, sig: int) -> None:
        """Send ``sig`` to keepalived's parent without waiting (it forwards TERM to the child)."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the parent and its VRRP child: no priority 0, VIPs left in place."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.dir / "vrrp.pid").read_text())
            # Only while it is still keepalived's child: never a recycled pid.
            if Path(f"/proc/{pid}/stat").read_text().split()[3] == str(self.proc.pid):
                os.kill(pid, signal.SIGKILL)
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        # An orderly stop costs keepalived ~1 s (it waits for IGMP leaves); the lab is about to
        # go, so a test that wants the orderly stop asks for it with stop().
        self.kill()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> KeepalivedPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class BusWatch:
    """A synchronous subscriber to ``vrrp.state.<instance>`` of one pykeepalived group.

    vrrpd re-sends retained state to every new subscription, so the current state arrives
    at once; afterwards every transition does.
    """

    def __init__(self, runtime: RuntimeDir, instance: str = "VI_1") -> None:
        self.topic = f"vrrp.state.{instance}"
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(runtime.sub_endpoint)
        self.sock.setsockopt(zmq.SUBSCRIBE, self.topic.encode())
        self.history: list[dict[str, Any]] = []

    @property
    def last(self) -> dict[str, Any] | None:
        return self.history[-1] if self.history else None

    def poll(self, timeout: float = 0.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            if not self.sock.poll(int(remaining * 1000)):
                return
            while True:
                try:
                    frames = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    event = decode(frames)
                except MessageRejected:
                    continue
                if event.topic == self.topic:  # exact: VI_1 must not see VI_10
                    self.history.append({**event.body, "_ts": event.env.ts})
            if remaining == 0.0:
                return

    def mark(self) -> int:
        """A position in the history; pass it as ``since`` to wait only for later messages."""
        self.poll()
        return len(self.history)

    def wait_state(self, state: str, timeout: float = 10.0, since: int = 0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            self.poll(0.05)
            last = self.last
            fresh = len(self.history) > since
            return last if fresh and last is not None and last["state"] == state else None

        try:
            return wait_until(reached, timeout, 0.0, f"{self.topic} state {state}")
        except AssertionError as exc:
            seen = [(b["state"], b.get("cause")) for b in self.history]
            raise AssertionError(f"{exc}; seen {seen}") from None

    def states(self) -> list[str]:
        self.poll()
        return [b["state"] for b in self.history]

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()

    def __enter__(self) -> BusWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# bus.logline's text form: ``<timestamp>Z <component>: [<level above info>: ]<event> k=v ...``
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z [\w-]+: (?:[a-z]+: )?(\S+)", re.M)


def log_times(text: str, event: str) -> list[float]:
    """Unix times of every ``event`` record in a pykeepalived console log (``-l``)."""
    from datetime import UTC, datetime

    return [
        datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
        for stamp, name in _LOG_LINE.findall(text)
        if name == event
    ]


def vip_holders(lab: Lab, vip: str) -> set[int]:
    """Indexes of the nodes whose kernel has ``vip`` (``addr/len``) on an interface."""
    return {n.index for n in lab.nodes if vip in n.address_set()}


def wait_sole_holder(lab: Lab, vip: str, index: int, timeout: float = 10.0) -> None:
    """Wait until node ``index``, and no other node, holds ``vip``."""
    wait_holders(lab, vip, {index}, timeout)


def wait_holders(lab: Lab, vip: str, indexes: set[int], timeout: float = 10.0) -> None:
    """Wait until exactly the nodes ``indexes`` hold ``vip``.

    A state on the bus comes before netd has installed (or removed) the address, so a test
    that asserts where a VIP is waits for the kernel, not for the announcement.
    """
    wait_until(
        lambda: vip_holders(lab, vip) == indexes,
        timeout,
        0.02,
        f"{vip} held by nodes {sorted(indexes)}",
    )


@dataclass(frozen=True, slots=True)
class VrrpFrame:
    """One captured advert, decoded by scapy."""

    src: str
    dst: str
    ttl: int  # TTL or hop limit
    version: int
    vrid: int
    priority: int
    interval: int  # seconds (v2) or centiseconds (v3)
    addresses: tuple[str, ...]
    authtype: int
    auth: bytes
    checksum: int
    checksum_ok: bool


def _is_vrrp(frame: bytes) -> bool:
    ethertype = frame[12:14]
    if ethertype == b"\x08\x00":
        return len(frame) >= 14 + 20 and frame[14 + 9] == 112
    return ethertype == b"\x86\xdd" and len(frame) >= 14 + 40 and frame[14 + 6] == 112


def vrrp_frames(frames: Iterable[bytes]) -> list[bytes]:
    return [f for f in frames if _is_vrrp(f)]


def decode_vrrp(frame: bytes) -> VrrpFrame:
    """Decode an Ethernet frame carrying an advert; recompute the checksum the scapy way."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.layers.vrrp import VRRP, VRRPv3

    pkt = Ether(frame)
    ip = pkt[IP] if IP in pkt else pkt[IPv6]
    layer = VRRPv3 if VRRPv3 in pkt else VRRP
    vr = pkt[layer]
    got = int(vr.chksum)
    # Rebuild with the checksum left for scapy to compute (pseudo-header form for v3).
    clone = pkt.copy()
    clone[layer].chksum = None
    recomputed = int(Ether(bytes(clone))[layer].chksum)
    ttl = int(ip.ttl) if IP in pkt else int(ip.hlim)
    if layer is VRRP:
        auth = int(vr.auth1).to_bytes(4, "big") + int(vr.auth2).to_bytes(4, "big")
        authtype = int(vr.authtype)
    else:
        auth, authtype = b"", 0
    return VrrpFrame(
        src=str(ip.src),
        dst=str(ip.dst),
        ttl=ttl,
        version=int(vr.version),
        vrid=int(vr.vrid),
        priority=int(vr.priority),
        interval=int(vr.adv),
        addresses=tuple(str(a) for a in vr.addrlist),
        authtype=authtype,
        auth=auth,
        checksum=got,
        checksum_ok=got == recomputed,
    )
