"""Every benchmark in one command: ``make bench`` (full) or ``make bench-quick`` (``--quick``).

Run as root from the repository root:

    PYTHONPATH=. .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--budget S]

Each bench runs as its own process (``bench/<script> ... --json FILE``, ``--quick`` added in
quick mode), one after the other, its output shown as it comes and kept in
``bench/results/logs/NAME.log``. A bench that exits non-zero, writes no figures or overruns its
time limit is recorded as failed with the tail of its output, and the run goes on. At the end:

* the result file (bench/result_file.py documents its shape), schema-checked:
  ``bench/results/latest.json`` for a full run, ``bench/results/quick.json`` for a quick one,
  ``bench/results/partial.json`` for ``--only`` (so a re-run of one bench never replaces the
  record of a whole run);
* the plots (bench/charts.py): into docs/ for a full run of every bench, else beside the file;
* a full run of every bench also rewrites the generated section of docs/benchmarks.md
  (bench/summary.py): the figures, the command, the date and the machine.

A full run is sized to finish in under 30 minutes on the project's 2-core VM: the bench
arguments below are chosen for that, and ``--budget`` (1,800 s) caps every bench's time limit
by what is left of it. ``--quick`` runs each bench for a few seconds (about 2-3 minutes in all).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import charts
import result_file
import summary

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
KEEPALIVED = "/usr/sbin/keepalived"
INTERRUPT_GRACE_S = 30.0  # SIGINT first: a bench's finally blocks remove its namespaces
ERROR_TAIL_LINES = 25
POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    limit_s: float = 600.0  # a full run's time limit; quick runs get a fifth of it

    def argv(self, python: str, quick: bool, out: Path) -> list[str]:
        extra = (*self.quick, "--quick") if quick else self.full
        return [python, str(BENCH / self.script), *extra, "--json", str(out)]


def _scale(instances: int, seconds: int, runs: int = 1) -> Bench:
    return Bench(
        f"scale-{instances}",
        "scale.py",
        (
            *("--instances", str(instances), "--duration", str(seconds), "--settle", "5"),
            *("--runs", str(runs)),
        ),
        ("--instances", str(instances)),
        limit_s=600.0 * runs,
    )


# Sized for the 30-minute bound on 2 loaded cores (about 17 minutes when the machine is quiet).
FULL_PLAN: tuple[Bench, ...] = (
    Bench("bus_latency", "bus_latency.py", limit_s=300),
    Bench("config_parse", "config_parse.py", ("--instances", "1000", "--runs", "5"), limit_s=300),
    Bench("netd_vips", "netd_vips.py", ("--runs", "3"), limit_s=600),
    Bench("failover", "failover.py", ("--reps", "3"), limit_s=900),
    _scale(1, 15),
    _scale(64, 15),
    # The issue #15 figure: median of three runs per daemon, in turns (~3 more minutes).
    _scale(255, 30, runs=3),
    Bench("footprint", "footprint.py", ("--instances", "1", "255", "--repeats", "3"), limit_s=900),
    # The 12,000 checkers at delay_loop 1 are above what checkd does on one core
    # (docs/benchmarks.md): that bench only finds it cannot keep up, and on a loaded machine
    # gives up waiting for a verdict. 2,400 checks/s at ~200 µs each is half a core, the
    # target's share, which a machine shared with other work still gives it: the figures then
    # measure what a check costs, not a growing backlog.
    Bench(
        "checks",
        "checks.py",
        ("--tcp", "2000", "--http", "400", "--duration", "15", "--victims", "5", "--curl", "100"),
        limit_s=600,
    ),
    Bench("lvs", "lvs.py", ("--runs", "7"), limit_s=600),
    Bench("hostile", "hostile.py", limit_s=300),
)
FULL_ONLY = frozenset({"scale-255"})  # quick mode still draws CPU against instances from two


def plan(quick: bool, only: Sequence[str]) -> list[Bench]:
    benches = [b for b in FULL_PLAN if not quick or b.name not in FULL_ONLY]
    if only:
        unknown = set(only) - {b.name for b in benches}
        if unknown:
            raise SystemExit(f"no bench named {', '.join(sorted(unknown))}")
        benches = [b for b in benches if b.name in only]
    return benches


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _follow(
    proc: subprocess.Popen[bytes],
    reader: io.BufferedReader,
    limit_s: float,
    show: Callable[[str], None],
) -> bool:
    """Show the bench's output as it comes until it exits; interrupt it (SIGINT to its process
    group, so its finally blocks remove its namespaces) at ``limit_s``, kill it after a grace.
    True when it was stopped. The bench writes to the log file itself, so a process it leaves
    behind holding its output cannot keep this loop waiting."""
    start = time.monotonic()
    interrupted_at: float | None = None
    pending = b""
    while True:
        done = proc.poll() is not None
        pending += reader.read()
        *lines, pending = pending.split(b"\n")
        for line in lines:
            show(line.decode(errors="replace"))
        if done:
            if pending:
                show(pending.decode(errors="replace"))
            return interrupted_at is not None
        now = time.monotonic()
        if interrupted_at is None and now - start > limit_s:
            interrupted_at = now
            _signal_group(proc, signal.SIGINT)
        elif interrupted_at is not None and now - interrupted_at > INTERRUPT_GRACE_S:
            _signal_group(proc, signal.SIGKILL)
        time.sleep(POLL_S)


def run_one(
    bench: Bench,
    argv: list[str],
    out: Path,
    log: Path,
    limit_s: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Run one bench; its result file entry, ok or failed."""
    out.unlink(missing_ok=True)  # a figure file left from an earlier run is no result
    out.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    tail: collections.deque[str] = collections.deque(maxlen=ERROR_TAIL_LINES)

    def show(line: str) -> None:
        tail.append(line)
        echo(f"  {bench.name}| {line}")

    start = time.monotonic()
    with log.open("wb") as log_file, log.open("rb") as reader:
        with subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        ) as proc:  # fmt: skip
            try:
                stopped = _follow(proc, reader, limit_s, show)
            except BaseException:
                # Its own session does not get the terminal's Ctrl-C: pass it on, so an
                # interrupted make bench leaves no bench (nor its namespaces) behind.
                _signal_group(proc, signal.SIGINT)
                try:
                    proc.wait(INTERRUPT_GRACE_S)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                raise
        rc = proc.returncode
    elapsed = time.monotonic() - start
    error: str | None = None
    figures: dict[str, Any] | None = None
    if stopped:
        error = f"timed out after {limit_s:.0f} s"
    elif rc != 0:
        error = f"exited {rc}"
    else:
        try:
            loaded = json.loads(out.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            error = f"wrote no figures ({exc})"
        else:
            if isinstance(loaded, dict):
                figures = loaded
            else:
                error = "its figures are not a JSON object"
    if error is not None:
        error = "\n".join([error, *tail])
    return {
        "name": bench.name,
        "script": bench.script,
        "argv": argv[1:],
        "status": "ok" if error is None else "failed",
        "duration_s": round(elapsed, 1),
        "error": error,
        "figures": figures,
    }


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split()
    memory_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    try:
        found = subprocess.run([KEEPALIVED, "-v"], capture_output=True, text=True, timeout=10)
        keepalived: str | None = (found.stderr or found.stdout).splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        keepalived = None
    return {
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count() or 0,
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "keepalived": keepalived,
    }


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD") or "unknown", "dirty": bool(git("status", "-s"))}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def run_all(
    benches: list[Bench],
    quick: bool,
    budget_s: float,
    python: str,
    command: str,
    work: Path = RESULTS,
) -> dict[str, Any]:
    """Run ``benches`` in turn; the result file's document (not yet saved). Each bench's own
    figures and log go under ``work``."""
    started, t0 = now(), time.monotonic()
    doc: dict[str, Any] = {
        "schema": result_file.SCHEMA,
        "mode": "quick" if quick else "full",
        "command": command,
        "started": started,
        "machine": machine(),
        "git": git_state(),
        "benches": [],
    }
    for i, bench in enumerate(benches, 1):
        left = budget_s - (time.monotonic() - t0)
        limit = min(bench.limit_s / (5 if quick else 1), max(left, 1.0))
        out = work / ("quick" if quick else "full") / f"{bench.name}.json"
        argv = bench.argv(python, quick, out)
        print(f"[{i}/{len(benches)}] {bench.name}: {' '.join(argv[1:])}", flush=True)
        entry = run_one(
            bench, argv, out, work / "logs" / f"{bench.name}.log", limit,
            lambda line: print(line, flush=True),
        )  # fmt: skip
        first = (entry["error"] or "").splitlines()[:1]
        print(f"[{i}/{len(benches)}] {bench.name}: {entry['status']} in "
              f"{entry['duration_s']:.0f} s {''.join(first)}", flush=True)  # fmt: skip
        doc["benches"].append(entry)
    doc["finished"] = now()
    doc["duration_s"] = round(time.monotonic() - t0, 1)
    doc["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return doc


def default_name(quick: bool, only: bool) -> str:
    return "quick.json" if quick else "partial.json" if only else "latest.json"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="each bench for a few seconds")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="this bench only")
    ap.add_argument("--budget", type=float, default=1800.0, help="seconds for the whole run")
    ap.add_argument("--out", type=Path, help="result file (default by mode, in bench/results/)")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the benches")
    args = ap.parse_args(argv)
    benches = plan(args.quick, args.only)
    out = args.out or RESULTS / default_name(args.quick, bool(args.only))
    command = "make bench-quick" if args.quick else "make bench"
    if args.only or args.budget != 1800.0:
        command = " ".join(["bench/run_all.py", *(argv if argv is not None else sys.argv[1:])])
    doc = run_all(benches, args.quick, args.budget, args.python, command)
    result_file.save(out, doc)
    complete = not args.quick and not args.only
    plots = charts.write_all(doc, ROOT / "docs" if complete else out.parent / "charts")
    source = out.resolve()
    named = str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source)
    print(summary.render(doc, [p.name for p in plots], named))
    if complete:
        summary.update_file(ROOT / "docs" / "benchmarks.md", doc, [p.name for p in plots], named)
    failed = [b["name"] for b in doc["benches"] if b["status"] != "ok"]
    print(f"\nwrote {out} and {len(plots)} plots in {doc['duration_s']:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)} (their errors are in {out})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
