"""pytest plugin exposing the network-namespace lab (``pytest_plugins = ["tests.lab_fixtures"]``).

Fixtures:

* ``lab`` -- a two-node :class:`tests.lab.Lab`, links up, torn down after the test;
* ``lab3`` -- the same with three nodes;
* ``make_lab`` -- a factory ``make_lab(nodes=N, **kwargs)``; every lab it built is closed
  after the test, even when the test fails.

Tests using them should be marked ``@pytest.mark.netns``. They skip (rather than fail) when
not running as root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.lab import Lab

__all__ = ["lab", "lab3", "make_lab"]


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("network-namespace tests need root")


@pytest.fixture
def make_lab() -> Iterator[Callable[..., Lab]]:
    """Factory fixture: ``make_lab(nodes=3)`` builds a lab that is removed after the test."""
    _require_root()
    built: list[Lab] = []

    def factory(nodes: int = 2, **kwargs: Any) -> Lab:
        lab = Lab(nodes=nodes, **kwargs)
        built.append(lab)
        lab.wait_ready()
        return lab

    try:
        yield factory
    finally:
        for lab in built:
            lab.close()


@pytest.fixture
def lab(make_lab: Callable[..., Lab]) -> Lab:
    """Two nodes on one segment (192.0.2.10/.11, 2001:db8::10/::11 on eth0)."""
    return make_lab(2)


@pytest.fixture
def lab3(make_lab: Callable[..., Lab]) -> Lab:
    """Three nodes on one segment."""
    return make_lab(3)
