"""A restarted checkd starts its scripts from the verdicts vrrpd holds (checkd.resume): what it
reads from ``vrrp.state``, and how the first plan, and only it, starts from that."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bus import messages
from checkd.files import FileCheck
from checkd.plan import FileSpec, Plan, ScriptSpec
from checkd.resume import REASON, held_by_vrrpd, seed
from checkd.scripts import ScriptCheck
from checkd.supervisor import CheckSet, Timing
from tests.checkd.support import Published, until, write_script


def _report(instance: str, *trackers: dict[str, Any]) -> messages.StateReport:
    body = {"instance": instance, "state": "MASTER", "priority": 100, "trackers": list(trackers)}
    return messages.StateReport.decode(f"vrrp.state.{instance}", body)


def _share(tracker: str, status: object, **more: Any) -> dict[str, Any]:
    return {"tracker": tracker, "weight": -20, "reverse": False, "status": status, **more}


def test_only_statuses_vrrpd_heard_from_checkd_are_taken() -> None:
    held = held_by_vrrpd(
        [
            _report(
                "VI_1",
                _share("track_script up", True),
                _share("track_script down", False),
                _share("track_script stale", False, assumed="stale"),
                _share("track_script never", False, assumed="never reported"),
                _share("track_script silent", None),
                _share("track_interface eth0", True),
                _share("track_file tf", 3),
                _share("track_script split", True),
            ),
            _report("VI_2", _share("track_script up", True), _share("track_script split", False)),
        ]
    )
    # two instances agreeing is one status; disagreeing (caught mid-change) is none; a
    # track_file's status is the file's value
    assert held == {"up": True, "down": False, "tf": 3}


def test_a_script_vrrpd_holds_resumes_in_full_and_init_fail_applies_otherwise() -> None:
    spec = ScriptSpec("chk", "/bin/true", rise=3, fall=3, init_fail=True, weight=-20)
    resumed = ScriptCheck(spec, previous=seed(spec, {"chk": True}))
    assert resumed.last is not None
    assert (resumed.last.ok, resumed.last.reason, resumed.last.weight) == (True, REASON, -20)
    # counted as passing in full: fall 3 failures, not one, make it fail
    assert [resumed.state.record(False) for _ in range(3)] == [False, False, True]

    failing = ScriptCheck(spec, previous=seed(spec, {"chk": False}))
    assert failing.last is not None and failing.last.ok is False
    assert [failing.state.record(True) for _ in range(3)] == [False, False, True]

    fresh = ScriptCheck(spec, previous=seed(spec, {"other": True}))
    assert fresh.last is not None and (fresh.last.ok, fresh.last.reason) == (False, "init_fail")
    assert seed(FileSpec("chk", "/nonexistent"), {"chk": True}) is None


def test_a_track_file_vrrpd_holds_is_not_initialised_again(tmp_path: Path) -> None:
    """``init_file 0 overwrite`` at a restart of checkd alone would clobber the value an
    operator wrote since the node started (the value vrrpd holds says checkd ran before)."""
    path = tmp_path / "weight"
    path.write_text("7\n")
    spec = FileSpec("tf", str(path), weight=2, init_value=0, init_overwrite=True)
    resumed = FileCheck(spec, previous=seed(spec, {"tf": 7}))
    assert not resumed.initialise and resumed.value == 7
    assert FileCheck(spec, previous=seed(spec, {"other": 7})).initialise
    assert seed(spec, {"tf": True}) is None, "a script's status is not a file's value"


def test_only_the_first_plan_starts_from_what_vrrpd_holds(tmp_path: Path) -> None:
    # Each first run hangs: what is published is what the check starts from.
    hang = str(write_script(tmp_path, "hang.sh", "exec sleep 60"))
    one = ScriptSpec("one", hang, interval=1, timeout=60, init_fail=True)
    two = ScriptSpec("two", hang, interval=1, timeout=60, init_fail=True)
    pub = Published()

    async def scenario() -> None:
        checks = CheckSet(pub.retain, pub.forget, Timing(kill_grace=0.2))
        try:
            checks.resume({"one": True, "two": True})
            await checks.apply(Plan((one,)))
            await until(lambda: pub.last("health.one"), 3, "one's verdict")
            # a reload adding a script vrrpd held a verdict for: it starts as configured
            await checks.apply(Plan((one, two)))
            await until(lambda: pub.last("health.two"), 3, "two's verdict")
        finally:
            await checks.stop_all()

    asyncio.run(scenario())
    assert [(b["ok"], b["reason"]) for b in pub.of("health.one")] == [(True, REASON)]
    assert [(b["ok"], b["reason"]) for b in pub.of("health.two")] == [(False, "init_fail")]
