"""Failover time on the wire: pykeepalived vs keepalived, crash and graceful, v2 1 s and v3 0.1 s.

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/failover.py [--reps 5] [--only ours|keepalived]
        [--scenario v2-crash --scenario v3-graceful ...] [--quick] [--json FILE]

For every repetition a fresh two-node lab (ctl.lab: a bridge in a hub namespace, 192.0.2.10 and
.11 on eth0) runs the same pair twice over: pykeepalived -> pykeepalived and keepalived ->
keepalived, with the same generated keepalived.conf (instance VI_1, VRID 51, priorities 150 and
120, VIP 192.0.2.100/24). Once node1 is MASTER and node2 BACKUP (their own logs say so) and a
couple of adverts have gone by, node1 is stopped:

* crash: SIGKILL to every process of its daemon, the VRRP one first (no goodbye advert; the
  parent is frozen meanwhile so it cannot respawn anything), so node2 takes
  over after its master-down interval, 3 x interval + skew;
* graceful: SIGTERM, so node1 sends a priority-0 advert and node2 takes over after its skew
  time, (256 - 120) / 256 x interval.

The takeover is measured on the wire, on the bridge, with kernel receive timestamps: node1's
last advert to node2's first. The hub namespace is passive (it sends nothing). Printed: median
and p90 per daemon next to the theory, and the ratio ours / keepalived.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from result_file import write_figures

from ctl.capture import AdvertCapture
from ctl.demo import DemoOptions, node_config
from ctl.group import DaemonGroup
from ctl.lab import Lab, LabNode
from ctl.takeover import Takeover, master_down_interval, measure_takeover, skew_time

KEEPALIVED = "/usr/sbin/keepalived"
VRID = 51
MASTER_PRIO, BACKUP_PRIO = 150, 120


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    version: int
    interval: float
    crash: bool

    @property
    def theory(self) -> float:
        if self.crash:
            return master_down_interval(BACKUP_PRIO, self.interval)
        return skew_time(BACKUP_PRIO, self.interval)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("v2-crash", 2, 1.0, True),
        Scenario("v2-graceful", 2, 1.0, False),
        Scenario("v3-crash", 3, 0.1, True),
        Scenario("v3-graceful", 3, 0.1, False),
    )
}


class Daemon:
    """What the benches need from either implementation running in one node."""

    def state(self) -> str | None:
        """The state its log last reported (for the single instance of this bench)."""
        raise NotImplementedError

    def transitions(self) -> list[tuple[str, str]]:
        """(instance, new state) for every transition its log reported, in order."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every process of the daemon."""
        raise NotImplementedError

    def crash(self) -> None:
        raise NotImplementedError

    def terminate(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def log_tail(self) -> str:
        raise NotImplementedError


_INSTANCE = re.compile(r"\binstance=(\S+)")
_OURS_NEW = re.compile(r"\bnew=(MASTER|BACKUP|FAULT|INIT)\b")
_KA_ENTERING = re.compile(r"\((\S+)\) Entering (MASTER|BACKUP|FAULT) STATE")


def _last_state(text: str, marks: dict[str, str]) -> str | None:
    last: tuple[int, str] | None = None
    for mark, state in marks.items():
        at = text.rfind(mark)
        if at >= 0 and (last is None or at > last[0]):
            last = (at, state)
    return last[1] if last else None


class Ours(Daemon):
    MARKS = {"new=MASTER": "MASTER", "new=BACKUP": "BACKUP", "new=FAULT": "FAULT"}

    def __init__(self, node: LabNode, config: str) -> None:
        self.group = DaemonGroup(node, config)
        self.group.start()

    def state(self) -> str | None:
        text = self.group.log_path.read_text(errors="replace")
        lines = "\n".join(line for line in text.splitlines() if "vrrp.state " in line)
        return _last_state(lines, self.MARKS)

    def transitions(self) -> list[tuple[str, str]]:
        text = self.group.log_path.read_text(errors="replace")
        found = []
        for line in text.splitlines():
            if "vrrp.state " in line:
                inst, new = _INSTANCE.search(line), _OURS_NEW.search(line)
                if inst and new:
                    found.append((inst.group(1), new.group(1)))
        return found

    def pids(self) -> list[int]:
        return list(self.group.pids().values())

    def crash(self) -> None:
        self.group.crash()

    def terminate(self) -> None:
        self.group.terminate()

    def close(self) -> None:
        self.group.close()

    def log_tail(self) -> str:
        return self.group.log_tail(15)


class Keepalived(Daemon):
    MARKS = {
        "Entering MASTER STATE": "MASTER",
        "Entering BACKUP STATE": "BACKUP",
        "Entering FAULT STATE": "FAULT",
    }

    def __init__(self, node: LabNode, config: str, detail: bool = True) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pk-ka-"))
        conf = self.dir / "keepalived.conf"
        conf.write_text(config)
        self.log = self.dir / "keepalived.log"
        argv = [
            KEEPALIVED, "-n", "-l", *(["-D"] if detail else []), "-P", "-f", str(conf),
            "-p", str(self.dir / "k.pid"), "-r", str(self.dir / "v.pid"),
            "-c", str(self.dir / "c.pid"),
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.proc = node.popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    def pids(self) -> list[int]:
        """The parent and its children (the VRRP process)."""
        pids = [self.proc.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        pids.append(int(entry.name))
        return pids

    def state(self) -> str | None:
        return _last_state(self.log.read_text(errors="replace"), self.MARKS)

    def transitions(self) -> list[tuple[str, str]]:
        text = self.log.read_text(errors="replace")
        return [(m.group(1), m.group(2)) for m in _KA_ENTERING.finditer(text)]

    def crash(self) -> None:
        """As DaemonGroup.crash: freeze the parent (no respawn), kill -9 the VRRP child, then it."""
        parent, *children = self.pids()
        os.kill(parent, signal.SIGSTOP)
        for pid in [*children, parent]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.crash()

    def close(self) -> None:
        try:
            self.terminate()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


def one_run(impl: Callable[[LabNode, str], Daemon], scenario: Scenario, timeout: float) -> Takeover:
    opts = DemoOptions(nodes=2, advert_int=scenario.interval, vrrp_version=scenario.version)
    with Lab(nodes=2) as lab:
        lab.wait_ready()
        n1, n2 = lab.nodes
        with AdvertCapture(lab.hub) as cap:
            daemons: list[Daemon] = []
            try:
                daemons.append(impl(n1, node_config(n1.name, MASTER_PRIO, opts)))
                daemons.append(impl(n2, node_config(n2.name, BACKUP_PRIO, opts)))
                master, backup = daemons
                _wait(
                    lambda: master.state() == "MASTER" and backup.state() == "BACKUP",
                    timeout,
                    "node1 MASTER and node2 BACKUP",
                )
                # A few adverts from the settled master, and none left from a start-up race.
                time.sleep(max(3 * scenario.interval, 0.5))
                cap.drain()
                since = time.time()
                if scenario.crash:
                    master.crash()
                else:
                    master.terminate()

                def found() -> bool:
                    cap.drain()
                    return measure_takeover(cap.adverts, VRID, n1.ip4, since) is not None

                _wait(found, master_down_interval(1, scenario.interval) + 10, "node2's advert")
                took = measure_takeover(cap.adverts, VRID, n1.ip4, since)
                assert took is not None and took.first_new.src == n2.ip4, took
                assert took.graceful == (not scenario.crash), took
                return took
            except BaseException:
                for i, d in enumerate(daemons):
                    print(f"--- node{i + 1} log ---\n{d.log_tail()}", file=sys.stderr)
                raise
            finally:
                for d in daemons:
                    d.close()


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions per scenario and daemon")
    ap.add_argument("--only", choices=("ours", "keepalived"), help="run one daemon only")
    ap.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="default: all four"
    )
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for election")
    ap.add_argument("--quick", action="store_true", help="one rep of the two 0.1 s scenarios")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.scenario = 1, args.scenario or ["v3-crash", "v3-graceful"]
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    impls: dict[str, Callable[[LabNode, str], Daemon]] = {"ours": Ours, "keepalived": Keepalived}
    if args.only:
        impls = {args.only: impls[args.only]}
    if "keepalived" in impls and not Path(KEEPALIVED).exists():
        raise SystemExit(f"{KEEPALIVED} not found (apt-get install keepalived)")
    results: dict[tuple[str, str], list[float]] = {}
    for name in args.scenario or list(SCENARIOS):
        scenario = SCENARIOS[name]
        for rep in range(args.reps):
            # Interleaved, so slow drifts in machine load hit both daemons alike.
            for label, impl in impls.items():
                took = one_run(impl, scenario, args.timeout)
                results.setdefault((name, label), []).append(took.seconds)
                print(
                    f"{name:<12} rep {rep + 1}/{args.reps} {label:<10} "
                    f"{took.seconds * 1000:9.1f} ms  (theory {scenario.theory * 1000:.1f} ms)",
                    flush=True,
                )
    print()
    print(
        f"{'scenario':<12} {'theory ms':>10}  {'daemon':<10} {'median ms':>10} {'p90 ms':>9} "
        f"{'median-theory':>14}  ratio ours/keepalived (median)"
    )
    scenarios = []
    for name in args.scenario or list(SCENARIOS):
        theory = SCENARIOS[name].theory
        medians = {}
        for label in impls:
            values = results[(name, label)]
            med = statistics.median(values)
            medians[label] = med
            print(
                f"{name:<12} {theory * 1000:10.1f}  {label:<10} {med * 1000:10.1f} "
                f"{p90(values) * 1000:9.1f} {(med - theory) * 1000:+13.1f}"
            )
        ratio = medians["ours"] / medians["keepalived"] if len(medians) == 2 else None
        if ratio is not None:
            print(f"{'':<12} {'':>10}  ratio ours/keepalived = {ratio:.3f}")
        daemons = {
            label: {"median_s": statistics.median(v), "p90_s": p90(v), "runs_s": v}
            for label in impls
            for v in [results[(name, label)]]
        }
        scenarios.append({"name": name, "theory_s": theory, "daemons": daemons, "ratio": ratio})
    write_figures(args.json, {"reps": args.reps, "scenarios": scenarios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
