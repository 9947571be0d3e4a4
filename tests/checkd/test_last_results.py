"""checkd.pool_topics.LastResults: every checker's latest attempt, read back as ``LastResult``,
stored without making anything new for the garbage collector's young passes to walk (one
result per check, 12,000 a second in bench/checks.py)."""

from __future__ import annotations

import gc

from checkd.pool_topics import LastResult, LastResults


def test_set_read_and_discard() -> None:
    last = LastResults()
    last.set("a", True, "connected", 10.5)
    last.set("b", False, "exit 2", 11.0, rc=2)
    last.set("a", False, "refused", 12.0)
    assert dict(last) == {
        "a": LastResult(False, "refused", 12.0, None),
        "b": LastResult(False, "exit 2", 11.0, 2),
    }
    assert last.ok_of("a") is False and last.ok_of("missing") is None
    last.discard("a")
    last.discard("missing")
    assert list(last) == ["b"] and len(last) == 1 and "a" not in last


def test_a_stored_result_is_nothing_the_young_collections_walk() -> None:
    last = LastResults()
    ids = [f"checker {i}" for i in range(2_000)]
    for cid in ids:
        last.set(cid, True, "first", 1.0)
    reasons = [f"connected {i}" for i in range(2_000)]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        before = len(gc.get_objects(0))
        for cid, reason in zip(ids, reasons, strict=True):
            last.set(cid, True, reason, 2.0, None)
        grown = len(gc.get_objects(0)) - before
    finally:
        if was_enabled:
            gc.enable()
    # a tuple per result left 2,000 tracked objects here
    assert grown < 10, f"{grown} new objects for the collector per 2,000 results"
