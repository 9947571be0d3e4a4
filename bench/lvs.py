"""Benchmark: the nftables LVS datapath — one change to a 1,000-server pool, and connections per
second through the director against a direct connection to a real server.

Run as root from the repository root:

    PYTHONPATH=. python bench/lvs.py [--servers 1000] [--runs 7] [--seconds 3] [--quick]
        [--json FILE]

Everything happens in the namespace lab of ctl/lvslab.py (a client, a director, real
servers; documentation addresses only). The pool changes run through ``NftablesBackend`` in the
director: one transaction each, timed from the call to the kernel's last acknowledgement. The
connection rate is a Python client opening one HTTP connection after another (the client's own
cost dominates both figures; the ratio is what the director's NAT adds).

keepalived has no equivalent here: this kernel has no IPVS.
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

from result_file import write_figures

from ctl.lvslab import PORT, RS_ADDRS, RS_PORT, VIP, LvsLab
from netd.lvs import Member, NftablesBackend, Service, VirtualServer


def pool(count: int) -> tuple[Member, ...]:
    """``count`` real servers: 200 addresses of 203.0.113.0/24 times as many ports as needed."""
    return tuple(Member(f"203.0.113.{10 + i % 200}", 10000 + i // 200, 1) for i in range(count))


def bench_changes(lab: LvsLab, servers: int, runs: int) -> dict[str, list[float]]:
    backend = lab.in_director(NftablesBackend)
    svc = Service(VIP, "tcp", PORT + 1)  # not the port the connection test uses
    members = pool(servers)
    one = servers // 2
    inhibited = tuple(
        Member(m.address, m.port, 0) if i == one else m for i, m in enumerate(members)
    )
    without = members[:one] + members[one + 1 :]
    out: dict[str, list[float]] = {"build": [], "weight 0": [], "remove one": [], "add one": []}
    ops: dict[str, int] = {}
    try:
        for _ in range(runs):
            for name, pool_now in (
                ("build", members),  # the table is new: one transaction builds all of it
                ("weight 0", inhibited),
                ("remove one", without),
                ("add one", members),
            ):
                vs = VirtualServer(svc, "wrr", members=pool_now)
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


def rate(fn: Callable[[], str], seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def bench_connections(lab: LvsLab, seconds: float) -> tuple[float, float]:
    backend = lab.in_director(NftablesBackend)
    try:
        members = (Member(RS_ADDRS[0], RS_PORT), Member(RS_ADDRS[1], RS_PORT))
        backend.apply([VirtualServer(Service(VIP, "tcp", PORT), "rr", members=members)])
        direct = rate(lambda: lab.get(RS_ADDRS[0], RS_PORT), seconds)
        through = rate(lambda: lab.get(VIP, PORT), seconds)
        backend.withdraw()
    finally:
        backend.close()
    return direct, through


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true", help="200 servers, 2 runs, 1 s of connections")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.quick:
        args.servers, args.runs, args.seconds = 200, 2, 1.0
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    lab = LvsLab(servers=2)
    try:
        print(f"pool of {args.servers} real servers, {args.runs} runs (median, min-max):")
        changes = bench_changes(lab, args.servers, args.runs)
        for name, ms in changes.items():
            print(f"  {name:<10} {statistics.median(ms):7.1f} ms  ({min(ms):.1f}-{max(ms):.1f})")
        direct, through = bench_connections(lab, args.seconds)
        print(
            f"new connections/s, one HTTP GET each: direct {direct:.0f}, through the director "
            f"{through:.0f} ({through / direct:.2f}x)"
        )
        write_figures(
            args.json,
            {"servers": args.servers, "runs": args.runs,
             "changes_ms": {n: {"median": statistics.median(ms), "min": min(ms), "max": max(ms)}
                            for n, ms in changes.items()},
             "connections_per_s": {"direct": direct, "through": through}},
        )  # fmt: skip
    finally:
        lab.close()


if __name__ == "__main__":
    main()
