"""A throw-away network-namespace lab for ``pykeepalivedctl demo`` and the benchmarks.

This is operator tooling, not netd: it builds a private playground (a Linux bridge in a *hub*
namespace and one veth pair per node, the node end called ``eth0``) and tears it down again.
It never touches the caller's own namespace: every link and address it creates lives in
namespaces it created, named ``pk-<random>-...`` so parallel labs do not collide, and it uses
documentation addresses only (``192.0.2.10+i/24`` by default).

Programs are started inside a node by entering its namespace in the calling thread around
``fork``/``exec`` (a child inherits the namespace of the thread that forked it), so no
``ip netns exec`` is needed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import ipaddress
import os
import secrets
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute, netns

__all__ = [
    "Lab",
    "LabError",
    "LabNode",
    "enter_netns",
    "netlink",
    "remove_namespaces",
    "unique_prefix",
    "write_sysctl",
]

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class LabError(RuntimeError):
    """The lab could not be built or torn down."""


def remove_namespaces(names: list[str]) -> None:
    """Remove ``names`` newest first; keep going past failures and report them all at the end."""
    errors: list[str] = []
    for name in reversed(names):
        try:
            netns.remove(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    if errors:
        raise LabError("lab cleanup failed: " + "; ".join(errors))


def unique_prefix() -> str:
    """A short random name prefix (``pk-xxxxxx``) for namespaces."""
    return "pk-" + secrets.token_hex(3)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def enter_netns(name: str) -> Iterator[None]:
    """Move the calling thread into namespace ``name`` for the ``with`` block.

    Sockets created inside the block (pyroute2, ``AF_PACKET``) and processes forked inside it
    stay in that namespace after the block ends; other threads are unaffected.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_RUN_DIR, name), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def netlink(name: str) -> IPRoute:
    """A pyroute2 ``IPRoute`` bound to namespace ``name`` (the caller closes it).

    Opened by entering the namespace in this thread rather than ``IPRoute(netns=...)``,
    which forks a helper process that would inherit the caller's signal handlers.
    """
    with enter_netns(name):
        return IPRoute()


def write_sysctl(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value)


@dataclass(frozen=True, slots=True)
class LabNode:
    """One host on the lab segment, in its own namespace."""

    index: int
    name: str
    netns: str
    ifname: str
    ipv4: ipaddress.IPv4Interface

    @property
    def ip4(self) -> str:
        return str(self.ipv4.ip)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` with its network namespace set to this node's."""
        with enter_netns(self.netns):
            return subprocess.Popen(list(argv), **kwargs)

    def operstate(self) -> str | None:
        with netlink(self.netns) as ipr:
            links = ipr.link("get", ifname=self.ifname)
        return str(links[0].get("IFLA_OPERSTATE")) if links else None


class Lab:
    """``nodes`` hosts on one bridged Ethernet segment; use as a context manager."""

    def __init__(
        self,
        nodes: int = 3,
        v4_net: str = "192.0.2.0/24",
        host_offset: int = 10,
        ifname: str = "eth0",
    ) -> None:
        self.prefix = unique_prefix()
        self.hub = f"{self.prefix}-hub"
        self.bridge = "br0"
        self.nodes: list[LabNode] = []
        self._namespaces: list[str] = []
        self._closed = False
        net = ipaddress.IPv4Network(v4_net)
        try:
            self._make_ns(self.hub)
            with netlink(self.hub) as hub:
                hub.link("add", ifname=self.bridge, kind="bridge")
                hub.link("set", index=hub.link_lookup(ifname=self.bridge)[0], state="up")
            for i in range(nodes):
                node = LabNode(
                    index=i,
                    name=f"node{i + 1}",
                    netns=f"{self.prefix}-n{i}",
                    ifname=ifname,
                    ipv4=ipaddress.IPv4Interface(f"{net[host_offset + i]}/{net.prefixlen}"),
                )
                self._add_node(node)
                self.nodes.append(node)
        except BaseException:
            self.close()
            raise

    def _make_ns(self, name: str) -> None:
        try:
            netns.create(name)
        except OSError as exc:
            raise LabError(f"cannot create network namespace {name}: {exc}") from exc
        self._namespaces.append(name)
        with enter_netns(name):
            # No IPv6 DAD: the link-local address must not hold up anything in a lab.
            for scope in ("all", "default"):
                write_sysctl(f"/proc/sys/net/ipv6/conf/{scope}/accept_dad", "0")
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

    def _add_node(self, node: LabNode) -> None:
        self._make_ns(node.netns)
        hub_end, tmp_peer = f"v{node.index}", f"p{node.index}"
        with netlink(self.hub) as hub:
            hub.link("add", ifname=hub_end, kind="veth", peer=tmp_peer)
            hub.link("set", index=hub.link_lookup(ifname=tmp_peer)[0], net_ns_fd=node.netns)
            end = hub.link_lookup(ifname=hub_end)[0]
            hub.link("set", index=end, master=hub.link_lookup(ifname=self.bridge)[0])
            hub.link("set", index=end, state="up")
        with netlink(node.netns) as ipr:
            idx = ipr.link_lookup(ifname=tmp_peer)[0]
            ipr.link("set", index=idx, ifname=node.ifname)
            ipr.link("set", index=idx, state="up")
            ipr.addr("add", index=idx, address=node.ip4, prefixlen=node.ipv4.network.prefixlen)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until every node's link is operationally up (veth carrier settles async)."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while node.operstate() != "UP":
                if time.monotonic() > deadline:
                    raise LabError(f"{node.netns} {node.ifname} did not come up in {timeout}s")
                time.sleep(0.02)

    def close(self) -> None:
        """Remove every namespace this lab created (and with them its links and addresses)."""
        if self._closed:
            return
        self._closed = True
        remove_namespaces(self._namespaces)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
