"""The keyword tables as data: for generated docs and for `check --format json` tooling."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.keywords import SCHEMAS
from core.problems import Problem
from core.schema import Raw


def keyword_reference() -> list[dict[str, Any]]:
    """One row per (block, keyword): whether we act on it, and what replaces a deprecated one."""
    rows: list[dict[str, Any]] = []
    for block, schema in SCHEMAS.items():
        for kw in schema.kws:
            rows.append(
                {
                    "block": block,
                    "keyword": kw.name,
                    "implemented": kw.implemented,
                    "ours": kw.ours,
                    "alias": not kw.canonical,
                    "deprecated": kw.deprecated,
                    "value": type(kw.vtype).__name__,
                }
            )
        for raw in schema.raws.values():
            assert isinstance(raw, Raw)
            rows.append(
                {
                    "block": block,
                    "keyword": raw.name,
                    "implemented": raw.implemented,
                    "ours": False,
                    "alias": False,
                    "deprecated": raw.deprecated,
                    "value": "raw",
                }
            )
    return rows


def problem_to_dict(p: Problem) -> dict[str, Any]:
    """A plain dict (JSON/msgpack-able) for machine-readable reports."""
    return dataclasses.asdict(p)
