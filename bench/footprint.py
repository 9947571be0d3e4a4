"""Footprint: memory (PSS) per process and start-up time, pykeepalived vs keepalived.

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/footprint.py [--instances 1 255] [--repeats 3]
        [--settle 10] [--spawn fork|exec|both] [--quick] [--json FILE]

For each instance count, the daemons take turns (ours, keepalived, ours, ...; ``--repeats``
runs each; ``--spawn both`` adds ours with ``PYKEEPALIVED_SPAWN=exec``, every child its own
interpreter as before the watchdog forked them from one image) on one node of a fresh lab
(ctl.lab), with a config of N instances that own their addresses (priority 255, so both
daemons advertise at once instead of waiting out a master-down interval; VRIDs 1..N on eth0,
one documentation /32 VIP each, advert_int 1). Per run:

* **start-up**: from the moment the daemon is launched to its first advert on the wire
  (kernel timestamp of a passive capture on the lab's bridge);
* **memory**: once every instance has advertised and ``--settle`` seconds have passed (ten
  by default: an idle node, past each component's first heap trim at its third heartbeat,
  bus.heap), the proportional set size (``Pss`` in /proc/PID/smaps_rollup) of every process
  of the daemon: shared pages (the interpreter, libraries) are split between the processes
  sharing them, so the sum is what the daemon really costs the machine, split into anonymous
  memory and file pages. A file page is split with *every* process that maps it, ours or
  not: while other Python processes of the same interpreter and venv run (a test suite,
  another daemon), our sum falls by up to ~9 MiB without anything changing in the daemon. So
  beside it, the **distinct pages** (bench/pagemap.py): every physical page resident in any
  process of the daemon counted once, which the rest of the machine does not move;
* **restart** (ours only): each component but the bus is killed with SIGKILL in turn, and timed
  from the kill to its replacement's first heartbeat on the bus (the heartbeat's own
  publish timestamp).

Our daemon is launched as an installed package runs: from bytecode (pip compiles every module
when it installs one). ``PYTHONDONTWRITEBYTECODE`` is dropped for the daemons and the bytecode
is written once, before the runs, to a cache of its own (``PYTHONPYCACHEPREFIX``, under the
temporary directory, never into the tree); a checkout run with ``PYTHONDONTWRITEBYTECODE=1``
would time the compiler (~0.15 s of every launch) rather than the daemon.

``--quick`` is one run of each daemon with one instance and a one-second settle: seconds, not
minutes. Printed: the median and spread of each figure per daemon and instance count, ours per
process, and the ratios ours / keepalived. ``--json`` writes the same as a result file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
import zmq.asyncio
from failover import KEEPALIVED, Daemon, Keepalived, Ours
from pagemap import distinct_kib
from scale import vip

from bus import RuntimeDir, Subscriber
from ctl.capture import AdvertCapture
from ctl.lab import Lab, LabNode

RESTARTED = ("core", "netd", "checkd", "vrrpd")
ROOT = Path(__file__).resolve().parent.parent
PYCACHE = Path(tempfile.gettempdir()) / "pykeepalived-bench-pycache"
# Everything the watchdog may import before its first fork: the whole image, with the
# modules a configuration can add to it (watchdog.ondemand.image_modules).
_IMPORT_IMAGE = (
    "import importlib, watchdog.cli, watchdog.spawn as s\n"
    "for m in (*s.ENTRY_MODULES.values(), 'netd.lvs.driver'): importlib.import_module(m)\n"
)


def compiled_bytecode() -> None:
    """Launch our daemons from bytecode, as installed: compile the image once into a cache of
    its own, and let the daemons launched from here on read it."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", _IMPORT_IMAGE], cwd=ROOT, env=env, check=True)


def footprint_config(instances: int) -> str:
    blocks = ["global_defs {\n    router_id footprint\n}\n"]
    for i in range(1, instances + 1):
        blocks.append(
            f"vrrp_instance VI_{i} {{\n"
            f"    state MASTER\n    interface eth0\n    virtual_router_id {i}\n"
            f"    priority 255\n    advert_int 1\n"
            f"    virtual_ipaddress {{\n        {vip(i)} dev eth0\n    }}\n}}\n"
        )
    return "\n".join(blocks)


def pss_kib(pid: int) -> dict[str, int] | None:
    """``Pss``, ``Pss_Anon`` and ``Pss_File`` of one process (KiB), None once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return None
    fields = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines)}
    return {k: fields[k] for k in ("Pss", "Pss_Anon", "Pss_File")}


def component(pid: int) -> str:
    """Our process's component name: setproctitle writes ``pykeepalived: vrrpd --runtime-dir …``."""
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return str(pid)
    return text.split()[1] if text.startswith("pykeepalived: ") else Path(text).name


@dataclass(slots=True)
class Run:
    daemon: str
    instances: int
    startup_s: float
    pss_kib: dict[str, int] = field(default_factory=dict)
    pss_anon_kib: int = 0
    pss_file_kib: int = 0
    distinct_kib: int = 0
    restart_s: dict[str, float] = field(default_factory=dict)

    @property
    def total_mib(self) -> float:
        return sum(self.pss_kib.values()) / 1024

    @property
    def distinct_mib(self) -> float:
        return self.distinct_kib / 1024


class OursExec(Ours):
    """Ours with every child exec'd as its own interpreter (watchdog.spawn's SPAWN_ENV)."""

    def __init__(self, node: LabNode, config: str) -> None:
        os.environ["PYKEEPALIVED_SPAWN"] = "exec"
        try:
            super().__init__(node, config)
        finally:
            del os.environ["PYKEEPALIVED_SPAWN"]


def restart_times(daemon: Ours) -> dict[str, float]:
    """SIGKILL each component in turn; seconds until its replacement's first heartbeat."""
    return asyncio.run(_restart_times(daemon.group.runtime))


async def _restart_times(runtime: RuntimeDir) -> dict[str, float]:
    from ctl.group import group_pids

    ctx = zmq.asyncio.Context()
    times: dict[str, float] = {}
    try:
        for name in RESTARTED:
            if name not in group_pids(runtime.path):
                continue  # checkd: started only for a config with checks (watchdog.ondemand)
            sub = Subscriber(ctx, runtime, [f"hb.{name}"])
            sub.start()
            try:
                await asyncio.wait_for(sub.recv_batch(), 10)  # subscribed: the old one is heard
                old = group_pids(runtime.path)[name]
                killed = time.time()
                os.kill(old, signal.SIGKILL)
                times[name] = await asyncio.wait_for(_first_beat_not_from(sub, old), 30) - killed
            finally:
                sub.close()
    finally:
        ctx.term()
    return times


async def _first_beat_not_from(sub: Subscriber, pid: int) -> float:
    while True:
        for event in await sub.recv_batch():
            if event.env.pid != pid:
                return event.env.ts


def one_run(
    name: str, impl: Callable[[LabNode, str], Daemon], instances: int, settle: float
) -> Run:
    config = footprint_config(instances)
    with Lab(nodes=1) as lab:
        lab.wait_ready()
        (node,) = lab.nodes
        with AdvertCapture(lab.hub) as cap:
            launched = time.time()
            daemon = impl(node, config)
            try:
                vrids: set[int] = set()
                first: float | None = None
                deadline = time.monotonic() + 60
                while len(vrids) < instances:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name}: {len(vrids)}/{instances} advertised")
                    for adv in cap.drain():
                        first = adv.ts if first is None else min(first, adv.ts)
                        vrids.add(adv.vrid)
                    cap.adverts.clear()
                    time.sleep(0.005)
                assert first is not None
                time.sleep(settle)
                pids = sorted(daemon.pids())
                run = Run(name, instances, first - launched)
                for i, pid in enumerate(pids):
                    kib = pss_kib(pid)
                    if kib is not None:
                        label = (
                            component(pid)
                            if name.startswith("ours")
                            else ("parent", "vrrp")[min(i, 1)]
                        )
                        run.pss_kib[label] = run.pss_kib.get(label, 0) + kib["Pss"]
                        run.pss_anon_kib += kib["Pss_Anon"]
                        run.pss_file_kib += kib["Pss_File"]
                run.distinct_kib = distinct_kib(pids)
                if isinstance(daemon, Ours) and instances == 1:
                    run.restart_s = restart_times(daemon)
                return run
            except BaseException:
                print(f"--- {name} log ---\n{daemon.log_tail()}", file=sys.stderr)
                raise
            finally:
                daemon.close()


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.3f}  ({min(values):.3f}..{max(values):.3f})"


def report(runs: list[Run], instances: int) -> dict[str, object]:
    ours = [r for r in runs if r.daemon == "ours" and r.instances == instances]
    theirs = [r for r in runs if r.daemon == "keepalived" and r.instances == instances]
    execd = [r for r in runs if r.daemon == "ours-exec" and r.instances == instances]
    print(f"\n== {instances} instance(s), {len(ours or execd)} runs each (median (min..max))")
    summary: dict[str, object] = {"instances": instances}
    for label, group in (("pykeepalived", ours), ("pyk. exec'd", execd), ("keepalived", theirs)):
        if group:
            print(f"{label:13} PSS MiB {spread([r.total_mib for r in group])}")
            print(f"{label:13} distinct {spread([r.distinct_mib for r in group])}")
            print(f"{label:13} start s {spread([r.startup_s for r in group])}")
            summary[f"{group[0].daemon}_pss_mib"] = statistics.median(r.total_mib for r in group)
            summary[f"{group[0].daemon}_distinct_mib"] = statistics.median(
                r.distinct_mib for r in group
            )
            summary[f"{group[0].daemon}_startup_s"] = statistics.median(r.startup_s for r in group)
    for label, group in (("pykeepalived", ours), ("pyk. exec'd", execd)):
        restarted = [r for r in group if r.restart_s]
        if restarted:
            per = {
                c: statistics.median(r.restart_s[c] for r in restarted if c in r.restart_s)
                for c in RESTARTED
                if any(c in r.restart_s for r in restarted)
            }
            print(
                f"{label:13} restart → heartbeat s: "
                + ", ".join(f"{c} {v:.3f}" for c, v in per.items())
            )
            summary[f"{restarted[0].daemon}_restart_s"] = per
    if ours:
        per_process = {
            p: statistics.median(r.pss_kib.get(p, 0) / 1024 for r in ours)
            for p in sorted({p for r in ours for p in r.pss_kib})
        }
        print(
            "pykeepalived per process (MiB): "
            + ", ".join(f"{p} {v:.1f}" for p, v in per_process.items())
        )
        summary["ours_per_process_mib"] = per_process
    if ours and theirs:
        mem = statistics.median(r.total_mib for r in ours) / statistics.median(
            r.total_mib for r in theirs
        )
        start = statistics.median(r.startup_s for r in ours) / statistics.median(
            r.startup_s for r in theirs
        )
        print(f"ratio ours/keepalived: memory {mem:.2f}x, start-up {start:.2f}x")
        summary.update(memory_ratio=mem, startup_ratio=start)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--instances", type=int, nargs="+", default=[1, 255])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--only", choices=("ours", "keepalived"))
    ap.add_argument(
        "--spawn",
        choices=("fork", "exec", "both"),
        default="fork",
        help="how our watchdog starts its children (both: run each way)",
    )
    ap.add_argument("--quick", action="store_true", help="one run each, one instance, 1 s settle")
    ap.add_argument("--json", type=Path, help="write the runs and the summary here")
    args = ap.parse_args()
    # The restart probe's subscriber would log every restart it sees; the figures say it all.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.quick:
        args.instances, args.repeats, args.settle = [1], 1, 1.0
    compiled_bytecode()
    impls: list[tuple[str, Callable[[LabNode, str], Daemon]]] = []
    if args.spawn in ("fork", "both"):
        impls.append(("ours", Ours))
    if args.spawn in ("exec", "both"):
        impls.append(("ours-exec", OursExec))
    if Path(KEEPALIVED).exists():
        impls.append(("keepalived", Keepalived))
    impls = [(n, i) for n, i in impls if args.only in (None, n.split("-")[0])]
    runs: list[Run] = []
    for count in args.instances:
        for rep in range(args.repeats):
            for name, impl in impls if rep % 2 == 0 else impls[::-1]:
                run = one_run(name, impl, count, args.settle)
                figures = (
                    f"start {run.startup_s:.3f} s  PSS {run.total_mib:.1f} MiB "
                    f"(anon {run.pss_anon_kib / 1024:.1f}, file {run.pss_file_kib / 1024:.1f})"
                    f"  distinct pages {run.distinct_mib:.1f} MiB"
                )
                print(f"{name:10} n={count:<4} {figures}", flush=True)
                runs.append(run)
    summaries = [report(runs, count) for count in args.instances]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"runs": [asdict(r) for r in runs], "summary": summaries}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
