"""Network faults for a lab cluster: nftables on the lab's bridge, link flaps, and what to check.

A :class:`FaultLab` is a :class:`tests.lab.Lab` of N daemon nodes plus one *observer* node
(the last one) that runs nothing and only asks, by ARP, who answers for the VIP. Faults are
injected on the wire itself: one nftables table of the ``bridge`` family in the hub
namespace, whose forward chain sees every frame between two bridge ports (``v0``, ``v1``...,
one per node) — flooded multicast adverts included, one copy per port — so the nodes' own
nftables (netd's) are never touched. This kernel has no netem: loss is ``numgen random``.

Each node's instance states come from its daemon's structured log (``vrrp.state`` lines), so
the timeline has the daemon's own timestamps and the dual-master windows can be measured.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.daemon import DaemonGroup
from tests.lab import Lab, Node

__all__ = ["FaultLab", "Transition", "cluster_config", "dual_master_windows"]

VIP = "192.0.2.200"
INSTANCE = "VI_1"
_TABLE = "pk_faults"


def cluster_config(index: int, priority: int, *, version: int, interval: str) -> str:
    return f"""
global_defs {{
    router_id node{index}
}}
vrrp_instance {INSTANCE} {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int {interval}
    version {version}
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class Transition:
    node: int
    at: float  # the daemon's own UTC timestamp, as a POSIX time
    old: str
    new: str
    cause_kind: str
    cause: str


def _log_lines(group: DaemonGroup) -> Iterator[dict[str, Any]]:
    for text in group.log_text().splitlines():
        if not text.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            line = json.loads(text)
            if isinstance(line, dict):
                yield line


def _posix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class FaultLab:
    """``nodes`` daemon nodes plus an observer on one bridge, with fault injection."""

    def __init__(self, configs: Sequence[str], interval: float) -> None:
        #: the instances' advert interval (seconds), to scale waits
        self.interval = interval
        self.lab = Lab(nodes=len(configs) + 1)
        self.groups: list[DaemonGroup] = []
        try:
            self.lab.wait_ready()
            self.observer = self.lab.nodes[-1]
            self.nodes = self.lab.nodes[:-1]
            self.macs = {node.mac(): node.index for node in self.nodes}
            self._nft(f"add table bridge {_TABLE}")
            self._nft(
                f"add chain bridge {_TABLE} faults "
                "{ type filter hook forward priority 0; policy accept; }"
            )
            for node, config in zip(self.nodes, configs, strict=True):
                self.groups.append(DaemonGroup(node, config))
        except BaseException:
            self.close()
            raise

    # ---- faults --------------------------------------------------------------------------

    def _nft(self, command: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.lab.hub, "nft", command],
            check=True,
            capture_output=True,
            text=True,
        )

    def fault(self, *rules: str) -> None:
        """Replace the injected fault with ``rules`` (nft statements of the forward chain)."""
        self._nft(f"flush chain bridge {_TABLE} faults")
        for rule in rules:
            self._nft(f"add rule bridge {_TABLE} faults {rule}")

    def heal(self) -> None:
        self._nft(f"flush chain bridge {_TABLE} faults")

    @staticmethod
    def port(index: int) -> str:
        return f"v{index}"

    def drop_between(self, src: Sequence[int], dst: Sequence[int]) -> list[str]:
        """Rules dropping every frame from nodes ``src`` to nodes ``dst`` (one way)."""
        ins = ", ".join(f'"{self.port(i)}"' for i in src)
        outs = ", ".join(f'"{self.port(i)}"' for i in dst)
        return [f"iifname {{ {ins} }} oifname {{ {outs} }} drop"]

    @staticmethod
    def advert_loss(percent: int) -> list[str]:
        """Each copy of an advert (IP protocol 112) lost with probability ``percent``."""
        return [f"ip protocol 112 numgen random mod 100 < {percent} drop"]

    def set_link(self, index: int, up: bool) -> None:
        """The hub end of node ``index``'s cable: down is a pulled cable for the node."""
        subprocess.run(
            ["ip", "-n", self.lab.hub, "link", "set", self.port(index), "up" if up else "down"],
            check=True,
            capture_output=True,
        )

    # ---- observations -------------------------------------------------------------------

    def transitions(self) -> list[Transition]:
        """Every node's instance transitions, merged in time order."""
        out = []
        for i, group in enumerate(self.groups):
            for line in _log_lines(group):
                if line.get("event") == "vrrp.state" and line.get("instance") == INSTANCE:
                    out.append(
                        Transition(
                            i,
                            _posix(str(line["timestamp"])),
                            str(line.get("old")),
                            str(line.get("new")),
                            str(line.get("cause_kind")),
                            str(line.get("cause")),
                        )
                    )
        return sorted(out, key=lambda t: t.at)

    def states(self) -> dict[int, str]:
        now = {i: "INIT" for i in range(len(self.groups))}
        for t in self.transitions():
            now[t.node] = t.new
        return now

    def masters(self) -> set[int]:
        return {i for i, state in self.states().items() if state == "MASTER"}

    def holders(self) -> set[int]:
        """Nodes whose kernel has the VIP on eth0."""
        return {n.index for n in self.nodes if f"{VIP}/24" in n.address_set()}

    def split_brains(self, node: int) -> list[str]:
        """Peers that ``node`` logged a split brain about (``vrrpd.split_brain``), in order."""
        return [
            str(line.get("peer"))
            for line in _log_lines(self.groups[node])
            if line.get("event") == "vrrpd.split_brain"
        ]

    def arp_holders(self, wait: float = 0.3) -> set[int]:
        """Nodes answering the observer's ARP request for the VIP (by their MAC)."""
        return {self.macs[mac] for mac in arp_who_has(self.observer, VIP, wait) if mac in self.macs}

    def converged(self, master: int) -> bool:
        """``master`` alone is MASTER, alone holds the VIP and alone answers ARP for it."""
        want = {master}
        return self.masters() == want and self.holders() == want and self.arp_holders() == want

    def close(self) -> None:
        for group in self.groups:
            group.close()
        self.lab.close()


def arp_who_has(observer: Node, address: str, wait: float) -> set[str]:
    """MACs answering one broadcast ARP request for ``address`` from ``observer``'s eth0."""
    mine = observer.mac()
    request = (
        b"\xff" * 6
        + bytes.fromhex(mine.replace(":", ""))
        + b"\x08\x06"
        + bytes.fromhex("0001080006040001")
        + bytes.fromhex(mine.replace(":", ""))
        + socket.inet_aton(observer.ip4)
        + bytes(6)
        + socket.inet_aton(address)
    )
    with observer.inside():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    try:
        sock.bind((observer.ifname, 0))
        sock.send(request)
        found: set[str] = set()
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            frame = sock.recv(128)
            arp = frame[14:42]
            # a reply (op 2) about the address, to us
            if arp[6:8] == b"\x00\x02" and arp[14:18] == socket.inet_aton(address):
                found.add(":".join(f"{b:02x}" for b in arp[8:14]))
        return found
    finally:
        sock.close()


def dual_master_windows(transitions: Sequence[Transition], since: float = 0.0) -> list[float]:
    """How long each stretch with two or more MASTERs lasted (seconds), from ``since``."""
    masters: set[int] = set()
    opened: float | None = None
    out = []
    for t in transitions:
        if t.new == "MASTER":
            masters.add(t.node)
        else:
            masters.discard(t.node)
        if len(masters) >= 2 and opened is None:
            opened = t.at
        elif len(masters) < 2 and opened is not None:
            if t.at >= since:
                out.append(t.at - max(opened, since))
            opened = None
    if opened is not None:
        out.append(time.time() - max(opened, since))
    return out
