"""Interop tests need Debian's keepalived; without it they skip instead of failing."""

from __future__ import annotations

import pytest

from tests.interop.peers import KEEPALIVED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if KEEPALIVED.exists():
        return
    skip = pytest.mark.skip(reason=f"{KEEPALIVED} is not installed (apt-get install keepalived)")
    for item in items:
        if item.get_closest_marker("interop") is not None:
            item.add_marker(skip)
