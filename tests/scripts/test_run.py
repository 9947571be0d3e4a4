"""One script run: real processes, real timeouts, real process groups."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import structlog

from scripts import RunResult, ScriptSpec, prepare, run_once
from tests.checkd.support import open_dir, pid_alive, until, write_script


def _spec(path: Path | str, **kw: Any) -> ScriptSpec:
    return ScriptSpec(name="chk", command=str(path), **kw)


def _once(
    spec: ScriptSpec, timeout: float = 5.0, *, kill_grace: float = 0.5, component: str = "test"
) -> RunResult:
    return asyncio.run(run_once(prepare(spec), timeout, component=component, kill_grace=kill_grace))


def test_exit_codes_and_output(tmp_path: Path) -> None:
    ok = _once(_spec(write_script(tmp_path, "ok.sh", "exit 0")))
    assert ok.success and ok.rc == 0
    bad = _once(_spec(write_script(tmp_path, "bad.sh", "echo out; echo err >&2; exit 3")))
    assert (bad.success, bad.rc, bad.describe()) == (False, 3, "exited with status 3")
    assert bad.output == b"out\nerr\n"
    killed = _once(_spec(write_script(tmp_path, "sig.sh", "kill -USR1 $$")))
    assert killed.rc == -10 and not killed.success and "SIGUSR1" in killed.describe()


def test_arguments_are_split_like_keepalived_not_by_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "argv"
    script = write_script(tmp_path, "args.sh", f'printf "%s|" "$@" > {out}')
    res = _once(_spec(f"{script} one 'two words' \"$HOME\" a\\ b"))
    assert res.success
    # No shell: $HOME is not expanded, quotes group words, backslash escapes the space.
    assert out.read_text() == "one|two words|$HOME|a b|"


def test_environment_stdin_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "env"
    monkeypatch.setenv("LD_PRELOAD", "/nonexistent.so")
    monkeypatch.setenv("PK_KEEP", "yes")
    script = write_script(
        tmp_path,
        "env.sh",
        f'{{ echo "preload=${{LD_PRELOAD-unset}} keep=$PK_KEEP cwd=$(pwd)"; '
        f"cat; echo pgid=$(ps -o pgid= -p $$ | tr -d ' ') pid=$$; }} > {out}",
    )
    assert _once(_spec(script)).success
    text = out.read_text()
    assert "preload=unset keep=yes cwd=/" in text
    pgid, pid = (part.split("=")[1] for part in text.split()[-2:])
    assert pgid == pid  # its own process group leader


def test_timeout_kills_the_whole_group_even_when_term_is_ignored(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = write_script(
        tmp_path,
        "hang.sh",
        # A child that ignores SIGTERM, and the script itself sleeping forever.
        f"(trap '' TERM; sleep 1000) & echo $! > {pids}; sleep 1000",
    )
    with structlog.testing.capture_logs() as logs:
        res = _once(_spec(script), 0.3, kill_grace=0.3, component="vrrpd")
    assert res.timed_out and not res.success and res.describe() == "timed out"
    assert 0.3 <= res.duration < 3
    child = int(pids.read_text())

    async def gone() -> None:
        await until(lambda: not pid_alive(child), 3, "the TERM-ignoring child to be killed")

    asyncio.run(gone())
    events = [e["event"] for e in logs]
    # Logged under the caller's name: a script vrrpd started is not checkd's.
    assert "vrrpd.script.timeout" in events
    assert not [e for e in events if e.startswith("checkd.")]


def test_run_as_unprivileged_user() -> None:
    with open_dir() as d:
        script = write_script(d, "who.sh", '[ "$(id -u)" = 65534 ] && [ "$(id -G)" = 65534 ]')
        assert _once(_spec(script, user="nobody")).success
        assert not _once(_spec(script)).success  # and as root it is root


def test_a_script_that_ignores_sigterm_is_killed_and_logged_under_the_caller(
    tmp_path: Path,
) -> None:
    script = write_script(tmp_path, "stubborn.sh", "trap '' TERM; while :; do sleep 0.05; done")
    with structlog.testing.capture_logs() as logs:
        res = _once(_spec(script), 0.2, kill_grace=0.2, component="watchdog")
    assert res.timed_out and res.rc == -9
    kill = next(e for e in logs if e["event"] == "watchdog.script.kill")
    assert (kill["signal"], kill["after"]) == ("SIGKILL", 0.2)
    assert not [e for e in logs if e["event"].startswith("checkd.")]


def test_the_caller_can_log_the_timeout_itself(tmp_path: Path) -> None:
    script = write_script(tmp_path, "hang.sh", "exec sleep 1000")

    async def run() -> RunResult:
        prepared = prepare(_spec(script))
        return await run_once(prepared, 0.1, component="watchdog", log_timeout=False)

    with structlog.testing.capture_logs() as logs:
        res = asyncio.run(run())
    assert res.timed_out and res.rc == -15
    assert [e["event"] for e in logs] == []
