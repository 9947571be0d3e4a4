"""Network faults for a lab cluster: nftables on the lab's bridge, link flaps, and what to check.

A :class:`FaultLab` is a :class:`tests.lab.Lab` of N daemon nodes plus one *observer* node
(the last one) that runs nothing and only asks, by ARP, who answers for the VIP. Faults are
injected on the wire itself: one nftables table of the ``bridge`` family in the hub
namespace, whose forward chain sees every frame between two bridge ports (``v0``, ``v1``...,
one per node) — flooded multicast adverts included, one copy per port — so the nodes' own
nftables (netd's) are never touched. This kernel has no netem: loss is ``numgen random``.

The nodes run pykeepalived or Debian's keepalived (tests/fault_daemons.py); each node's
instance states come from its daemon's log, so the dual-master windows can be measured, and
an :class:`tests.advert_tap.AdvertTap` records every advert each node sent and received with
the kernel's timestamps, against which the protocol's timing is checked (:func:`disturb`).
"""

from __future__ import annotations

import dataclasses
import re
import select
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests import fault_daemons
from tests.advert_tap import AdvertTap
from tests.fault_daemons import NodeDaemon
from tests.lab import Lab, Node, wait_until

__all__ = [
    "SCENARIOS",
    "FaultLab",
    "Outcome",
    "Stretch",
    "Takeover",
    "Transition",
    "cluster_config",
    "disturb",
    "dual_master_windows",
    "master_stretches",
]

VIP = "192.0.2.200"
INSTANCE = "VI_1"
_TABLE = "pk_faults"
#: How much earlier than its master-down interval a take-over may be logged and still count as
#: "the timer expired": the log's timestamp is taken after the take-over and the kernel's
#: receive stamp before the advert is handled, so only the BACKUP entry (logged just after the
#: timer is armed; keepalived's line stamped when the harness reads it) can make a correct
#: take-over look early, by the time one log line takes to be written and read.
TIMER_TOLERANCE = 0.05
#: vrrpd logs a split brain at most once a second per peer (vrrpd/runner.py, _NOTICE_EVERY)
SPLIT_BRAIN_EVERY = 1.0
#: How long after the dual-master stretch ended its split-brain log may still be written
SPLIT_BRAIN_SLACK = 2.0


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


@dataclass(frozen=True, slots=True)
class Takeover:
    """A BACKUP -> MASTER transition and how long its master-down timer had run."""

    node: int
    at: float
    #: seconds since the timer was last armed: the node entered BACKUP, or heard an advert
    #: that re-arms it (priority at least its own; priority 0 arms it for the skew time only)
    waited: float
    #: what the timer was armed for: the master-down interval, or the skew time after a
    #: priority-0 advert
    required: float
    #: the timer was last armed by an advert (not by entering BACKUP)
    by_advert: bool = False
    #: seconds from the last advert heard from a master it yields to, to its own first
    #: advert as master (None: either not seen)
    gap: float | None = None

    @property
    def early(self) -> bool:
        return self.waited < self.required - TIMER_TOLERANCE


@dataclass(frozen=True, slots=True)
class Stretch:
    """A time with two or more MASTERs; ``members`` were MASTER at some point in it."""

    opened: float
    closed: float
    members: frozenset[int]


class FaultLab:
    """``nodes`` daemon nodes plus an observer on one bridge, with fault injection."""

    def __init__(
        self, configs: Sequence[str], interval: float, daemon: str = "pykeepalived"
    ) -> None:
        #: the instances' advert interval (seconds), to scale waits
        self.interval = interval
        #: each node's priority and VRRP version, read back from its config
        self.priorities = [int(_config_value(c, "priority")) for c in configs]
        self.versions = [int(_config_value(c, "version", "3")) for c in configs]
        self.lab = Lab(nodes=len(configs) + 1)
        #: which VRRP daemon the nodes run (tests/fault_daemons.py: ``DAEMONS``)
        self.daemon = daemon
        self.daemons: list[NodeDaemon] = []
        self.tap: AdvertTap | None = None
        try:
            self.lab.wait_ready()
            self.observer = self.lab.nodes[-1]
            self.nodes = self.lab.nodes[:-1]
            self.macs = {node.mac(): node.index for node in self.nodes}
            self.tap = AdvertTap(self.nodes)
            self._nft(f"add table bridge {_TABLE}")
            self._nft(
                f"add chain bridge {_TABLE} faults "
                "{ type filter hook forward priority 0; policy accept; }"
            )
            for node, config in zip(self.nodes, configs, strict=True):
                self.daemons.append(fault_daemons.make(daemon, node, config))
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
        out = [
            Transition(i, c.at, c.old, c.new, c.cause_kind, c.cause)
            for i, daemon in enumerate(self.daemons)
            for c in daemon.state_changes(INSTANCE)
        ]
        return sorted(out, key=lambda t: t.at)

    def states(self) -> dict[int, str]:
        now = {i: "INIT" for i in range(len(self.daemons))}
        for t in self.transitions():
            now[t.node] = t.new
        return now

    def masters(self) -> set[int]:
        return {i for i, state in self.states().items() if state == "MASTER"}

    def holders(self) -> set[int]:
        """Nodes whose kernel has the VIP on eth0."""
        return {n.index for n in self.nodes if f"{VIP}/24" in n.address_set()}

    def split_brains(self, node: int) -> list[str]:
        """Peers that ``node`` logged a split brain about, in order."""
        return [peer for _, peer in self.split_brain_log(node)]

    def split_brain_log(self, node: int) -> list[tuple[float, str]]:
        """(time, peer) of each split brain ``node`` logged."""
        return self.daemons[node].split_brains(INSTANCE)

    # ---- protocol timing ----------------------------------------------------------------

    def skew(self, node: int) -> float:
        """Skew time; VRRPv2 (keepalived's default) does not scale it with the interval."""
        scale = self.interval if self.versions[node] == 3 else 1.0
        return (256 - self.priorities[node]) / 256 * scale

    def master_down(self, node: int) -> float:
        return 3 * self.interval + self.skew(node)

    def takeovers(self, since: float = 0.0) -> list[Takeover]:
        """Every BACKUP -> MASTER after ``since``, with how long its timer had really run:
        measured from the node's BACKUP entry (its log) or the last advert its eth0 received
        that re-arms the timer (the kernel's stamp) before the timer ran out, whichever is
        later. A take-over before the expiry shows as ``waited < required``."""
        assert self.tap is not None
        transitions = self.transitions()
        out = []
        for t in transitions:
            if t.at < since or t.old != "BACKUP" or t.new != "MASTER":
                continue
            armed, required, by_advert = 0.0, self.master_down(t.node), False
            for prev in transitions:
                if prev.node == t.node and prev.new == "BACKUP" and prev.at <= t.at:
                    armed = prev.at
            for advert in self.tap.received(t.node):
                # An advert after the expiry (in the moment between the timer firing and
                # the take-over's log line) came too late to re-arm it.
                if advert.at > min(t.at, armed + required):
                    break
                if advert.at < armed:
                    continue
                if advert.priority == 0:
                    armed, required, by_advert = advert.at, self.skew(t.node), True
                elif advert.priority >= self.priorities[t.node]:
                    armed, required, by_advert = advert.at, self.master_down(t.node), True
            if not armed:
                continue
            # the take-over gap: from the last advert heard from a master it yields to, to
            # its own first advert as master
            heard = [
                a.at
                for a in self.tap.received(t.node)
                if a.at <= armed and a.priority >= self.priorities[t.node]
            ]
            first = next((a.at for a in self.tap.sent(t.node) if a.at > armed), None)
            gap = None if first is None or not heard else first - heard[-1]
            out.append(Takeover(t.node, t.at, t.at - armed, required, by_advert, gap))
        return out

    def timing_violations(self, since: float = 0.0) -> list[str]:
        """Take-overs before their master-down timer could have expired."""
        return [
            f"node {t.node} took over {t.waited:.3f} s after its timer was armed, "
            f"the timer is {t.required:.3f} s"
            for t in self.takeovers(since)
            if t.early
        ]

    def state_at(self, node: int, at: float) -> str:
        state = "INIT"
        for t in self.transitions():
            if t.at > at:
                break
            if t.node == node:
                state = t.new
        return state

    def split_brain_violations(self, stretches: Sequence[Stretch]) -> tuple[int, list[str]]:
        """For every dual-master stretch: the highest-priority master must have logged a
        split brain naming each other master whose advert its eth0 received while it was
        MASTER (a stretch can end before any gets through: under loss, or in a full
        partition). Returns how many (stretch, peer) pairs were heard, and the misses."""
        assert self.tap is not None
        heard, missed = 0, []
        for stretch in stretches:
            top = max(stretch.members, key=lambda i: self.priorities[i])
            logged = self.split_brain_log(top)
            for other in stretch.members - {top}:
                first = next(
                    (
                        a.at
                        for a in self.tap.received(top)
                        if a.sender == other
                        # a new master's first advert can be on the wire before its log
                        # line is stamped (keepalived's lines are stamped on arrival)
                        and stretch.opened - TIMER_TOLERANCE <= a.at <= stretch.closed
                        and 0 < a.priority < self.priorities[top]
                        and self.state_at(top, a.at) == "MASTER"
                    ),
                    None,
                )
                if first is None:
                    continue
                heard += 1
                peer = self.nodes[other].ip4
                if not any(
                    p == peer
                    and first - SPLIT_BRAIN_EVERY - TIMER_TOLERANCE
                    <= at
                    <= stretch.closed + SPLIT_BRAIN_SLACK
                    for at, p in logged
                ):
                    missed.append(
                        f"node {top} heard master node {other}'s advert at {first:.3f} "
                        f"(dual masters {stretch.opened:.3f}-{stretch.closed:.3f}) "
                        "and logged no split brain naming it"
                    )
        return heard, missed

    def arp_holders(self, wait: float = 0.3) -> set[int]:
        """Nodes answering the observer's ARP request for the VIP (by their MAC)."""
        return {self.macs[mac] for mac in arp_who_has(self.observer, VIP, wait) if mac in self.macs}

    def converged(self, master: int) -> bool:
        """``master`` alone is MASTER, alone holds the VIP and alone answers ARP for it."""
        want = {master}
        return self.masters() == want and self.holders() == want and self.arp_holders() == want

    def settle(self) -> float:
        """Wait for node 0 alone master (:meth:`converged`); how long it took."""
        start = time.monotonic()
        # Generous bound: the time it takes is a figure (bench/faults.py), not an assertion.
        wait_until(lambda: self.converged(0), 30 + 10 * self.interval, 0.2, "node 0 alone master")
        return time.monotonic() - start

    def restore(self) -> None:
        """Undo every fault: rules flushed, cables back in."""
        self.heal()
        for i in range(len(self.nodes)):
            self.set_link(i, up=True)

    def adverts_seen(self, node: int, count: int) -> list[bytes]:
        """Wait until the observer saw ``count`` of ``node``'s adverts (a fault's duration);
        the frames."""
        packed = socket.inet_aton(self.nodes[node].ip4)

        def advert(frame: bytes) -> bool:
            return frame[12:14] == b"\x08\x00" and frame[23] == 112 and frame[26:30] == packed

        capture = self.observer.capture()
        try:
            return capture.wait_for(advert, count, timeout=count * self.interval * 4 + 10)
        finally:
            capture.close()

    def replay(self, frame: bytes, times: int) -> None:
        """Send ``frame`` ``times`` times from the observer, as the observer's MAC (so the
        bridge does not learn a node's MAC on the observer's port)."""
        mine = bytes.fromhex(self.observer.mac().replace(":", ""))
        with self.observer.inside():
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            sock.bind((self.observer.ifname, 0))
            for _ in range(times):
                sock.send(frame[:6] + mine + frame[12:])
        finally:
            sock.close()

    def close(self) -> None:
        if self.tap is not None:
            self.tap.close()
        for daemon in self.daemons:
            daemon.close()
        self.lab.close()


def _config_value(config: str, keyword: str, default: str | None = None) -> str:
    found = re.search(rf"^\s*(?:vrrp_)?{keyword}\s+(\S+)", config, re.M)
    if found is None:
        if default is None:
            raise ValueError(f"no {keyword} in the config")
        return default
    return found.group(1)


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


def master_stretches(transitions: Sequence[Transition], masters: set[int]) -> list[Stretch]:
    """Each stretch with two or more MASTERs; ``masters`` are the nodes MASTER before the
    first transition. A stretch still open ends now."""
    masters = set(masters)
    opened: float | None = None
    members: set[int] = set()
    out = []
    for t in transitions:
        if t.new == "MASTER":
            masters.add(t.node)
        else:
            masters.discard(t.node)
        if len(masters) >= 2:
            if opened is None:
                opened, members = t.at, set()
            members |= masters
        elif opened is not None:
            out.append(Stretch(opened, t.at, frozenset(members)))
            opened = None
    if opened is not None:
        out.append(Stretch(opened, time.time(), frozenset(members)))
    return out


def dual_master_windows(transitions: Sequence[Transition], masters: set[int]) -> list[float]:
    """How long each stretch with two or more MASTERs lasted (seconds)."""
    return [s.closed - s.opened for s in master_stretches(transitions, masters)]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one scenario did: its transitions, and the time from the fault's end to
    :meth:`FaultLab.converged` again."""

    transitions: tuple[Transition, ...]
    recovery: float
    #: MASTERs when the fault began
    masters: frozenset[int] = frozenset({0})
    #: every take-over, with how long its master-down timer had run
    takeovers: tuple[Takeover, ...] = ()
    #: dual-master stretches in which the higher master heard the other (each was logged)
    split_brains_heard: int = 0

    @property
    def stretches(self) -> list[Stretch]:
        return master_stretches(self.transitions, set(self.masters))

    @property
    def dual_master(self) -> list[float]:
        return [s.closed - s.opened for s in self.stretches]


def disturb(lab: FaultLab, inject: Callable[[], None], *, split_brains: bool = True) -> Outcome:
    """``inject`` the fault (it returns when the fault has lasted long enough and its checks
    passed), end it, wait for the steady state, and check the protocol's timing: no
    take-over before its master-down timer expired, a split brain logged for every
    dual-master stretch in which the higher master heard the other (unless ``split_brains``
    is False: a killed vrrpd logs no end of its MASTER state, so a stretch would be read
    where a dead daemon stayed silent)."""
    lab.settle()
    before = len(lab.transitions())
    since = time.time()
    masters = frozenset(lab.masters())
    try:
        inject()
    finally:
        lab.restore()
    recovery = lab.settle()
    transitions = tuple(lab.transitions()[before:])
    out = Outcome(transitions, recovery, masters, tuple(lab.takeovers(since)))
    early = lab.timing_violations(since)
    assert not early, early
    if not split_brains:
        return out
    heard, missed = lab.split_brain_violations(out.stretches)
    assert not missed, missed
    return dataclasses.replace(out, split_brains_heard=heard)


def advert_loss(lab: FaultLab, percent: int = 30, adverts: int = 15) -> Outcome:
    def inject() -> None:
        lab.fault(*lab.advert_loss(percent))
        lab.adverts_seen(0, adverts)

    out = disturb(lab, inject)
    # Whatever the loss did, nobody took over but on an expired master-down timer.
    for t in out.transitions:
        if t.new == "MASTER" and t.old == "BACKUP":
            assert t.cause_kind == "timer" and "master-down" in t.cause, t
    return out


def one_way_from_master(lab: FaultLab) -> Outcome:
    """Node 0's adverts no longer reach nodes 1 and 2; theirs still reach node 0."""

    def inject() -> None:
        lab.fault(*lab.drop_between([0], [1, 2]))
        wait_until(lambda: lab.masters() == {0, 1}, 30, 0.2, "node 1 to take over too")
        # Two masters on the wire: node 0 hears node 1's adverts and says so, naming it.
        peer = lab.nodes[1].ip4
        wait_until(lambda: peer in lab.split_brains(0), 10, 0.2, "a split brain naming node 1")
        wait_until(lambda: lab.holders() == {0, 1}, 10, 0.2, "both to hold the VIP")
        wait_until(lambda: lab.arp_holders() == {0, 1}, 10, 0.2, "both to answer ARP")

    return disturb(lab, inject)


def one_way_to_master(lab: FaultLab) -> Outcome:
    """Node 0 no longer hears the backups, which still hear it: nothing to do for anyone."""

    def inject() -> None:
        lab.fault(*lab.drop_between([1, 2], [0]))
        lab.adverts_seen(0, 6)

    out = disturb(lab, inject)
    assert out.transitions == (), out.transitions
    return out


def full_partition(lab: FaultLab) -> Outcome:
    def inject() -> None:
        lab.fault(*lab.drop_between([0], [1, 2]), *lab.drop_between([1, 2], [0]))
        wait_until(lambda: lab.masters() == {0, 1}, 30, 0.2, "a master on each side")
        # The observer sees both sides: the VIP's holders on the wire are the masters.
        wait_until(lambda: lab.arp_holders() == {0, 1}, 10, 0.2, "both masters to answer ARP")
        assert lab.holders() == {0, 1}

    return disturb(lab, inject)


def flapping_link(lab: FaultLab, flaps: int = 3) -> Outcome:
    """Node 0's cable pulled until node 1 took over, put back until node 0 is back, again."""

    def inject() -> None:
        for i in range(flaps):
            lab.set_link(0, up=False)
            wait_until(lambda: lab.masters() == {1}, 30, 0.2, "node 1 to take over")
            lab.set_link(0, up=True)
            if i < flaps - 1:
                lab.settle()

    return disturb(lab, inject)


def duplicated_adverts(lab: FaultLab, copies: int = 200) -> Outcome:
    """A burst of copies of the master's own advert on the segment: nothing may change."""

    def inject() -> None:
        frame = lab.adverts_seen(0, 1)[0]
        lab.replay(frame, copies)
        lab.adverts_seen(0, 3)

    out = disturb(lab, inject)
    assert out.transitions == (), out.transitions
    return out


SCENARIOS: dict[str, Callable[[FaultLab], Outcome]] = {
    "advert loss 10 %": lambda lab: advert_loss(lab, 10),
    "advert loss 30 %": advert_loss,
    "advert loss 60 %": lambda lab: advert_loss(lab, 60),
    "a burst of 200 duplicated adverts": duplicated_adverts,
    "one-way partition from the master": one_way_from_master,
    "one-way partition towards the master": one_way_to_master,
    "full partition and heal": full_partition,
    "flapping link (3 flaps)": flapping_link,
}
