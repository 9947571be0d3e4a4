"""The watchdog's preload imports with the collector off, and leaves it on (watchdog.spawn)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from watchdog.spawn import Launcher


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process's objects back under the collector


def test_preload_imports_without_collections_and_leaves_the_collector_on(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(
        "watchdog.spawn.importlib.import_module", lambda name: seen.append(gc.isenabled())
    )
    Launcher(fork=True).preload(("bus", "vrrpd"))
    assert seen == [False, False]
    assert gc.isenabled() and gc.get_freeze_count() > 0
