"""A routed LVS lab for ``pykeepalivedctl demo --lvs``, the LVS tests and bench/lvs.py: client —
director — real servers, each in its own namespace.

    client 198.51.100.10 ──veth── 198.51.100.1 director 203.0.113.1 ──bridge── rs0 203.0.113.10
      (default via .1)                  ip_forward=1, VIP 198.51.100.80     ├── rs1 203.0.113.11
                                                                           └── rs2 203.0.113.12
                                                                   (default via 203.0.113.1)

and the same in IPv6: client 2001:db8:1::10, director 2001:db8:1::1 / 2001:db8:2::1 with
VIP6 2001:db8:1::80, real servers 2001:db8:2::10, ::11, ::12.

Each real server runs a small threaded HTTP/1.1 server (keep-alive, so a test can hold an
established connection) answering every GET with its own name. Documentation addresses only;
:meth:`LvsLab.close` kills the servers and removes every namespace.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Interface
from typing import TypeVar

from pyroute2 import IPRoute, netns

from ctl.lab import LabError, LabNode, enter_netns, remove_namespaces, unique_prefix, write_sysctl

T = TypeVar("T")

VIP = "198.51.100.80"
PORT = 80
RS_PORT = 8080
GATEWAY = "203.0.113.1"  # the real servers' gateway: the pair's inside VRRP address
RS_ADDRS = ("203.0.113.10", "203.0.113.11", "203.0.113.12")
VIP6 = "2001:db8:1::80"
RS_ADDRS6 = ("2001:db8:2::10", "2001:db8:2::11", "2001:db8:2::12")

_SERVER = r"""
import http.server, socket, sys
name = sys.argv[1].encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6  # dual-stack: IPv4 clients arrive as ::ffff:a.b.c.d
S(("::", int(sys.argv[2])), H).serve_forever()
"""


class LvsLab:
    """One director routing between the client and the real servers (``directors=1``), or
    two on shared outside and inside segments (``directors=2``: a VRRP pair holds the VIP and
    the real servers' gateway 203.0.113.1; the directors have 198.51.100.2+i and 203.0.113.2+i,
    the client 198.51.100.10, all on-link, IPv4 only)."""

    def __init__(self, servers: int = 3, directors: int = 1) -> None:
        prefix = unique_prefix()
        self.client = f"{prefix}-client"
        self.directors = [f"{prefix}-dir{i}" for i in range(directors)]
        self.director = self.directors[0]
        self.hub = f"{prefix}-hub"
        self.servers = [f"{prefix}-rs{i}" for i in range(servers)]
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        try:
            if directors == 1:
                self._build()
            else:
                self._build_pair()
            for i in range(len(self.servers)):
                self._procs.append(self._serve(i))
            for i in range(len(self.servers)):
                self._wait_serving(i)
        except BaseException:
            self.close()
            raise

    def _ns(self, name: str) -> IPRoute:
        netns.create(name)
        self._namespaces.append(name)
        with enter_netns(name):
            for scope in ("all", "default"):  # addresses usable at once, no DAD
                write_sysctl(f"/proc/sys/net/ipv6/conf/{scope}/accept_dad", "0")
            ipr = IPRoute()
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        return ipr

    def _build(self) -> None:
        with self._ns(self.director) as d:
            d.link("add", ifname="out", kind="veth", peer="c")
            d.link("add", ifname="in", kind="bridge")
            with self._ns(self.client) as c:
                d.link("set", index=d.link_lookup(ifname="c")[0], net_ns_fd=self.client)
                self._up(c, "c", "198.51.100.10", 24, "198.51.100.1")
                self._up(c, "c", "2001:db8:1::10", 64, "2001:db8:1::1")
            self._up(d, "out", "198.51.100.1", 24)
            self._up(d, "out", "2001:db8:1::1", 64)
            d.addr("add", index=d.link_lookup(ifname="out")[0], address=VIP, prefixlen=32)
            d.addr("add", index=d.link_lookup(ifname="out")[0], address=VIP6, prefixlen=128)
            self._up(d, "in", "203.0.113.1", 24)
            self._up(d, "in", "2001:db8:2::1", 64)
            for i, ns in enumerate(self.servers):
                d.link("add", ifname=f"rs{i}", kind="veth", peer="eth0")
                with self._ns(ns) as r:
                    d.link("set", index=d.link_lookup(ifname="eth0")[0], net_ns_fd=ns)
                    self._up(r, "eth0", RS_ADDRS[i], 24, "203.0.113.1")
                    self._up(r, "eth0", RS_ADDRS6[i], 64, "2001:db8:2::1")
                port = d.link_lookup(ifname=f"rs{i}")[0]
                d.link("set", index=port, master=d.link_lookup(ifname="in")[0], state="up")
        with enter_netns(self.director):
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
            write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")

    def _build_pair(self) -> None:
        with self._ns(self.hub) as hub:
            for bridge in ("out", "in"):
                hub.link("add", ifname=bridge, kind="bridge")
                hub.link("set", index=hub.link_lookup(ifname=bridge)[0], state="up")
            n = 0

            def attach(ns: str, ipr: IPRoute, bridge: str, ifname: str, addr: str) -> None:
                nonlocal n
                n += 1
                hub.link("add", ifname=f"h{n}", kind="veth", peer=f"p{n}")
                hub.link("set", index=hub.link_lookup(ifname=f"p{n}")[0], net_ns_fd=ns)
                end = hub.link_lookup(ifname=f"h{n}")[0]
                hub.link("set", index=end, master=hub.link_lookup(ifname=bridge)[0], state="up")
                ipr.link("set", index=ipr.link_lookup(ifname=f"p{n}")[0], ifname=ifname)
                self._up(ipr, ifname, addr, 24)

            with self._ns(self.client) as c:
                attach(self.client, c, "out", "eth0", "198.51.100.10")
            # The client re-resolves the VIP within about 2 s even when no GARP reaches it:
            # the pair's labs are about the datapath following a takeover, and a takeover's
            # first GARP burst has been seen missing (docs/lvs.md); with the default timers
            # the client would keep the dead master's MAC for up to ~50 s.
            with enter_netns(self.client):
                write_sysctl("/proc/sys/net/ipv4/neigh/eth0/base_reachable_time_ms", "1000")
                write_sysctl("/proc/sys/net/ipv4/neigh/eth0/delay_first_probe_time", "1")
            for i, ns in enumerate(self.directors):
                with self._ns(ns) as d:
                    attach(ns, d, "out", "out", f"198.51.100.{2 + i}")
                    attach(ns, d, "in", "in", f"203.0.113.{2 + i}")
                with enter_netns(ns):
                    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
            for i, ns in enumerate(self.servers):
                with self._ns(ns) as r:
                    attach(ns, r, "in", "eth0", RS_ADDRS[i])
                    # the gateway is the address the VRRP pair holds (on-link already)
                    r.route("add", dst="0.0.0.0/0", gateway=GATEWAY)

    def _serve(self, i: int) -> subprocess.Popen[bytes]:
        with enter_netns(self.servers[i]):
            return subprocess.Popen(
                [sys.executable, "-c", _SERVER, f"rs{i}", str(RS_PORT)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def _wait_serving(self, i: int, timeout: float = 10.0) -> None:
        # Asked from the server's own namespace: the client may have no route to it yet.
        for addr in (RS_ADDRS[i], RS_ADDRS6[i]) if len(self.directors) == 1 else (RS_ADDRS[i],):
            deadline = time.monotonic() + timeout
            while self._answers(addr, RS_PORT, self.servers[i]) != f"rs{i}":
                if time.monotonic() > deadline:
                    raise LabError(f"the HTTP server of rs{i} does not answer on {addr}")
                time.sleep(0.05)

    def _answers(self, host: str, port: int, ns: str) -> str | None:
        conn = http.client.HTTPConnection(host, port, timeout=3)
        try:
            with enter_netns(ns):
                conn.connect()
            return self.ask(conn)
        except OSError:
            return None
        finally:
            conn.close()

    def stop_server(self, i: int) -> None:
        """Stop real server ``i``'s HTTP server (its address stays: connections are refused)."""
        self._procs[i].kill()
        self._procs[i].wait(5)

    def start_server(self, i: int) -> None:
        """Start real server ``i``'s HTTP server again, once it answers."""
        self._procs[i] = self._serve(i)
        self._wait_serving(i)

    def prepare_dr(self) -> None:
        """Make the lab fit for ``lvs_method DR``: each real server holds the VIPs on ``lo``
        and neither answers nor announces ARP for them (``arp_ignore`` 1, ``arp_announce`` 2),
        so only the director draws the clients' packets. The real servers' replies come from
        the VIP and, the director being the lab's only router, through it: it must accept
        packets from one of its own addresses on ``in`` (``accept_local``), which a router
        that is not the director would not need."""
        for ns in self.servers:
            with enter_netns(ns), IPRoute() as ipr:
                for scope in ("all", "eth0"):
                    write_sysctl(f"/proc/sys/net/ipv4/conf/{scope}/arp_ignore", "1")
                    write_sysctl(f"/proc/sys/net/ipv4/conf/{scope}/arp_announce", "2")
                lo = ipr.link_lookup(ifname="lo")[0]
                ipr.addr("replace", index=lo, address=VIP, prefixlen=32)
                ipr.addr("replace", index=lo, address=VIP6, prefixlen=128)
        for ns in self.directors:
            with enter_netns(ns):
                for scope in ("all", "in"):
                    write_sysctl(f"/proc/sys/net/ipv4/conf/{scope}/rp_filter", "0")
                write_sysctl("/proc/sys/net/ipv4/conf/in/accept_local", "1")

    def cut_director(self, i: int) -> None:
        """Take director ``i`` off both segments, as a power cut would: a killed daemon leaves
        its addresses and table in the kernel, a dead machine forwards nothing."""
        with enter_netns(self.directors[i]), IPRoute() as ipr:
            for ifname in ("out", "in"):
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="down")

    @property
    def director_node(self) -> LabNode:
        """The director as a lab node, to run a daemon group in (``ctl.group.DaemonGroup``)."""
        return self.director_nodes[0]

    @property
    def director_nodes(self) -> list[LabNode]:
        if len(self.directors) == 1:
            return [LabNode(0, "director", self.director, "out", IPv4Interface("198.51.100.1/24"))]
        return [
            LabNode(i, f"director{i}", ns, "out", IPv4Interface(f"198.51.100.{2 + i}/24"))
            for i, ns in enumerate(self.directors)
        ]

    @staticmethod
    def _up(ipr: IPRoute, ifname: str, addr: str, plen: int, gw: str | None = None) -> None:
        idx = ipr.link_lookup(ifname=ifname)[0]
        ipr.link("set", index=idx, state="up")
        ipr.addr("add", index=idx, address=addr, prefixlen=plen)
        if gw is not None:
            ipr.route("add", dst="::/0" if ":" in gw else "0.0.0.0/0", gateway=gw)

    def in_director(self, fn: Callable[[], T]) -> T:
        with enter_netns(self.director):
            return fn()

    def connect(
        self, host: str = VIP, port: int = PORT, timeout: float = 3.0
    ) -> http.client.HTTPConnection:
        """A keep-alive connection from the client (its socket lives in the client's namespace)."""
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        with enter_netns(self.client):
            conn.connect()
        return conn

    @staticmethod
    def ask(conn: http.client.HTTPConnection) -> str:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()

    def get(self, host: str = VIP, port: int = PORT, timeout: float = 3.0) -> str:
        """One request on a new connection from the client: the answering server's name."""
        conn = self.connect(host, port, timeout)
        try:
            return self.ask(conn)
        finally:
            conn.close()

    def spread(self, n: int) -> Counter[str]:
        return Counter(self.get() for _ in range(n))

    def nft(self, *args: str, director: int = 0) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", self.directors[director], "nft", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout

    def close(self) -> None:
        for p in self._procs:
            p.kill()
            p.wait(5)
        remove_namespaces(self._namespaces)
