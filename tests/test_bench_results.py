"""The bench result file and the runner behind ``make bench``, without a kernel: the schema check
refuses what it documents as wrong, the runner records a failing, silent or hung bench as
failed and goes on, and the plots and the docs section come out of a result file."""

from __future__ import annotations

import copy
import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import charts
import result_file
import run_all
import summary
import svg_chart
from result_file import ResultFileError


def entry(name: str, script: str, figures: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "script": script,
        "argv": [f"bench/{script}", "--json", "x.json"],
        "status": "ok" if figures is not None else "failed",
        "duration_s": 1.5,
        "error": None if figures is not None else "exited 1\nTraceback: boom",
        "figures": figures,
    }


FAILOVER = {
    "reps": 1,
    "scenarios": [
        {
            "name": "v3-crash",
            "theory_s": 0.3531,
            "daemons": {
                "ours": {"median_s": 0.3545, "p90_s": 0.355, "runs_s": [0.3545]},
                "keepalived": {"median_s": 0.3538, "p90_s": 0.354, "runs_s": [0.3538]},
            },
            "ratio": 1.002,
        }
    ],
}


def scale(instances: int, ours: float, theirs: float) -> dict[str, Any]:
    def daemon(cpu: float) -> dict[str, Any]:
        return {
            "cpu_s": cpu,
            "cpu_share": cpu / 30,
            "runs_cpu_s": [cpu],
            "spurious": 0,
            "per_node_s": [{"vrrpd": cpu / 2}, {"vrrpd": cpu / 2}],
        }

    return {
        "instances": instances,
        "interval_s": 0.1,
        "duration_s": 30.0,
        "runs": 1,
        "daemons": {"pykeepalived": daemon(ours), "keepalived": daemon(theirs)},
        "ratio": ours / theirs,
    }


FOOTPRINT = {
    "runs": [
        {
            "daemon": "ours",
            "instances": 1,
            "startup_s": 0.45,
            "pss_kib": {"bus": 14000, "vrrpd": 15000, "watchdog": 14000},
            "restart_s": {"vrrpd": 0.04},
        },
        {
            "daemon": "keepalived",
            "instances": 1,
            "startup_s": 0.06,
            "pss_kib": {"parent": 3000, "vrrp": 3800},
            "restart_s": {},
        },
    ],
    "summary": [
        {
            "instances": 1,
            "ours_pss_mib": 42.0,
            "ours_startup_s": 0.45,
            "keepalived_pss_mib": 6.6,
            "keepalived_startup_s": 0.06,
            "ours_restart_s": {"vrrpd": 0.04},
        }
    ],
}


def document(benches: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": result_file.SCHEMA,
        "mode": "full",
        "command": "make bench",
        "started": "2026-12-05T18:40:00+00:00",
        "finished": "2026-12-05T18:55:00+00:00",
        "duration_s": 900.0,
        "machine": {"hostname": "vm", "cpus": 2, "python": "3.11.7", "load_before": [1, 1, 1]},
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "benches": benches,
    }


def full_document() -> dict[str, Any]:
    return document(
        [
            entry("failover", "failover.py", FAILOVER),
            entry("scale-1", "scale.py", scale(1, 0.2, 0.1)),
            entry("scale-255", "scale.py", scale(255, 2.4, 2.7)),
            entry("footprint", "footprint.py", FOOTPRINT),
            entry("checks", "checks.py", None),
        ]
    )


def test_a_complete_result_file_passes_the_schema_check_and_survives_a_round_trip(
    tmp_path: Path,
) -> None:
    doc = full_document()
    doc["benches"][0]["figures"]["extra"] = float("nan")  # JSON has no NaN: stored as null
    result_file.save(tmp_path / "r.json", doc)
    loaded = result_file.load(tmp_path / "r.json")
    assert loaded["benches"][0]["figures"]["extra"] is None
    assert [b["name"] for b in loaded["benches"]] == [b["name"] for b in doc["benches"]]


def _without(key: str) -> Any:
    def change(doc: dict[str, Any]) -> None:
        del doc[key]

    return change


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (_without("machine"), "missing 'machine'"),
        (lambda d: d.update(schema=2), "result.schema"),
        (lambda d: d.update(mode="slow"), "result.mode"),
        (lambda d: d["benches"][0].update(status="maybe"), "benches[0].status"),
        (lambda d: d["benches"][0].update(error="late"), "status ok needs figures and no error"),
        (lambda d: d["benches"][4].update(error=None), "status failed needs its error"),
        (lambda d: d["benches"][1].update(duration_s=True), "benches[1].duration_s"),
        (lambda d: d["benches"][1].update(duration_s=-1), "negative"),
        (lambda d: d["benches"][2].update(name="scale-1"), "'scale-1' twice"),
        (lambda d: d["benches"][3].update(argv=["a", 1]), "argv: not a list of strings"),
        (lambda d: d["git"].pop("commit"), "result.git: missing 'commit'"),
    ],
)
def test_the_schema_check_names_what_is_wrong(change: Any, complaint: str) -> None:
    doc = copy.deepcopy(full_document())
    change(doc)
    with pytest.raises(ResultFileError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        result_file.validate(doc)


def test_a_result_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(ResultFileError, match=r"r\.json"):
        result_file.load(tmp_path / "r.json")


FAKE = textwrap.dedent(
    """
    import argparse, json, sys, time
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--behave", default="ok")
    args = ap.parse_args()
    print("measuring", flush=True)
    if args.behave == "fail":
        print("Traceback: the lab did not come up", file=sys.stderr)
        sys.exit(3)
    if args.behave == "hang":
        while True:
            time.sleep(1)
    if args.behave == "ok":
        with open(args.json, "w") as f:
            json.dump({"quick": args.quick, "value": 1.5}, f)
    """
)


@pytest.fixture
def fake_bench(tmp_path: Path) -> Path:
    script = tmp_path / "fake_bench.py"
    script.write_text(FAKE)
    return script


def bench(script: Path, name: str, behave: str, limit_s: float = 60.0) -> run_all.Bench:
    args = ("--behave", behave)
    return run_all.Bench(name, str(script), full=args, quick=args, limit_s=limit_s)


def test_the_runner_records_each_bench_and_goes_on_after_a_failure(
    fake_bench: Path, tmp_path: Path
) -> None:
    plan = [
        bench(fake_bench, "first", "ok"),
        bench(fake_bench, "broken", "fail"),
        bench(fake_bench, "silent", "silent"),
        bench(fake_bench, "last", "ok"),
    ]
    doc = run_all.run_all(plan, False, 600, sys.executable, "make bench", work=tmp_path)
    result_file.save(tmp_path / "latest.json", doc)  # the schema check passes
    by_name = {b["name"]: b for b in doc["benches"]}
    assert [b["status"] for b in doc["benches"]] == ["ok", "failed", "failed", "ok"]
    assert by_name["first"]["figures"] == {"quick": False, "value": 1.5}
    assert by_name["last"]["figures"] == {"quick": False, "value": 1.5}
    assert by_name["broken"]["error"].startswith("exited 3")
    assert "the lab did not come up" in by_name["broken"]["error"]
    assert by_name["silent"]["error"].startswith("wrote no figures")
    assert "measuring" in (tmp_path / "logs" / "broken.log").read_text()
    assert doc["machine"]["load_after"] and doc["git"]["commit"]


def test_quick_mode_passes_quick_to_every_bench(fake_bench: Path, tmp_path: Path) -> None:
    doc = run_all.run_all(
        [bench(fake_bench, "one", "ok")], True, 600, sys.executable, "make bench-quick", tmp_path
    )
    assert doc["mode"] == "quick"
    assert "--quick" in doc["benches"][0]["argv"]
    assert doc["benches"][0]["figures"]["quick"] is True


def test_a_bench_over_its_time_limit_is_stopped_and_recorded_as_failed(
    fake_bench: Path, tmp_path: Path
) -> None:
    plan = [bench(fake_bench, "hung", "hang", limit_s=1.0), bench(fake_bench, "after", "ok")]
    doc = run_all.run_all(plan, False, 600, sys.executable, "make bench", work=tmp_path)
    hung, after = doc["benches"]
    assert hung["status"] == "failed" and hung["error"].startswith("timed out after 1 s")
    assert after["status"] == "ok"


def test_the_plan_runs_every_bench_and_quick_mode_keeps_two_scale_points() -> None:
    full = {b.name for b in run_all.plan(False, [])}
    assert {"bus_latency", "config_parse", "netd_vips", "failover", "footprint"} <= full
    assert {"checks", "lvs", "scale-1", "scale-64", "scale-255"} <= full
    quick = [b.name for b in run_all.plan(True, [])]
    assert [n for n in quick if n.startswith("scale-")] == ["scale-1", "scale-64"]
    assert [b.name for b in run_all.plan(False, ["lvs"])] == ["lvs"]
    with pytest.raises(SystemExit):
        run_all.plan(False, ["nonesuch"])
    for b in run_all.FULL_PLAN:
        assert (run_all.BENCH / b.script).exists(), b.script


def test_a_run_of_some_benches_never_replaces_the_record_of_a_whole_run() -> None:
    assert run_all.default_name(quick=False, only=False) == "latest.json"
    assert run_all.default_name(quick=False, only=True) == "partial.json"
    assert run_all.default_name(quick=True, only=True) == "quick.json"


def test_charts_draw_the_four_plots_as_well_formed_svg(tmp_path: Path) -> None:
    written = charts.write_all(full_document(), tmp_path)
    assert sorted(p.name for p in written) == sorted(charts.CHARTS)
    for path in written:
        ET.parse(path)  # well-formed XML
    assert "v3-crash" in (tmp_path / "failover.svg").read_text()
    memory = (tmp_path / "memory.svg").read_text()
    assert "vrrpd" in memory and "keepalived" in memory
    cpu = (tmp_path / "scale-cpu.svg").read_text()
    assert cpu.count("<circle") == 4  # two instance counts, two daemons


def test_a_chart_whose_bench_failed_is_not_drawn(tmp_path: Path) -> None:
    doc = document([entry("failover", "failover.py", None)])
    assert charts.write_all(doc, tmp_path) == []


def test_the_docs_section_names_the_run_and_shows_a_failed_bench() -> None:
    text = summary.render(full_document(), ["failover.svg"])
    assert "`make bench`" in text and "2 CPUs" in text and "`0123456789`" in text
    assert "| checks | failed | 2 s | **failed**: exited 1 |" in text
    assert "+1.4 / +0.7 ms" in text
    assert "![" in text and "(failover.svg)" in text


def test_the_docs_section_replaces_itself_and_leaves_the_page_alone() -> None:
    page = "# Benchmarks\n\nIntro.\n\n## Bus\n\nBy hand.\n"
    once = summary.replace_section(page, "## Latest\n\nfirst\n")
    assert once.index("## Latest") < once.index("## Bus") and "By hand." in once
    twice = summary.replace_section(once, "## Latest\n\nsecond\n")
    assert "second" in twice and "first" not in twice
    assert twice.count(summary.BEGIN) == 1 and twice.endswith("## Bus\n\nBy hand.\n")


def test_a_changed_figure_shape_still_lists_its_keys() -> None:
    doc = document([entry("failover", "failover.py", {"something": 1})])
    assert "figures: something" in summary.render(doc)


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 3.7), (-1.2, 0.4), (0.0, 0.0), (5.0, 12345.0)])
def test_ticks_cover_the_range(lo: float, hi: float) -> None:
    ticks = svg_chart.nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) >= 2
    assert ticks == sorted(ticks)


def test_written_figures_are_json_objects(tmp_path: Path) -> None:
    result_file.write_figures(tmp_path / "sub" / "f.json", {"x": (1, float("inf"))})
    assert json.loads((tmp_path / "sub" / "f.json").read_text()) == {"x": [1, None]}
