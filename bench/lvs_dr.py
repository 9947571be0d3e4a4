"""Benchmark: the nftables LVS datapath's DR table — one change to a 1,000-server DR pool, and
connections per second through a DR director against a direct connection to a real server.

Run as root from the repository root:

    PYTHONPATH=. python bench/lvs_dr.py [--servers 1000] [--runs 7] [--seconds 3]

In the namespace lab of ctl/lvslab.py (documentation addresses only), made fit for DR
(``LvsLab.prepare_dr``). The pool is IPv6 (2001:db8:2::/64 is on-link on the director's inside
interface: 1,000 addresses without a real host each; DR needs no answer to program them). The
changes run through ``NftablesBackend`` in the director, timed from the call to the kernel's
last acknowledgement; bench/lvs.py does the same for NAT. keepalived has no equivalent here:
this kernel has no IPVS.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for ctl.lvslab

from ctl.lvslab import RS_ADDRS, RS_PORT, VIP, VIP6, LvsLab
from netd.lvs import Forwarding, Member, NftablesBackend, Service, VirtualServer


def rate(fn: Callable[[], str], seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def bench_changes(lab: LvsLab, servers: int, runs: int) -> dict[str, list[float]]:
    backend = lab.in_director(NftablesBackend)
    svc = Service(VIP6, "tcp", RS_PORT + 1)
    members = tuple(Member(f"2001:db8:2::{0x1000 + i:x}", None, 1) for i in range(servers))
    one = servers // 2
    inhibited = tuple(Member(m.address, None, 0) if i == one else m for i, m in enumerate(members))
    without = members[:one] + members[one + 1 :]
    out: dict[str, list[float]] = {"build": [], "weight 0": [], "remove one": [], "add one": []}
    ops: dict[str, int] = {}
    try:
        for _ in range(runs):
            for name, pool_now in (
                ("build", members),
                ("weight 0", inhibited),
                ("remove one", without),
                ("add one", members),
            ):
                vs = VirtualServer(svc, "wrr", Forwarding.DR, members=pool_now)
                t0 = time.perf_counter()
                applied = backend.apply([vs])
                out[name].append((time.perf_counter() - t0) * 1000)
                ops[name] = len(applied.ops)
            backend.withdraw()
    finally:
        backend.close()
    for name, n in ops.items():
        print(f"  {name}: {n} operations in its transaction")
    return out


def bench_connections(lab: LvsLab, seconds: float) -> tuple[float, float]:
    backend = lab.in_director(NftablesBackend)
    try:
        members = (Member(RS_ADDRS[0]), Member(RS_ADDRS[1]))
        vs = VirtualServer(Service(VIP, "tcp", RS_PORT), "rr", Forwarding.DR, members=members)
        backend.apply([vs])
        direct = rate(lambda: lab.get(RS_ADDRS[0], RS_PORT), seconds)
        through = rate(lambda: lab.get(VIP, RS_PORT), seconds)
        backend.withdraw()
    finally:
        backend.close()
    return direct, through


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    lab = LvsLab(servers=2)
    try:
        lab.prepare_dr()
        print(f"DR pool of {args.servers} real servers, {args.runs} runs (median, min-max):")
        for name, ms in bench_changes(lab, args.servers, args.runs).items():
            print(f"  {name:<10} {statistics.median(ms):7.1f} ms  ({min(ms):.1f}-{max(ms):.1f})")
        direct, through = bench_connections(lab, args.seconds)
        print(
            f"new connections/s, one HTTP GET each: direct {direct:.0f}, through the DR director "
            f"{through:.0f} ({through / direct:.2f}x)"
        )
    finally:
        lab.close()


if __name__ == "__main__":
    main()
