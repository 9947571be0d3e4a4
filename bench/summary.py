"""The figures of a result file as a Markdown section: printed, or written into docs/benchmarks.md.

    .venv/bin/python bench/summary.py [bench/results/latest.json] [--update docs/benchmarks.md]

One row per bench (its status, how long it ran, its headline figures; a failed bench shows the
first line of its error), the command, the date and the machine, and the plots bench/charts.py
draws. ``--update`` replaces the section between the ``bench:latest`` markers (or inserts it
before the first bench's own section), leaving the rest of the page as written by hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from result_file import load

BEGIN = "<!-- bench:latest begin: bench/summary.py writes this section, edits are lost -->"
END = "<!-- bench:latest end -->"
PLOTS = {
    "failover.svg": "failover: takeover minus theory, both daemons",
    "scale-cpu.svg": "group CPU against instance count, both daemons",
    "memory.svg": "PSS per process",
    "startup.svg": "start-up time",
}


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _ratio(value: float | None) -> str:
    return "" if value is None else f", ratio {value:.2f}"


def bus(f: dict[str, Any]) -> str:
    p, b = f["paced"], f["burst"]
    return (
        f"at {f['rate']:.0f}/s: p50 {p['p50_ms']:.3f} ms, **p99 {p['p99_ms']:.3f} ms** (target "
        f"{f['target_p99_ms']:g} ms), lost {p['sent'] - p['received']:.0f}; burst "
        f"{b['send_rate'] / 1000:.0f}k sent / {b['recv_rate'] / 1000:.0f}k received msg/s"
    )


def config_parse(f: dict[str, Any]) -> str:
    return (
        f"{f['instances']} instances: `core.load()` {_ms(f['ours_s'])}, `keepalived -t` "
        f"{_ms(f['keepalived_s'])}{_ratio(f['ratio'])}"
    )


def netd_vips(f: dict[str, Any]) -> str:
    n, k = f["netd"], f.get("keepalived")
    text = f"{f['vips']} VIPs, netd: add {_ms(n['add_s'])}, remove {_ms(n['del_s'])}"
    if k:
        text += f"; keepalived: MASTER → all present {_ms(k['master_to_all_s'])}"
        text += f", TERM → all gone {_ms(k['del_s'])}"
    return text


def failover(f: dict[str, Any]) -> str:
    parts = []
    for s in f["scenarios"]:
        over = [
            f"{(s['daemons'][d]['median_s'] - s['theory_s']) * 1000:+.1f}"
            for d in ("ours", "keepalived")
            if d in s["daemons"]
        ]
        parts.append(f"{s['name']} {' / '.join(over)} ms{_ratio(s['ratio'])}")
    return f"median over theory, ours / keepalived ({f['reps']} rep(s)): " + "; ".join(parts)


def scale(f: dict[str, Any]) -> str:
    d = f["daemons"]
    cpu = ", ".join(
        f"{label} {v['cpu_s']:.2f} s ({100 * v['cpu_share']:.1f} %)" for label, v in d.items()
    )
    spurious = sum(v["spurious"] for v in d.values())
    return (
        f"{f['instances']} instance(s), {f['duration_s']:g} s window: {cpu}"
        f"{_ratio(f['ratio'])}; spurious transitions {spurious}"
    )


def footprint(f: dict[str, Any]) -> str:
    parts = []
    for s in f["summary"]:
        mem = " / ".join(
            f"{s[k]:.1f}" for k in ("ours_pss_mib", "keepalived_pss_mib") if s.get(k) is not None
        )
        start = " / ".join(
            f"{s[k]:.3f}"
            for k in ("ours_startup_s", "keepalived_startup_s")
            if s.get(k) is not None
        )
        distinct = " / ".join(
            f"{s[k]:.1f}"
            for k in ("ours_distinct_mib", "keepalived_distinct_mib")
            if s.get(k) is not None
        )
        if distinct:
            mem += f" (distinct pages {distinct})"
        parts.append(f"{s['instances']} inst.: PSS {mem} MiB, start-up {start} s")
        restart = s.get("ours_restart_s")
        if restart:
            parts.append(
                "restart → heartbeat " + ", ".join(f"{c} {v:.3f}" for c, v in restart.items())
            )
    return "ours / keepalived, " + "; ".join(parts)


def checks(f: dict[str, Any]) -> str:
    verdict = statistics.median(f["verdict_s"]) if f["verdict_s"] else None
    return (
        f"{f['tcp']} TCP + {f['http']} HTTP: {f['checks_per_s']:.0f} checks/s at "
        f"{100 * f['cpu_share']:.0f} % of a core ({f['cpu_us_per_check']} µs/check), drift p99 "
        f"{f['drift_p99_ms']} ms, verdict {'-' if verdict is None else f'{verdict:.2f} s'}, "
        f"curl script {f['curl_ratio']} times dearer"
    )


def lvs(f: dict[str, Any]) -> str:
    c = {name: v["median"] for name, v in f["changes_ms"].items()}
    conn = f["connections_per_s"]
    return (
        f"{f['servers']} servers: build {c['build']:.0f} ms, weight 0 {c['weight 0']:.1f} ms, "
        f"remove {c['remove one']:.1f} ms, add {c['add one']:.1f} ms; connections/s direct "
        f"{conn['direct']:.0f}, through the director {conn['through']:.0f}"
    )


def hostile(f: dict[str, Any]) -> str:
    return f"flood of {f['rate']:.0f}/s: " + "; ".join(
        f"{name} CPU {100 * d['cpu_flood']:.0f} % (idle {100 * d['cpu_idle']:.1f} %), "
        f"VIPs lost {d['vips_lost_samples']}"
        for name, d in f["daemons"].items()
    )


HEADLINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "bus_latency.py": bus,
    "config_parse.py": config_parse,
    "netd_vips.py": netd_vips,
    "failover.py": failover,
    "scale.py": scale,
    "footprint.py": footprint,
    "checks.py": checks,
    "lvs.py": lvs,
    "hostile.py": hostile,
}


def headline(entry: dict[str, Any]) -> str:
    if entry["status"] != "ok":
        first = (entry["error"] or "").splitlines()
        return "**failed**: " + (first[0] if first else "no error recorded")
    figures = entry["figures"]
    try:
        return HEADLINES[entry["script"]](figures)
    except (KeyError, TypeError, ValueError, IndexError, statistics.StatisticsError):
        # A bench whose figures changed shape still shows what it wrote.
        return "figures: " + ", ".join(sorted(figures))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def render(
    doc: dict[str, Any], plots: list[str] | None = None, source: str = "bench/results/latest.json"
) -> str:
    m, git = doc["machine"], doc["git"]
    load = " / ".join(
        f"{m[k][0]:.1f} {k.split('_')[1]}" for k in ("load_before", "load_after") if m.get(k)
    )
    lines = [
        f"## Latest run: `{doc['command']}`",
        "",
        f"{doc['started'][:16].replace('T', ' ')} UTC, {_duration(doc['duration_s'])} "
        f"({doc['mode']} mode); machine `{m.get('hostname', '?')}`: {m['cpus']} CPUs, "
        f"{m.get('memory_gib', '?')} GiB, Linux {m.get('kernel', '?')}, Python {m['python']}, "
        f"{m.get('keepalived') or 'no keepalived'}; load average {load or '?'}; commit "
        f"`{git['commit'][:10]}`{' with uncommitted changes' if git.get('dirty') else ''}. "
        f"Every figure is in {source}; what each bench measures is in its own section below.",
        "",
        "| bench | status | time | figures |",
        "|---|---|---|---|",
    ]
    for entry in doc["benches"]:
        text = headline(entry).replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {entry['name']} | {entry['status']} | {_duration(entry['duration_s'])} | {text} |"
        )
    for name in plots or []:
        lines += ["", f"![{PLOTS.get(name, name)}]({name})"]
    return "\n".join(lines) + "\n"


def replace_section(markdown: str, section: str) -> str:
    """``markdown`` with the generated section replaced, or inserted before the first ``## ``."""
    block = f"{BEGIN}\n{section}{END}\n"
    if BEGIN in markdown and END in markdown:
        head, rest = markdown.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        return head + block + ("\n" + tail if tail else "")
    at = markdown.find("\n## ")
    if at < 0:
        return markdown.rstrip("\n") + "\n\n" + block
    return markdown[: at + 1] + block + "\n" + markdown[at + 1 :]


def update_file(
    path: Path, doc: dict[str, Any], plots: list[str], source: str = "bench/results/latest.json"
) -> None:
    path.write_text(replace_section(path.read_text(), render(doc, plots, source)))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root = Path(__file__).resolve().parent
    ap.add_argument("result", type=Path, nargs="?", default=root / "results" / "latest.json")
    ap.add_argument("--update", type=Path, help="rewrite this Markdown file's generated section")
    args = ap.parse_args()
    doc = load(args.result)
    source = args.result.resolve()
    if source.is_relative_to(root.parent):
        source = source.relative_to(root.parent)
    docs = root.parent / "docs"
    plots = [name for name in PLOTS if (docs / name).exists()]
    if args.update:
        update_file(args.update, doc, plots, str(source))
    else:
        print(render(doc, plots, str(source)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
