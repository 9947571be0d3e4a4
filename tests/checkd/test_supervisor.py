"""Reconciling the running checks with each new plan (reloads)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from checkd.files import FileCheck
from checkd.plan import FileSpec, Plan, ScriptSpec
from checkd.scripts import ScriptCheck
from checkd.supervisor import CheckSet, Timing
from tests.checkd.support import Published, pid_alive, until, write_script

FAST = Timing(kill_grace=0.2, file_poll=0.02, process_poll=0.02)


def _set(pub: Published) -> CheckSet:
    return CheckSet(pub.retain, pub.forget, FAST)


def test_reload_keeps_unchanged_checks_and_their_state(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    chk = ScriptSpec(
        "chk", f"{write_script(tmp_path, 'f.sh', f'test -e {flag}')}", interval=0.05, rise=3
    )
    tf = FileSpec("tf", str(tmp_path / "tf"))
    pub = Published()

    async def scenario() -> None:
        checks = _set(pub)
        try:
            await checks.apply(Plan((chk,)))
            await until(lambda: pub.last("health.chk"), 3, "first chk verdict")
            first = checks._running["chk"].task
            # Same script, one more check: chk keeps running, untouched.
            await checks.apply(Plan((chk, tf)))
            assert checks._running["chk"].task is first and not first.done()
            await until(lambda: pub.last("health.tf"), 3, "tf verdict")
            assert checks.names == ["chk", "tf"]
            # Changed interval: restarted, but seeded with the OK verdict instead of rise=3
            # fresh successes (a reload must not reset a passing script to failed).
            flag.unlink()
            changed = ScriptSpec(chk.name, chk.command, interval=0.06, rise=3, fall=3)
            n_before = len(pub.of("health.chk"))
            await checks.apply(Plan((changed, tf)))
            assert checks._running["chk"].task is not first and first.done()
            await until(lambda: len(pub.of("health.chk")) > n_before, 3, "a verdict after reload")
            assert (pub.last("health.chk") or {}).get("ok") is True
            await until(
                lambda: (pub.last("health.chk") or {}).get("ok") is False, 3, "fall 3 failures"
            )
            # Removed: stopped and its topic forgotten.
            await checks.apply(Plan((tf,)))
            assert pub.forgotten == ["health.chk"] and checks.names == ["tf"]
        finally:
            await checks.stop_all()

    asyncio.run(scenario())


def test_only_changed_verdicts_are_published(tmp_path: Path) -> None:
    ok = write_script(tmp_path, "ok.sh", "exit 0")
    pub = Published()

    async def scenario() -> None:
        checks = _set(pub)
        try:
            await checks.apply(Plan((ScriptSpec("chk", str(ok), interval=0.02),)))
            await until(lambda: (v := checks.verdict("chk")) is not None and v.rc == 0, 3, "a run")
            runs = checks._running["chk"].check
            assert isinstance(runs, ScriptCheck)
            await until(lambda: runs.runs >= 10, 5, "ten runs")
        finally:
            await checks.stop_all()

    asyncio.run(scenario())
    bodies = pub.of("health.chk")
    assert len(bodies) == 1  # ten identical results, one publish (the bus republishes)
    assert bodies[0] == {
        "name": "chk",
        "ok": True,
        "kind": "script",
        "reason": "exited with status 0",
        "weight": 0,
        "reverse": False,
        "rc": 0,
        "ttl": 3.0,  # re-sent every second (not faster), trusted for three re-sends
    }
    assert pub.repeat["health.chk"] == 1.0


def test_each_verdict_is_re_sent_at_its_checks_pace_and_says_how_long_it_holds(
    tmp_path: Path,
) -> None:
    """vrrpd counts a verdict as failed once its ``ttl`` has passed without a re-send: the
    publisher re-sends each one within a third of that (docs/bus.md, "Staleness")."""
    ok = write_script(tmp_path, "ok.sh", "exit 0")
    pub = Published()
    specs = (
        ScriptSpec("fast", str(ok), interval=1),
        ScriptSpec("mid", str(ok), interval=3),
        ScriptSpec("slow", str(ok), interval=30),
        FileSpec("tf", str(tmp_path / "tf")),
    )

    async def scenario() -> None:
        checks = _set(pub)
        try:
            await checks.apply(Plan(specs))
            await until(lambda: all(pub.last(f"health.{s.name}") for s in specs), 5, "verdicts")
        finally:
            await checks.stop_all()

    asyncio.run(scenario())
    paced = {s.name: (pub.repeat[f"health.{s.name}"], pub.last(f"health.{s.name}")) for s in specs}
    assert {name: (every, (body or {})["ttl"]) for name, (every, body) in paced.items()} == {
        "fast": (1.0, 3.0),
        "mid": (3.0, 9.0),
        "slow": (5.0, 15.0),  # checkd's own pace, not the script's: a dead checkd shows in 15 s
        "tf": (5.0, 15.0),
    }


def test_stop_all_kills_running_scripts(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    slow = write_script(tmp_path, "slow.sh", f"echo $$ > {pidfile}; exec sleep 1000")
    pub = Published()

    async def scenario() -> None:
        checks = _set(pub)
        await checks.apply(Plan((ScriptSpec("slow", str(slow), interval=100),)))
        await until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "start")
        pid = int(pidfile.read_text())
        await checks.stop_all()
        assert not pid_alive(pid) and checks.names == []

    asyncio.run(scenario())


def test_a_crashing_check_is_reported_and_isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = Published()
    broken = FileSpec("tf", str(tmp_path / "tf"), init_value=1)
    ok = write_script(tmp_path, "ok.sh", "exit 0")

    async def boom(self: FileCheck, emit: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(FileCheck, "run", boom)

    async def scenario() -> None:
        checks = _set(pub)
        try:
            await checks.apply(Plan((broken, ScriptSpec("chk", str(ok), interval=0.02))))
            await until(lambda: pub.last("health.tf"), 3, "crash verdict")
            await until(lambda: pub.last("health.chk"), 3, "other check still runs")
        finally:
            await checks.stop_all()

    asyncio.run(scenario())
    body = pub.last("health.tf")
    assert body is not None and body["ok"] is False and "boom" in body["reason"]
    assert body["disabled"] is True


def test_snapshot_lists_checks_with_their_last_verdict(tmp_path: Path) -> None:
    ok = write_script(tmp_path, "ok.sh", "exit 0")
    pub = Published()

    async def scenario() -> list[dict[str, object]]:
        checks = _set(pub)
        try:
            await checks.apply(Plan((ScriptSpec("chk", str(ok), interval=0.02),)))
            await until(lambda: pub.last("health.chk"), 3, "a verdict")
            return checks.snapshot()
        finally:
            await checks.stop_all()

    (entry,) = asyncio.run(scenario())
    assert entry["name"] == "chk" and entry["kind"] == "script"
    assert entry["verdict"] == {
        k: v for k, v in (pub.last("health.chk") or {}).items() if k != "ttl"
    }
    assert isinstance(entry["runs"], int) and entry["runs"] >= 1
