"""The soak: a three-node pykeepalived lab disturbed at random for a bounded time.

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/soak.py [--minutes 30] [--sample-every 10] [--pause 5]
        [--warmup 300] [--seed N] [--spare-node 2] [--json bench/results/soak.json]
        [--svg docs/soak.svg]

The lab is tests/netfaults.py's (priorities 150, 120, 100; VRRPv3 at 1 s; an observer asking
ARP for the VIP). Until the time is up, one disturbance after another (with a random pause of
up to ``--pause`` seconds between them), each picked at random:

* **kill**: SIGKILL of a random component (bus, core, netd, vrrpd) of a random node (but
  ``--spare-node``, whose processes then live through the whole soak); the watchdog restarts
  it;
* **reload**: SIGHUP to a random node's watchdog after its config gained or lost a second VIP
  (192.0.2.201); core reads it again and vrrpd applies it without a transition;
* **fault**: one of tests/netfaults.py's network scenarios (advert loss, duplicated adverts,
  one-way and full partitions, a link flap), with the checks each scenario makes.

Each disturbance goes through :func:`tests.netfaults.disturb`: from node 0 alone MASTER,
holding the VIP and answering ARP, through the disturbance, back to that state, with no
take-over before its master-down timer expired and (for network faults) a split brain
logged for every dual-master stretch the higher master heard. After a reload the node must
hold the second VIP exactly when it is master and has it configured. Any failed check is an
invariant **violation** (counted, printed, and the soak goes on).

Every ``--sample-every`` seconds a thread samples each process of each node (watchdog and
components): PSS from ``/proc/<pid>/smaps_rollup`` and its count of open fds. Written: the
figures as JSON (``--json``, bench/result_file.py's ``write_figures``) and the memory and fd
curves as one SVG (``--svg``: the spared node's processes, or the mean over the three nodes
per process).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the bench modules

from result_file import write_figures
from svg_chart import Series, line_chart

from tests import netfaults
from tests.fault_daemons import PyDaemon
from tests.lab import wait_until
from tests.netfaults import FaultLab, cluster_config

PRIORITIES = (150, 120, 100)
EXTRA_VIP = "192.0.2.201"
#: network scenarios of tests/netfaults.py the soak draws from (shortened where they take long)
FAULTS: dict[str, Callable[[FaultLab], netfaults.Outcome]] = {
    "advert loss 30 %": lambda lab: netfaults.advert_loss(lab, 30, adverts=8),
    "advert loss 60 %": lambda lab: netfaults.advert_loss(lab, 60, adverts=8),
    "duplicated adverts": netfaults.duplicated_adverts,
    "one-way partition from the master": netfaults.one_way_from_master,
    "one-way partition towards the master": netfaults.one_way_to_master,
    "full partition": netfaults.full_partition,
    "link flap": lambda lab: netfaults.flapping_link(lab, flaps=1),
}
KINDS = ("kill", "reload", "fault")


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the soak started
    node: int
    process: str
    pid: int
    pss_kib: int
    fds: int


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise ValueError(f"no Pss line for {pid}")


class Sampler:
    """A thread sampling every process of every node every ``every`` seconds."""

    def __init__(self, lab: FaultLab, every: float, start: float) -> None:
        self.lab, self.every, self.start = lab, every, start
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        t = time.monotonic() - self.start
        for i, daemon in enumerate(self.lab.daemons):
            for name, pid in daemon.pids().items():
                # a process that just died (a kill) is simply not in this sample
                with contextlib.suppress(OSError, ValueError):
                    fds = len(os.listdir(f"/proc/{pid}/fd"))
                    self.samples.append(Sample(t, i, name, pid, pss_kib(pid), fds))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def config(index: int, extra_vip: bool) -> str:
    text = cluster_config(index, PRIORITIES[index], version=3, interval="1")
    if extra_vip:
        text = text.replace("/24\n", f"/24\n        {EXTRA_VIP}/24\n", 1)
    return text


class Soak:
    def __init__(self, lab: FaultLab, rng: random.Random, spare: int | None = None) -> None:
        self.lab, self.rng = lab, rng
        #: a node whose processes are never killed: their curves run the whole soak
        self.spare = spare
        self.extra = [False] * len(lab.daemons)
        self.counts: Counter[str] = Counter()
        self.violations: list[dict[str, Any]] = []
        self.takeovers: list[netfaults.Takeover] = []
        self.dual_master: list[float] = []
        self.split_brains_heard = 0

    def _extra_vip_right(self) -> bool:
        """The second VIP is where the configs and the states say: only on node 0 (the
        master), and there exactly when its config has it."""
        held = {n.index for n in self.lab.nodes if f"{EXTRA_VIP}/24" in n.address_set()}
        return held == ({0} if self.extra[0] else set())

    def kill(self) -> str:
        node = self.rng.choice([i for i in range(len(self.lab.daemons)) if i != self.spare])
        daemon = self.lab.daemons[node]
        pids = {k: v for k, v in daemon.pids().items() if k != "watchdog"}
        name = self.rng.choice(sorted(pids))

        def inject() -> None:
            os.kill(pids[name], signal.SIGKILL)
            wait_until(
                lambda: daemon.pids().get(name, pids[name]) != pids[name],
                30,
                0.1,
                f"the watchdog to restart node {node}'s {name}",
            )

        # A killed vrrpd leaves no log line saying it stopped being MASTER, so the stretch
        # checks (split brains) would read a dead master's silence: timing checks only.
        self._record(netfaults.disturb(self.lab, inject, split_brains=False))
        return f"kill {name} of node {node}"

    def reload(self) -> str:
        node = self.rng.randrange(len(self.lab.daemons))
        daemon = self.lab.daemons[node]
        assert isinstance(daemon, PyDaemon)
        self.extra[node] = not self.extra[node]

        def reloads() -> int:
            return daemon.log_text().count('"event": "config.current"')

        def inject() -> None:
            before = reloads()
            daemon.reload(config(node, self.extra[node]))
            wait_until(lambda: reloads() > before, 30, 0.1, f"node {node} to reload")
            wait_until(
                self._extra_vip_right, 30, 0.1, f"{EXTRA_VIP} where node {node}'s config says"
            )

        self._record(netfaults.disturb(self.lab, inject))
        return f"reload node {node} ({'with' if self.extra[node] else 'without'} {EXTRA_VIP})"

    def fault(self) -> str:
        name = self.rng.choice(sorted(FAULTS))
        self._record(FAULTS[name](self.lab))
        return name

    def _record(self, out: netfaults.Outcome) -> None:
        self.takeovers += out.takeovers
        self.dual_master += out.dual_master
        self.split_brains_heard += out.split_brains_heard

    def one(self, elapsed: float) -> str:
        kind = self.rng.choice(KINDS)
        self.counts[kind] += 1
        try:
            what = str(getattr(self, kind)())
        except AssertionError as exc:
            first = str(exc).splitlines()[0] if str(exc) else repr(exc)
            self.violations.append({"t": round(elapsed, 1), "kind": kind, "error": first})
            self.lab.restore()
            return f"{kind}: VIOLATION {first}"
        if not self._extra_vip_right():
            self.violations.append({"t": round(elapsed, 1), "kind": kind, "error": "extra VIP"})
            return f"{what}: VIOLATION {EXTRA_VIP} misplaced"
        return what


def _segments(samples: list[Sample]) -> list[list[Sample]]:
    """One (node, process) series cut where its pid changed (a restart)."""
    out: list[list[Sample]] = []
    for s in samples:
        if out and out[-1][-1].pid == s.pid:
            out[-1].append(s)
        else:
            out.append([s])
    return out


def summarize(samples: list[Sample], warmup: float) -> dict[str, Any]:
    """Per (node, process): PSS and fds at the start and the end, restarts, and the PSS
    growth of its longest-lived pid after ``warmup`` seconds of its life."""
    out: dict[str, Any] = {}
    keys = sorted({(s.node, s.process) for s in samples})
    for node, process in keys:
        series = [s for s in samples if s.node == node and s.process == process]
        segments = _segments(series)
        longest = max(segments, key=lambda seg: seg[-1].t - seg[0].t)
        warm = [s for s in longest if s.t - longest[0].t >= warmup]
        growth = warm[-1].pss_kib - warm[0].pss_kib if len(warm) >= 2 else None
        span = warm[-1].t - warm[0].t if len(warm) >= 2 else 0.0
        out[f"node{node}.{process}"] = {
            "node": node,
            "process": process,
            "restarts": len(segments) - 1,
            "pss_start_kib": series[0].pss_kib,
            "pss_end_kib": series[-1].pss_kib,
            "pss_max_kib": max(s.pss_kib for s in series),
            "fds_start": series[0].fds,
            "fds_end": series[-1].fds,
            "fds_max": max(s.fds for s in series),
            "longest_pid_minutes": round((longest[-1].t - longest[0].t) / 60, 1),
            "growth_after_warmup_kib": growth,
            "growth_span_minutes": round(span / 60, 1),
        }
    return out


def chart(samples: list[Sample], node: int | None = None) -> str:
    """PSS and fds over time per process, stacked in one SVG: of ``node`` (the spared one,
    whose processes were never killed), or the mean over the nodes."""
    if node is not None:
        samples = [s for s in samples if s.node == node]
    whose = "the 3 nodes' mean" if node is None else f"node {node}, never killed"
    times = sorted({round(s.t) for s in samples})
    processes = sorted({s.process for s in samples})

    def mean(process: str, t: float, field: str) -> float | None:
        values = [getattr(s, field) for s in samples if s.process == process and round(s.t) == t]
        return statistics.fmean(values) if values else None

    xs = [t / 60 for t in times]
    pss = [
        Series(p, [None if (v := mean(p, t, "pss_kib")) is None else v / 1024 for t in times])
        for p in processes
    ]
    fds = [Series(p, [mean(p, t, "fds") for t in times]) for p in processes]
    top = line_chart(f"Soak: PSS per process ({whose})", xs, pss, "minutes", "MiB", markers=False)
    bottom = line_chart(
        f"Soak: open fds per process ({whose})", xs, fds, "minutes", "fds", markers=False
    )
    return stack(top, bottom)


def stack(*svgs: str) -> str:
    """SVG documents one above the other, in one document."""
    import re

    sizes = [
        (float(m[1]), float(m[2]))
        for m in (re.search(r'<svg[^>]*width="([\d.]+)"[^>]*height="([\d.]+)"', s) for s in svgs)
        if m is not None
    ]
    width = max(w for w, _ in sizes)
    height = sum(h for _, h in sizes)
    parts, y = [], 0.0
    for svg, (_, h) in zip(svgs, sizes, strict=True):
        inner = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
        parts.append(inner.replace("<svg ", f'<svg y="{y:.0f}" ', 1))
        y += h
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}">\n' + "\n".join(parts) + "\n</svg>\n"
    )


def run(
    minutes: float,
    sample_every: float = 10.0,
    seed: int | None = None,
    warmup: float = 300.0,
    pause: float = 5.0,
    spare: int | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the soak; its figures (``samples`` included)."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    lab = FaultLab([config(i, False) for i in range(len(PRIORITIES))], 1.0)
    started = time.time()
    try:
        for daemon in lab.daemons:
            daemon.wait_started(60)
        lab.settle()
        start = time.monotonic()
        sampler = Sampler(lab, sample_every, start)
        sampler.sample()
        soak = Soak(lab, rng, spare)
        try:
            while (elapsed := time.monotonic() - start) < minutes * 60:
                what = soak.one(elapsed)
                say(f"{elapsed / 60:6.1f} min  {what}")
                assert lab.tap is not None
                lab.tap.forget_before(time.time() - 120)  # bounded memory, ours too
                # some steady state between disturbances, of random length
                time.sleep(rng.uniform(0, pause))
        finally:
            sampler.sample()
            sampler.close()
        early = [t for t in soak.takeovers if t.early]
        gaps = [t.gap for t in soak.takeovers if t.gap is not None]
        return {
            "minutes": round((time.monotonic() - start) / 60, 2),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seed": seed,
            "advert_int_s": 1.0,
            "sample_every_s": sample_every,
            "warmup_s": warmup,
            "pause_max_s": pause,
            "spare_node": spare,
            "load_after": list(os.getloadavg()),
            "disturbances": dict(soak.counts),
            "violations": soak.violations,
            "takeovers": len(soak.takeovers),
            "early_takeovers": len(early),
            "takeover_gap_median_s": statistics.median(gaps) if gaps else None,
            "dual_master_stretches": len(soak.dual_master),
            "split_brains_heard": soak.split_brains_heard,
            "processes": summarize(sampler.samples, warmup),
            "samples": [asdict(s) for s in sampler.samples],
        }
    finally:
        lab.close()


def report(fig: dict[str, Any]) -> str:
    lines = [
        f"{fig['minutes']} min, seed {fig['seed']}: disturbances {fig['disturbances']}, "
        f"violations {len(fig['violations'])}, take-overs {fig['takeovers']} "
        f"(early {fig['early_takeovers']}), dual-master stretches "
        f"{fig['dual_master_stretches']} (split brain logged where heard: "
        f"{fig['split_brains_heard']})",
        f"  {'process':<16} {'restarts':>8} {'PSS start':>10} {'PSS end':>9} "
        f"{'growth after warm-up':>22} {'fds start/end/max':>18}",
    ]
    for key, p in fig["processes"].items():
        growth = p["growth_after_warmup_kib"]
        g = f"{growth:+d} KiB in {p['growth_span_minutes']} min" if growth is not None else "-"
        lines.append(
            f"  {key:<16} {p['restarts']:>8} {p['pss_start_kib']:>6} KiB "
            f"{p['pss_end_kib']:>5} KiB {g:>22} "
            f"{p['fds_start']:>6}/{p['fds_end']}/{p['fds_max']}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    ap.add_argument("--warmup", type=float, default=300.0, help="seconds of a process's life")
    ap.add_argument("--pause", type=float, default=5.0, help="at most, between disturbances (s)")
    ap.add_argument("--seed", type=int)
    ap.add_argument(
        "--spare-node", type=int, choices=range(len(PRIORITIES)), help="never kill its processes"
    )
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--svg", type=Path, help="write the memory and fd curves here")
    args = ap.parse_args()
    fig = run(
        args.minutes,
        args.sample_every,
        args.seed,
        args.warmup,
        args.pause,
        args.spare_node,
        lambda s: print(s, flush=True),
    )
    print(report(fig), flush=True)
    write_figures(args.json, fig)
    if args.svg is not None:
        samples = [Sample(**s) for s in fig["samples"]]
        args.svg.write_text(chart(samples, args.spare_node))
    sys.exit(1 if fig["violations"] else 0)


if __name__ == "__main__":
    main()
