"""vrrp_script checks: rise/fall, reloads, cancellation and logging around the script runner."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import structlog

from checkd.plan import ScriptSpec
from checkd.scripts import ScriptCheck
from checkd.verdict import Verdict
from tests.checkd.support import Recorder, pid_alive, until, write_script


def _spec(path: Path | str, **kw: Any) -> ScriptSpec:
    # A test that runs a script every 0.05 s gives it a long timeout: the default (the
    # interval) is shorter than a fork and exec of sh takes on a loaded machine.
    return ScriptSpec(name="chk", command=str(path), **kw)


def _check(spec: ScriptSpec, rec: Recorder, **kw: Any) -> tuple[ScriptCheck, asyncio.Task[None]]:
    check = ScriptCheck(spec, kill_grace=0.2, **kw)
    return check, asyncio.create_task(check.run(rec))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_rise_and_fall_with_a_flapping_script(tmp_path: Path) -> None:
    """The script's outcome follows a file of outcomes, one line per run."""
    plan = tmp_path / "plan"
    plan.write_text("0\n1\n0\n1\n1\n0\n0\n1\n0\n0\n0\n" + "0\n" * 50)
    script = write_script(
        tmp_path, "flap.sh", f'rc=$(head -n1 {plan}); sed -i 1d {plan}; exit "${{rc:-0}}"'
    )
    spec = _spec(script, interval=0.05, rise=3, fall=2, timeout=10)
    rec = Recorder()

    async def scenario() -> None:
        _, task = _check(spec, rec)
        try:
            await until(lambda: len(rec.verdicts) >= 11, 10, "eleven runs")
        finally:
            await _cancel(task)

    asyncio.run(scenario())
    rcs = [v.rc for v in rec.verdicts[:11]]
    assert rcs == [0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0]
    # start: one success -> OK; single failures keep it OK (fall 2); two in a row -> KO;
    # then it needs three successes in a row (rise 3) to come back.
    assert rec.oks()[:11] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    ]


def test_init_fail_publishes_failed_before_the_first_run(tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.sh", "exit 0")
    rec = Recorder()

    async def scenario() -> None:
        _, task = _check(_spec(script, interval=0.05, rise=2, init_fail=True, timeout=10), rec)
        try:
            await until(lambda: len(rec.verdicts) >= 3, 5, "three verdicts")
        finally:
            await _cancel(task)

    asyncio.run(scenario())
    first, second, third = rec.verdicts[:3]
    assert (first.ok, first.reason, first.rc) == (False, "init_fail", None)
    assert (second.ok, third.ok) == (False, True)  # rise 2 successes


def test_previous_verdict_survives_a_restart(tmp_path: Path) -> None:
    script = write_script(tmp_path, "bad.sh", "exit 1")
    previous = Verdict("chk", "script", True, "exited with status 0", 0, rc=0)
    rec = Recorder()

    async def scenario() -> None:
        _, task = _check(_spec(script, interval=0.05, fall=2, timeout=10), rec, previous=previous)
        try:
            await until(lambda: len(rec.verdicts) >= 3, 5, "three verdicts")
        finally:
            await _cancel(task)

    asyncio.run(scenario())
    # Carried over as OK, first failure absorbed by fall 2, second one flips it.
    assert rec.oks()[:3] == [True, True, False]


def test_cancel_kills_the_running_script(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = write_script(tmp_path, "slow.sh", f"echo $$ > {pidfile}; exec sleep 1000")
    rec = Recorder()

    async def scenario() -> None:
        _, task = _check(_spec(script, interval=100), rec)
        await until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "script start")
        pid = int(pidfile.read_text())
        assert pid_alive(pid)
        await _cancel(task)
        assert not pid_alive(pid)

    asyncio.run(scenario())
    assert rec.verdicts == []  # cancelled mid-run: no verdict invented


def test_hanging_script_does_not_block_others(tmp_path: Path) -> None:
    hang = write_script(tmp_path, "hang.sh", "sleep 1000")
    ok = write_script(tmp_path, "ok.sh", "exit 0")
    slow_rec, fast_rec = Recorder(), Recorder()

    async def scenario() -> None:
        _, slow = _check(_spec(hang, interval=0.05, timeout=60), slow_rec)
        _, fast = _check(ScriptSpec("fast", str(ok), interval=0.02), fast_rec)
        try:
            await until(lambda: len(fast_rec.verdicts) >= 5, 10, "five fast runs")
            assert slow_rec.verdicts == []  # still inside its first run
        finally:
            await _cancel(slow)
            await _cancel(fast)

    asyncio.run(scenario())
    assert slow_rec.verdicts == []  # and cancelled mid-run: no verdict invented


def test_refused_script_is_published_as_disabled(tmp_path: Path) -> None:
    script = write_script(tmp_path, "chk.sh", "exit 0", mode=0o757)
    rec = Recorder()

    async def scenario() -> None:
        await ScriptCheck(_spec(script, script_security=True, user="root")).run(rec)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    (verdict,) = rec.verdicts
    assert verdict.disabled and not verdict.ok and "world-writable" in verdict.reason
    assert verdict.body()["disabled"] is True
    assert any(e["event"] == "checkd.script.disabled" for e in logs)


def test_result_is_logged_as_structured_event(tmp_path: Path) -> None:
    script = write_script(tmp_path, "bad.sh", "echo broken >&2; exit 2")
    rec = Recorder()

    async def scenario() -> None:
        _, task = _check(_spec(script, interval=0.05, timeout=10), rec)
        try:
            await until(lambda: rec.verdicts, 5, "a verdict")
        finally:
            await _cancel(task)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    result = next(e for e in logs if e["event"] == "checkd.script.result")
    assert (result["name"], result["rc"], result["output"]) == ("chk", 2, "broken\n")
    assert isinstance(result["duration"], float)
    start = next(e for e in logs if e["event"] == "checkd.script.start")
    assert start["uid"] == os.getuid() and start["path"] == str(script)


def test_a_timeout_is_logged_under_checkd(tmp_path: Path) -> None:
    script = write_script(tmp_path, "hang.sh", "exec sleep 1000")
    rec = Recorder()

    async def scenario() -> None:
        _, task = _check(_spec(script, interval=10, timeout=0.1), rec)
        try:
            await until(lambda: rec.verdicts, 5, "a verdict")
        finally:
            await _cancel(task)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    assert rec.verdicts[0].reason == "timed out"
    timeout = next(e for e in logs if e["event"] == "checkd.script.timeout")
    assert (timeout["name"], timeout["timeout"]) == ("chk", 0.1)
