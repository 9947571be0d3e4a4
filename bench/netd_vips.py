"""Benchmark: install and remove 1,000 VIPs with netd's kernel adapter vs keepalived.

Run as root from the repository root:

    PYTHONPATH=. python bench/netd_vips.py [--count 1000] [--runs 3] [--no-keepalived]
        [--quick] [--json FILE]

Everything happens inside a throw-away network namespace (tests/lab.py) with documentation
addresses only: IPv4 /32s from 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 and IPv6
/128s from 2001:db8:1::/64. keepalived gets the same set (IPv6 ones as
virtual_ipaddress_excluded, since an IPv4 instance accepts only IPv4 VIPs) in one MASTER
instance, priority 200, alone on the segment; we time from process start until every address
is present, and from SIGTERM until all are gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog
from pyroute2 import IPRoute

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.lab

from result_file import write_figures

from netd import Action, Address, KernelAdapter, Operation
from tests.lab import Lab, Node, wait_until

V4_NETS = ("192.0.2", "198.51.100", "203.0.113")


def vip_set(count: int) -> list[Address]:
    v4 = [Address(f"{net}.{host}", 32, "eth0") for net in V4_NETS for host in range(20, 250)]
    v6_needed = max(0, count - len(v4))
    v6 = [Address(f"2001:db8:1::{i + 1:x}", 128, "eth0") for i in range(v6_needed)]
    return (v4 + v6)[:count]


def count_present(ipr: IPRoute, wanted: set[str]) -> int:
    present = {
        f"{m.get('IFA_LOCAL') or m.get('IFA_ADDRESS')}/{m['prefixlen']}" for m in ipr.addr("dump")
    }
    return len(present & wanted)


def bench_netd(node: Node, vips: list[Address]) -> dict[str, float]:
    with node.inside():
        ka = KernelAdapter()
        probe = IPRoute()
    wanted = {v.cidr for v in vips}
    try:
        calls0 = ka.netlink_calls
        t0 = time.perf_counter()
        res = ka.reconcile(vips)
        t_add = time.perf_counter() - t0
        assert res.ok and count_present(probe, wanted) == len(vips), res.failures[:3]
        add_calls = ka.netlink_calls - calls0

        calls0 = ka.netlink_calls
        t0 = time.perf_counter()
        again = ka.reconcile(vips)
        t_noop = time.perf_counter() - t0
        assert again.done == ()
        noop_calls = ka.netlink_calls - calls0

        calls0 = ka.netlink_calls
        t0 = time.perf_counter()
        res = ka.reconcile([])
        t_del = time.perf_counter() - t0
        assert res.ok and count_present(probe, wanted) == 0
        del_calls = ka.netlink_calls - calls0

        # What a stopping netd does (like keepalived at SIGTERM): delete what it knows it
        # installed, without reading the kernel first.
        assert ka.reconcile(vips).ok
        sends0 = ka.netlink_sends
        t0 = time.perf_counter()
        res = ka.apply([Operation(Action.DELETE, v) for v in vips])
        t_stop = time.perf_counter() - t0
        assert res.ok and count_present(probe, wanted) == 0
        stop_sends = ka.netlink_sends - sends0
    finally:
        ka.close()
        probe.close()
    return {
        "add_s": t_add,
        "add_calls": add_calls,
        "noop_s": t_noop,
        "noop_calls": noop_calls,
        "del_s": t_del,
        "del_calls": del_calls,
        "stop_s": t_stop,
        "stop_sends": stop_sends,
    }


def keepalived_conf(vips: list[Address], workdir: Path) -> str:
    v4 = "\n".join(f"        {v.cidr} dev eth0" for v in vips if ":" not in v.ip)
    v6 = "\n".join(f"        {v.cidr} dev eth0" for v in vips if ":" in v.ip)
    excluded = f"    virtual_ipaddress_excluded {{\n{v6}\n    }}\n" if v6 else ""
    return f"""global_defs {{
    router_id bench
    script_user root
    enable_script_security
    vrrp_garp_master_delay 0
}}
vrrp_instance VI_BENCH {{
    state MASTER
    interface eth0
    virtual_router_id 77
    priority 200
    advert_int 1
    virtual_ipaddress {{
{v4}
    }}
{excluded}}}
"""


def bench_keepalived(node: Node, vips: list[Address], timeout: float) -> dict[str, float]:
    with node.inside():
        probe = IPRoute()
    wanted = {v.cidr for v in vips}
    workdir = Path(tempfile.mkdtemp(prefix="pk-bench-"))
    conf = workdir / "keepalived.conf"
    conf.write_text(keepalived_conf(vips, workdir))
    argv = [
        "/usr/sbin/keepalived", "-n", "-l", "-P", "-f", str(conf),
        "-p", str(workdir / "k.pid"), "-r", str(workdir / "v.pid"), "-c", str(workdir / "c.pid"),
    ]  # fmt: skip
    log_path = workdir / "keepalived.log"
    log = log_path.open("wb")
    master_at: list[float] = []

    def all_present() -> bool:
        # Note when keepalived says it became MASTER, to separate the protocol's wait
        # (Master_Down timer) from the time it takes to install the addresses.
        if not master_at and b"Entering MASTER STATE" in log_path.read_bytes():
            master_at.append(time.perf_counter())
        return count_present(probe, wanted) == len(vips)

    try:
        t0 = time.perf_counter()
        proc = node.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(all_present, timeout, 0.002, "keepalived to install every VIP")
            t_all = time.perf_counter()
            t_add = t_all - t0
            t_master_to_all = t_all - master_at[0] if master_at else float("nan")
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: count_present(probe, wanted) == 0, timeout, 0.005, "VIPs removed")
            t_del = time.perf_counter() - t0
            proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        log.close()
        probe.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"add_s": t_add, "master_to_all_s": t_master_to_all, "del_s": t_del}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-keepalived", action="store_true")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="200 VIPs, one run")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.quick:
        args.count, args.runs = 200, 1
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    # Per-address info logs would measure the log sink, not netlink.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    vips = vip_set(args.count)
    netd_runs, ka_runs = [], []
    for _ in range(args.runs):
        with Lab(nodes=1) as lab:
            lab.wait_ready()
            netd_runs.append(bench_netd(lab.nodes[0], vips))
        if not args.no_keepalived and Path("/usr/sbin/keepalived").exists():
            with Lab(nodes=1) as lab:
                lab.wait_ready()
                ka_runs.append(bench_keepalived(lab.nodes[0], vips, args.timeout))

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"VIPs: {len(vips)} ({sum(':' in v.ip for v in vips)} IPv6), runs: {args.runs} (median)")
    print(
        f"netd adapter: add {med(netd_runs, 'add_s') * 1000:.1f} ms "
        f"({med(netd_runs, 'add_calls'):.0f} netlink calls), "
        f"no-op reconcile {med(netd_runs, 'noop_s') * 1000:.1f} ms "
        f"({med(netd_runs, 'noop_calls'):.0f} calls), "
        f"remove {med(netd_runs, 'del_s') * 1000:.1f} ms "
        f"({med(netd_runs, 'del_calls'):.0f} calls), "
        f"stop-style remove (no read-back) {med(netd_runs, 'stop_s') * 1000:.1f} ms "
        f"({med(netd_runs, 'stop_sends'):.0f} sends)"
    )
    if ka_runs:
        print(
            f"keepalived:   start->all present {med(ka_runs, 'add_s') * 1000:.1f} ms "
            f"(of which 'Entering MASTER STATE' logged->all present "
            f"{med(ka_runs, 'master_to_all_s') * 1000:.1f} ms), "
            f"SIGTERM->all gone {med(ka_runs, 'del_s') * 1000:.1f} ms"
        )
        print(
            f"ratio keepalived/netd: add (from MASTER) "
            f"{med(ka_runs, 'master_to_all_s') / med(netd_runs, 'add_s'):.2f}x, "
            f"remove {med(ka_runs, 'del_s') / med(netd_runs, 'del_s'):.2f}x, "
            f"stop {med(ka_runs, 'del_s') / med(netd_runs, 'stop_s'):.2f}x "
            "(>1 means netd is faster)"
        )
    medians = {
        name: {key: med(runs, key) for key in runs[0]} if runs else None
        for name, runs in (("netd", netd_runs), ("keepalived", ka_runs))
    }
    write_figures(args.json, {"vips": len(vips), "runs": args.runs, **medians})


if __name__ == "__main__":
    main()
