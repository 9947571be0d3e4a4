"""The docs name files newcomers open first (docs/architecture.md's "where to change what"):
every repository path written in backticks in README.md and docs/*.md must exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# Top-level folders of this repository: a backticked word starting with one is a path.
TOP = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
PATH = re.compile(r"`((?:[A-Za-z_]+)/[A-Za-z0-9_./-]*[A-Za-z0-9_])/?`")


def repo_paths(text: str) -> set[str]:
    return {m for m in PATH.findall(text) if m.split("/")[0] in TOP and "..." not in m}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    missing = sorted(p for p in repo_paths(doc.read_text()) if not (ROOT / p).exists())
    assert missing == [], f"{doc.name} names paths that are not in the tree: {missing}"


def test_the_path_pattern_sees_the_table() -> None:
    table = (ROOT / "docs" / "architecture.md").read_text()
    assert {"vrrpd/machine.py", "netd/lvs/planner.py", "tests/vrrpd/fakes.py"} <= repo_paths(table)
