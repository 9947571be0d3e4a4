"""The benchmark result file: one JSON document for a whole ``make bench`` run.

``bench/run_all.py`` writes it (``bench/results/latest.json`` for a full run,
``bench/results/quick.json`` for ``--quick``); ``bench/charts.py`` and ``bench/summary.py`` read
it. Every bench script writes its own figures with ``--json FILE`` (``write_figures``); the
runner wraps each in an entry that says how the bench was run and whether it succeeded::

    {
      "schema": 1,
      "mode": "full" | "quick",
      "command": "make bench",
      "started": "2026-12-05T18:40:00+00:00", "finished": "...", "duration_s": 812.4,
      "machine": {"hostname": ..., "cpus": 2, "memory_gib": 23.5, "python": "3.11.7",
                  "kernel": ..., "load_before": [..3 floats..], "load_after": [...],
                  "keepalived": "Keepalived v2.2.7 ..." | null},
      "git": {"commit": "abc123...", "dirty": false},
      "benches": [
        {"name": "failover", "script": "failover.py", "argv": [...], "status": "ok" | "failed",
         "duration_s": 301.2, "error": null | "the tail of its output",
         "figures": {...what the script wrote...} | null}
      ]
    }

A failed bench keeps its entry (``status`` "failed", ``error`` set, ``figures`` null), so one
broken bench never hides the others' figures.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

SCHEMA = 1
MODES = ("full", "quick")
STATUSES = ("ok", "failed")


class ResultFileError(ValueError):
    """The result file does not have the shape this module documents; the message names where."""


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has neither), tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_figures(path: Path | None, figures: dict[str, Any]) -> None:
    """What a bench script does with ``--json FILE``: its figures as one JSON object."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite(figures), indent=2, allow_nan=False, default=str) + "\n")


def _need(doc: dict[str, Any], key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise ResultFileError(f"{where}: missing {key!r}")
    value = doc[key]
    # bool is an int to isinstance; a count or a time that is True is a bug, not a number.
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ResultFileError(f"{where}.{key}: {value!r} is not {kinds}")
    if not isinstance(value, kinds):
        raise ResultFileError(f"{where}.{key}: {value!r} is not {kinds}")
    return value


def _check_bench(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise ResultFileError(f"{where}: not an object")
    _need(entry, "name", str, where)
    _need(entry, "script", str, where)
    argv = _need(entry, "argv", list, where)
    if not all(isinstance(a, str) for a in argv):
        raise ResultFileError(f"{where}.argv: not a list of strings")
    status = _need(entry, "status", str, where)
    if status not in STATUSES:
        raise ResultFileError(f"{where}.status: {status!r} is not one of {STATUSES}")
    if _need(entry, "duration_s", (int, float), where) < 0:
        raise ResultFileError(f"{where}.duration_s: negative")
    error = _need(entry, "error", (str, type(None)), where)
    figures = _need(entry, "figures", (dict, type(None)), where)
    if status == "ok" and (figures is None or error is not None):
        raise ResultFileError(f"{where}: status ok needs figures and no error")
    if status == "failed" and not error:
        raise ResultFileError(f"{where}: status failed needs its error")


def validate(doc: Any) -> None:
    """Raise ResultFileError unless ``doc`` is a result file of this schema."""
    if not isinstance(doc, dict):
        raise ResultFileError("result: not an object")
    if _need(doc, "schema", int, "result") != SCHEMA:
        raise ResultFileError(f"result.schema: {doc['schema']!r}, this code reads {SCHEMA}")
    if _need(doc, "mode", str, "result") not in MODES:
        raise ResultFileError(f"result.mode: {doc['mode']!r} is not one of {MODES}")
    _need(doc, "command", str, "result")
    for key in ("started", "finished"):
        _need(doc, key, str, "result")
    _need(doc, "duration_s", (int, float), "result")
    machine = _need(doc, "machine", dict, "result")
    _need(machine, "cpus", int, "result.machine")
    _need(machine, "python", str, "result.machine")
    git = _need(doc, "git", dict, "result")
    _need(git, "commit", str, "result.git")
    benches = _need(doc, "benches", list, "result")
    names = set()
    for i, entry in enumerate(benches):
        _check_bench(entry, f"result.benches[{i}]")
        if entry["name"] in names:
            raise ResultFileError(f"result.benches[{i}].name: {entry['name']!r} twice")
        names.add(entry["name"])


def save(path: Path, doc: dict[str, Any]) -> None:
    """Validate, then replace ``path`` whole (a reader never sees half a file)."""
    validate(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(finite(doc), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{path}: {exc}") from exc
    validate(doc)
    assert isinstance(doc, dict)
    return doc


def ok_figures(doc: dict[str, Any], script: str) -> list[tuple[str, dict[str, Any]]]:
    """(entry name, figures) of every successful run of ``script``, in run order."""
    return [
        (b["name"], b["figures"])
        for b in doc["benches"]
        if b["script"] == script and b["status"] == "ok"
    ]
