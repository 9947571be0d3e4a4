"""Throw-away network-namespace labs for kernel-facing tests.

A :class:`Lab` is one Ethernet segment: a Linux bridge in a *hub* namespace and one veth
pair per node; the node end is called ``eth0`` inside the node's own namespace. Nodes get
documentation addresses (``192.0.2.10+i/24`` and ``2001:db8::10+i/64`` by default), links are
up, and IPv6 DAD is off so addresses are usable at once.

Everything is named ``pk-<random>-...`` so parallel runs on one machine do not collide, and
:meth:`Lab.close` removes every namespace it created (the fixtures call it in a finaliser, so
cleanup happens even when a test fails).

Test code may run ``ip netns exec``; product code may not (netd uses netlink only).
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from pyroute2 import IPRoute, netns

# The namespace primitives are the operator lab's (ctl.lab); the test lab adds IPv6,
# captures and read-back helpers on top.
from ctl.lab import enter_netns, remove_namespaces, unique_prefix, write_sysctl

__all__ = [
    "Capture",
    "Lab",
    "Node",
    "enter_netns",
    "unique_prefix",
    "wait_until",
]

T = TypeVar("T")
P = ParamSpec("P")

ETH_P_ALL = 0x0003
IFA_F_TENTATIVE = 0x40


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Raises ``AssertionError`` (so pytest shows it as a test failure) when ``timeout``
    seconds pass without success. The last exception raised by the predicate, if any, is
    chained so a failing probe is not hidden.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # the probe may fail until the condition holds
            last_exc = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}") from last_exc
        time.sleep(interval)


@dataclass(slots=True)
class Capture:
    """An ``AF_PACKET`` socket on one interface of one namespace, collecting frames."""

    sock: socket.socket
    frames: list[bytes] = field(default_factory=list)

    def poll(self, timeout: float = 0.0) -> list[bytes]:
        """Read every frame that arrives within ``timeout``; return the new ones."""
        new: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                break
            while True:
                try:
                    data, addr = self.sock.recvfrom(65535)
                except BlockingIOError:
                    break
                # Outgoing copies (PACKET_OUTGOING = 4) would double-count our own frames.
                if addr[2] != socket.PACKET_OUTGOING:
                    new.append(data)
            if remaining == 0.0:
                break
        self.frames.extend(new)
        return new

    def wait_for(
        self, predicate: Callable[[bytes], bool], count: int = 1, timeout: float = 5.0
    ) -> list[bytes]:
        """Wait until ``count`` captured frames satisfy ``predicate``; return them all."""

        def enough() -> list[bytes] | None:
            self.poll(0.05)
            hits = [f for f in self.frames if predicate(f)]
            return hits if len(hits) >= count else None

        return wait_until(enough, timeout, 0.0, f"{count} matching frame(s)")

    def matching(self, predicate: Callable[[bytes], bool]) -> list[bytes]:
        return [f for f in self.frames if predicate(f)]

    def close(self) -> None:
        self.sock.close()


@dataclass(slots=True)
class Node:
    """One host on the lab segment, living in its own network namespace."""

    index: int
    netns: str
    ifname: str
    ipv4: ipaddress.IPv4Interface
    ipv6: ipaddress.IPv6Interface

    @property
    def ip4(self) -> str:
        return str(self.ipv4.ip)

    @property
    def ip6(self) -> str:
        return str(self.ipv6.ip)

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside this node's namespace (test code only)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a long-running command inside this node's namespace."""
        return subprocess.Popen(["ip", "netns", "exec", self.netns, *argv], **kwargs)

    def inside(self) -> contextlib.AbstractContextManager[None]:
        """Context manager: the calling thread runs in this node's namespace."""
        return enter_netns(self.netns)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn`` with the calling thread inside this node's namespace."""
        with self.inside():
            return fn(*args, **kwargs)

    def ipr(self) -> IPRoute:
        """A pyroute2 ``IPRoute`` bound to this node's namespace (caller closes it)."""
        with self.inside():
            return IPRoute()

    def ifindex(self, ifname: str | None = None) -> int:
        with self.ipr() as ipr:
            found = ipr.link_lookup(ifname=ifname or self.ifname)
        if not found:
            raise LookupError(f"{ifname or self.ifname} not found in {self.netns}")
        return int(found[0])

    def mac(self, ifname: str | None = None) -> str:
        with self.ipr() as ipr:
            link = ipr.link("get", ifname=ifname or self.ifname)[0]
        return str(link.get("IFLA_ADDRESS"))

    def links(self) -> dict[str, dict[str, Any]]:
        """ifname -> {index, mac, state, kind, link} for every interface."""
        out: dict[str, dict[str, Any]] = {}
        with self.ipr() as ipr:
            for msg in ipr.link("dump"):
                out[msg.get("IFLA_IFNAME")] = {
                    "index": msg["index"],
                    "mac": msg.get("IFLA_ADDRESS"),
                    "state": msg.get("IFLA_OPERSTATE"),
                    "flags": msg["flags"],
                    "kind": msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
                    "mode": msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "IFLA_MACVLAN_MODE"),
                    "link": msg.get("IFLA_LINK"),
                }
        return out

    def addresses(
        self, ifname: str | None = None, family: int | None = None
    ) -> list[dict[str, Any]]:
        """Addresses as plain dicts: address, prefixlen, ifname, label, scope, brd, proto, flags."""
        names = {v["index"]: k for k, v in self.links().items()}
        out: list[dict[str, Any]] = []
        with self.ipr() as ipr:
            for msg in ipr.addr("dump"):
                dev = names.get(msg["index"])
                if ifname is not None and dev != ifname:
                    continue
                if family is not None and msg["family"] != family:
                    continue
                out.append(
                    {
                        "address": msg.get("IFA_ADDRESS")
                        if msg.get("IFA_LOCAL") is None
                        else msg.get("IFA_LOCAL"),
                        "peer": msg.get("IFA_ADDRESS")
                        if msg.get("IFA_LOCAL") not in (None, msg.get("IFA_ADDRESS"))
                        else None,
                        "prefixlen": msg["prefixlen"],
                        "ifname": dev,
                        "label": msg.get("IFA_LABEL"),
                        "scope": msg["scope"],
                        "brd": msg.get("IFA_BROADCAST"),
                        "proto": msg.get("IFA_PROTO"),
                        "flags": msg.get("IFA_FLAGS", msg["flags"]),
                        "family": msg["family"],
                    }
                )
        return out

    def address_set(self, ifname: str | None = None) -> set[str]:
        """``{"192.0.2.10/24", ...}`` for quick membership assertions."""
        return {f"{a['address']}/{a['prefixlen']}" for a in self.addresses(ifname)}

    def routes(self, table: int = 254, family: int = socket.AF_UNSPEC) -> list[dict[str, Any]]:
        """Routes of one table as plain dicts (dst is ``"default"`` or ``"net/len"``)."""
        names = {v["index"]: k for k, v in self.links().items()}
        out: list[dict[str, Any]] = []
        with self.ipr() as ipr:
            for msg in ipr.route("dump", family=family, table=table):
                dst = msg.get("RTA_DST")
                out.append(
                    {
                        "dst": f"{dst}/{msg['dst_len']}" if dst else "default",
                        "via": msg.get("RTA_GATEWAY"),
                        "dev": names.get(msg.get("RTA_OIF")),
                        "src": msg.get("RTA_PREFSRC"),
                        "table": msg.get("RTA_TABLE", msg["table"]),
                        "metric": msg.get("RTA_PRIORITY"),
                        "proto": msg["proto"],
                        "scope": msg["scope"],
                        "type": msg["type"],
                        "family": msg["family"],
                    }
                )
        return out

    def rules(self, family: int = socket.AF_UNSPEC) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with self.ipr() as ipr:
            for msg in ipr.rule("dump", family=family):
                src, dst = msg.get("FRA_SRC"), msg.get("FRA_DST")
                out.append(
                    {
                        "from": f"{src}/{msg['src_len']}" if src else None,
                        "to": f"{dst}/{msg['dst_len']}" if dst else None,
                        "table": msg.get("FRA_TABLE", msg["table"]),
                        "priority": msg.get("FRA_PRIORITY"),
                        "protocol": msg.get("FRA_PROTOCOL"),
                        "fwmark": msg.get("FRA_FWMARK"),
                        "iif": msg.get("FRA_IIFNAME"),
                        "oif": msg.get("FRA_OIFNAME"),
                        "family": msg["family"],
                    }
                )
        return out

    def capture(self, ifname: str | None = None) -> Capture:
        """Start capturing every frame received on ``ifname`` (default eth0)."""
        with self.inside():
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind((ifname or self.ifname, 0))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return Capture(sock)

    def sysctl(self, key: str, value: str | None = None) -> str:
        """Read (and optionally write) sysctl ``key`` in this namespace.

        ``key`` is dotted (``net.ipv4.ip_forward``) or, when an interface name has a dot
        in it, slashed (``net/ipv6/conf/vrrp.51/disable_ipv6``).
        """
        path = "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))
        with self.inside():
            if value is not None:
                write_sysctl(path, value)
            with open(path, encoding="ascii") as fh:
                return fh.read().strip()


class Lab:
    """N nodes on one bridged segment. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        nodes: int = 2,
        v4_net: str = "192.0.2.0/24",
        v6_net: str = "2001:db8::/64",
        host_offset: int = 10,
        ifname: str = "eth0",
    ) -> None:
        self.prefix = unique_prefix()
        self.hub = f"{self.prefix}-hub"
        self.bridge = "br0"
        self.nodes: list[Node] = []
        self._namespaces: list[str] = []
        self._closed = False
        v4 = ipaddress.IPv4Network(v4_net)
        v6 = ipaddress.IPv6Network(v6_net)
        try:
            self._make_ns(self.hub)
            with IPRoute(netns=self.hub) as hub:
                hub.link("add", ifname=self.bridge, kind="bridge")
                br = hub.link_lookup(ifname=self.bridge)[0]
                hub.link("set", index=br, state="up")
            for i in range(nodes):
                node = Node(
                    index=i,
                    netns=f"{self.prefix}-n{i}",
                    ifname=ifname,
                    ipv4=ipaddress.IPv4Interface(f"{v4[host_offset + i]}/{v4.prefixlen}"),
                    # Hex digits that read like the v4 host part: node 1 is .11 and ::11.
                    ipv6=ipaddress.IPv6Interface(
                        f"{v6[int(str(host_offset + i), 16)]}/{v6.prefixlen}"
                    ),
                )
                self._add_node(node)
                self.nodes.append(node)
        except BaseException:
            self.close()
            raise

    def _make_ns(self, name: str) -> None:
        netns.create(name)
        self._namespaces.append(name)
        with enter_netns(name):
            # Set "default" before links exist so every new interface inherits it.
            for scope in ("all", "default"):
                write_sysctl(f"/proc/sys/net/ipv6/conf/{scope}/accept_dad", "0")
                write_sysctl(f"/proc/sys/net/ipv6/conf/{scope}/dad_transmits", "0")
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

    def _add_node(self, node: Node) -> None:
        self._make_ns(node.netns)
        hub_end = f"v{node.index}"
        tmp_peer = f"p{node.index}"
        with IPRoute(netns=self.hub) as hub:
            hub.link("add", ifname=hub_end, kind="veth", peer=tmp_peer)
            peer = hub.link_lookup(ifname=tmp_peer)[0]
            hub.link("set", index=peer, net_ns_fd=node.netns)
            end = hub.link_lookup(ifname=hub_end)[0]
            hub.link("set", index=end, master=hub.link_lookup(ifname=self.bridge)[0])
            hub.link("set", index=end, state="up")
        with IPRoute(netns=node.netns) as ipr:
            idx = ipr.link_lookup(ifname=tmp_peer)[0]
            ipr.link("set", index=idx, ifname=node.ifname)
            ipr.link("set", index=idx, state="up")
            ipr.addr("add", index=idx, address=node.ip4, prefixlen=node.ipv4.network.prefixlen)
            ipr.addr("add", index=idx, address=node.ip6, prefixlen=node.ipv6.network.prefixlen)

    def node(self, i: int) -> Node:
        return self.nodes[i]

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Wait until every node's eth0 is operationally up and no address is tentative.

        The veth carrier settles asynchronously, and IPv6 addresses stay tentative until the
        carrier is up even with DAD off (the kernel finishes "DAD" from a workqueue), so a
        bind() right after setup could fail with EADDRNOTAVAIL.
        """
        for node in self.nodes:

            def up(n: Node = node) -> bool:
                return bool(n.links()[n.ifname]["state"] == "UP")

            def settled(n: Node = node) -> bool:
                return not any(a["flags"] & IFA_F_TENTATIVE for a in n.addresses(n.ifname))

            wait_until(up, timeout, message=f"{node.netns} {node.ifname} up")
            wait_until(
                settled,
                timeout,
                message=f"{node.netns} addresses out of tentative state",
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        remove_namespaces(self._namespaces)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
