"""Interop tests need their reference peer installed; without it they skip instead of failing.

The peer is Debian's keepalived unless a test module names another binary in ``PEER_BINARY``
(with an install hint in ``PEER_INSTALL``), as the FRR suite does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.peers import KEEPALIVED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("interop") is None:
            continue
        module = getattr(item, "module", None)
        binary: Path = getattr(module, "PEER_BINARY", KEEPALIVED)
        if binary.exists():
            continue
        hint = getattr(module, "PEER_INSTALL", "apt-get install keepalived")
        item.add_marker(pytest.mark.skip(reason=f"{binary} is not installed ({hint})"))
