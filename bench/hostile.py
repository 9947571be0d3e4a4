"""CPU cost of an advert flood from a hostile neighbour: pykeepalived vs keepalived.

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/hostile.py [--rate 10000] [--seconds 5] [--only ours]
        [--quick] [--json FILE]

A two-node lab (tests/lab.py) with the victim of tests/vrrpd/test_hostile_wire.py on node 0:
three instances (VRRPv2 PASS, VRRPv3 IPv4, VRRPv3 IPv6), MASTER at priority 200. Node 1 sends
V2's advert claiming priority 254 with a guessed password, ``--rate`` frames a second for
``--seconds``. Measured for each daemon: the CPU its processes use at rest and during the flood
(utime + stime from /proc, as a share of one core), whether every VIP stayed in the kernel the
whole time (sampled every 50 ms), and for pykeepalived the frames counted under
``drop.auth`` (the kernel may drop some before vrrpd reads them when the receive buffer is full).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*

from result_file import write_figures

from ctl.snapshot import collect
from tests.daemon import DaemonGroup
from tests.lab import Lab, Node, wait_until
from tests.vrrpd.hostile import VIPS, Injector, flood_frame, victim_config

KEEPALIVED = "/usr/sbin/keepalived"
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def children(pid: int) -> list[int]:
    out = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


@contextlib.contextmanager
def ours(node: Node) -> Iterator[tuple[Callable[[], list[int]], Callable[[], int]]]:
    group = DaemonGroup(node, victim_config())
    try:
        group.wait_started()

        def auth_drops() -> int:
            report = asyncio.run(collect(group.runtime)).instances.get("V2", {})
            return int(report.get("drops", {}).get("drop.auth", 0))

        yield (lambda: [group.pids()["vrrpd"]]), auth_drops
    finally:
        group.close()


@contextlib.contextmanager
def keepalived(node: Node) -> Iterator[tuple[Callable[[], list[int]], Callable[[], int]]]:
    workdir = Path(tempfile.mkdtemp(prefix="pk-ka-"))
    conf = workdir / "keepalived.conf"
    conf.write_text(victim_config())
    argv = [
        KEEPALIVED, "-n", "-l", "-P", "-f", str(conf), "-p", str(workdir / "k.pid"),
        "-r", str(workdir / "v.pid"), "-c", str(workdir / "c.pid"),
    ]  # fmt: skip
    with (workdir / "log").open("wb") as log:
        proc = node.popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield (lambda: children(proc.pid)), (lambda: -1)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def measure(name: str, lab: Lab, rate: float, seconds: float) -> dict[str, object]:
    victim, neighbour = lab.node(0), lab.node(1)
    vips = {vip for _, vip in VIPS.values()}
    daemon = ours if name == "ours" else keepalived
    with daemon(victim) as (pids, auth_drops):
        wait_until(lambda: vips <= victim.address_set(), 30, message=f"{name} to hold the VIPs")
        start = cpu_seconds(pids())
        time.sleep(seconds)  # a benchmark's measuring window, not a wait for a condition
        idle = (cpu_seconds(pids()) - start) / seconds
        drops_before = auth_drops()
        lost: list[float] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if not vips <= victim.address_set():
                    lost.append(time.monotonic())
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        injector = Injector(neighbour)
        try:
            start, t0 = cpu_seconds(pids()), time.monotonic()
            sent = injector.flood(flood_frame(neighbour.mac(), neighbour.ip4), rate, seconds)
            elapsed = time.monotonic() - t0
            busy = (cpu_seconds(pids()) - start) / elapsed
        finally:
            injector.close()
            done.set()
            watcher.join()
        counted = "-"
        if name == "ours":
            # a status snapshot re-reads the counters (vrrp.state is refreshed at each re-send)
            target = drops_before + sent
            with contextlib.suppress(AssertionError):
                wait_until(lambda: auth_drops() >= target, 8, 0.5)
            counted = str(auth_drops() - drops_before)
        print(
            f"{name:<11} sent {sent:>7} ({sent / elapsed:>7.0f}/s)  counted drop.auth {counted:>7}"
            f"  CPU idle {idle:6.1%}  flood {busy:6.1%}  VIPs lost {len(lost)} sample(s)"
        )
        return {
            "sent": sent,
            "rate": sent / elapsed,
            "drop_auth": None if counted == "-" else int(counted),
            "cpu_idle": idle,
            "cpu_flood": busy,
            "vips_lost_samples": len(lost),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--only", choices=("ours", "keepalived"))
    ap.add_argument("--quick", action="store_true", help="2 s windows")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.quick:
        args.seconds = 2.0
    names = [args.only] if args.only else ["ours", "keepalived"]
    if "keepalived" in names and not Path(KEEPALIVED).exists():
        names.remove("keepalived")
        print(f"{KEEPALIVED} not found: measuring pykeepalived only")
    measured = {}
    for name in names:
        with Lab(nodes=2) as lab:
            lab.wait_ready()
            measured[name] = measure(name, lab, args.rate, args.seconds)
    write_figures(args.json, {"rate": args.rate, "seconds": args.seconds, "daemons": measured})


if __name__ == "__main__":
    main()
