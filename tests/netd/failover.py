"""Helpers for netd's failure-semantics tests: two-node daemon groups and a VIP watcher.

The watcher samples both nodes' kernels every few milliseconds from a thread (one netlink
socket per node, bound to the node's namespace) and, optionally, listens to one node's
address notifications, so a VIP removed and re-added between two samples is still seen.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute

from bus import RuntimeDir
from netd.monitor import AddrEvent, Monitor
from tests.daemon import REPO, DaemonGroup, component_pids, stop
from tests.lab import Node, enter_netns, wait_until

VIP = "192.0.2.200"
ADVERT_INT = 0.5


def config(priority: int, router_id: str, extra: str = "", vip_line: str = f"{VIP}/24") -> str:
    return f"""
global_defs {{
    router_id {router_id}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    version 3
    advert_int {ADVERT_INT}
{extra}
    virtual_ipaddress {{
        {vip_line}
    }}
}}
"""


def master_down(priority: int) -> float:
    """RFC 5798 Master_Down_Interval for ADVERT_INT: what vrrpd leases its intents for."""
    return 3 * ADVERT_INT + (256 - priority) * ADVERT_INT / 256


class GroupAt(DaemonGroup):
    """A daemon group started on an existing runtime directory (a restart after a crash)."""

    def __init__(self, node: Node, runtime: RuntimeDir, config_text: str, *extra: str) -> None:
        self.node = node
        self.runtime = runtime
        self.config = runtime.path / "keepalived.conf"
        self.config.write_text(config_text)
        self._log_path = runtime.path / f"daemon-{time.monotonic_ns()}.log"
        self.log = self._log_path.open("wb")
        argv = [sys.executable, "-m", "watchdog", "-f", str(self.config)]
        argv += ["--runtime-dir", str(runtime.path), "-l", *extra]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = node.popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=REPO)

    def log_text(self) -> str:
        self.log.flush()
        return self._log_path.read_text(errors="replace")

    def __enter__(self) -> GroupAt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # The runtime directory belongs to the first group: keep it for its close().
        stop(self.proc, timeout=40)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not self.pids(), 10, message="children to exit")
        for pid in self.pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


def kill_group(runtime: RuntimeDir) -> None:
    """``kill -9`` of the watchdog and every child at once, as an OOM kill or a cgroup-wide
    SIGKILL would do.

    Children get SIGTERM when their watchdog dies (PR_SET_PDEATHSIG) and would clean up, so
    the watchdog is frozen first and killed last: nobody gets a chance to tidy anything.
    """
    pids = component_pids(runtime)
    watchdog = pids.pop("watchdog")
    os.kill(watchdog, signal.SIGSTOP)
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: not set(pids.values()) & set(component_pids(runtime).values()),
        10,
        message="the killed children to be gone",
    )
    os.kill(watchdog, signal.SIGKILL)
    wait_until(lambda: not component_pids(runtime), 10, message="the killed group to be gone")


@dataclass(slots=True)
class Sample:
    t: float  # monotonic
    held: tuple[bool, ...]  # per watched node


@dataclass(slots=True)
class VipWatch:
    """Samples which nodes hold ``ip`` (and records its removals on node ``monitor_node``)."""

    nodes: Sequence[Node]
    ip: str = VIP
    interval: float = 0.003
    monitor_node: int | None = None
    samples: list[Sample] = field(default_factory=list)
    removals: list[tuple[float, AddrEvent]] = field(default_factory=list)
    additions: list[tuple[float, AddrEvent]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _iprs: list[Any] = field(default_factory=list)
    _monitor: Monitor | None = None

    def __enter__(self) -> VipWatch:
        if self.monitor_node is not None:
            self._monitor = self.nodes[self.monitor_node].call(Monitor)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="vip-watch")
        self._thread.daemon = True
        self._thread.start()
        if not ready.wait(10):
            raise AssertionError("the VIP watcher did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._monitor is not None:
            self._monitor.close()

    def _holds(self, ipr: Any) -> bool:
        return any(
            (m.get("IFA_LOCAL") or m.get("IFA_ADDRESS")) == self.ip
            for m in ipr.addr("dump", family=socket.AF_INET6 if ":" in self.ip else socket.AF_INET)
        )

    def _sample(self) -> None:
        held = tuple(self._holds(ipr) for ipr in self._iprs)
        self.samples.append(Sample(time.monotonic(), held))

    def _run(self, ready: threading.Event) -> None:
        # pyroute2's sockets belong to the thread (and namespace) that opened them.
        for node in self.nodes:
            with enter_netns(node.netns):
                self._iprs.append(IPRoute())
        self._sample()
        ready.set()
        while not self._stop.is_set():
            self._sample()
            if self._monitor is not None:
                now = time.monotonic()
                for ev in self._monitor.read():
                    if isinstance(ev, AddrEvent) and ev.ip == self.ip:
                        (self.additions if ev.added else self.removals).append((now, ev))
            self._stop.wait(self.interval)
        for ipr in self._iprs:
            ipr.close()

    def now_held(self, i: int) -> bool:
        return self.samples[-1].held[i]

    def wait_held(self, i: int, want: bool, timeout: float, after: float = 0.0) -> float:
        """The time of the first sample at or after ``after`` where node i holds (or not)."""

        def found() -> float | None:
            for s in list(self.samples):
                if s.t >= after and s.held[i] == want:
                    return s.t
            return None

        return wait_until(
            found, timeout, 0.01, f"node {i} {'holding' if want else 'without'} {self.ip}"
        )

    def wait_sampled_until(self, t: float) -> None:
        wait_until(lambda: self.samples[-1].t >= t, t - time.monotonic() + 5, 0.01, "samples")

    def longest_both(self, since: float = 0.0) -> float:
        """The longest stretch (seconds) during which every watched node held the address."""
        longest, start = 0.0, None
        for s in self.samples:
            if s.t < since:
                continue
            if all(s.held):
                if start is None:
                    start = s.t
                longest = max(longest, s.t - start)
            else:
                start = None
        return longest

    def gaps(self, i: int, since: float = 0.0) -> list[float]:
        """Times (since ``since``) of samples where node i did not hold the address."""
        return [s.t for s in self.samples if s.t >= since and not s.held[i]]

    def max_interval(self, since: float = 0.0) -> float:
        ts = [s.t for s in self.samples if s.t >= since]
        return max((b - a for a, b in itertools.pairwise(ts)), default=0.0)


def add_operator_address(node: Node, cidr: str, ifname: str = "eth0") -> None:
    """What an operator does with ``ip addr add``: no netd marker on it."""
    ip, _, prefix = cidr.partition("/")
    with node.ipr() as ipr:
        ipr.addr("add", index=node.ifindex(ifname), address=ip, prefixlen=int(prefix))
