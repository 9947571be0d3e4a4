"""Fixtures the netd kernel tests share: a one-node lab and a kernel adapter inside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netd.kernel import KernelAdapter
from tests.lab import Lab, Node


@pytest.fixture
def node(make_lab: Callable[..., Lab]) -> Node:
    return make_lab(1).nodes[0]


@pytest.fixture
def ka(node: Node, tmp_path: Path) -> Iterator[KernelAdapter]:
    with node.inside():
        adapter = KernelAdapter(state_dir=tmp_path)
    try:
        yield adapter
    finally:
        adapter.close()
