"""MISC_CHECK: exit codes as pool events (misc_dynamic weights), real scripts through the runner,
the process group killed at misc_timeout, script security refusing an unsafe script."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

import scripts
from checkd.attempts import ScriptContext, arm
from checkd.checkers import Pinger
from checkd.checkplan import build_plan
from checkd.misc_check import misc_outcome, misc_spec, run_misc
from checkd.pool_messages import CheckerWeight, ProbeResult
from core.model import Checker, Config, GlobalDefs, RealServer, Script, UserGroup, VirtualServer
from tests.checkd.support import open_dir, write_script

CID = "[192.0.2.1]:tcp:80 [198.51.100.1]:tcp:80 MISC_CHECK#0"


@pytest.mark.parametrize(
    ("rc", "dynamic", "ok", "events"),
    [
        (0, False, True, [ProbeResult(CID, True, "=> MISC CHECK succeeded on service <=")]),
        (1, False, False, [ProbeResult(CID, False, "=> MISC CHECK failed on service <=")]),
        (7, False, False, [ProbeResult(CID, False, "=> MISC CHECK failed on service <=")]),
        (
            0,
            True,
            True,
            [
                CheckerWeight(CID, 0),
                ProbeResult(CID, True, "=> MISC CHECK succeeded on service <="),
            ],
        ),
        (
            12,
            True,
            True,
            [
                CheckerWeight(CID, 10, absolute=True),
                ProbeResult(CID, True, "=> MISC CHECK succeeded on service <="),
            ],
        ),
        (1, True, False, [ProbeResult(CID, False, "=> MISC CHECK failed on service <=")]),
    ],
)
def test_exit_status_to_events(rc: int, dynamic: bool, ok: bool, events: list[object]) -> None:
    out = misc_outcome(CID, scripts.RunResult(rc, 0.1), dynamic=dynamic)
    assert out.ok is ok
    assert list(out.events) == events


def test_timeout_is_a_failure_with_keepalived_mail() -> None:
    out = misc_outcome(CID, scripts.RunResult(-15, 1.0, timed_out=True), dynamic=True)
    assert out.events == (ProbeResult(CID, False, "=> MISC CHECK timed out on service <="),)
    assert out.reason == "timed out"


def test_user_choice_checker_then_script_then_global() -> None:
    c = Checker(kind="MISC_CHECK", misc_path=Script("/bin/true", user="nobody"))
    assert misc_spec(c, "x", script_user=("daemon", None), script_security=True).user == "nobody"
    c2 = Checker(
        kind="MISC_CHECK", misc_path=Script("/bin/true", user="nobody"), user=UserGroup("bin")
    )
    spec = misc_spec(c2, "x", script_user=None, script_security=False)
    assert (spec.user, spec.user_source) == ("bin", "script")
    c3 = Checker(kind="MISC_CHECK", misc_path=Script("/bin/true"))
    spec = misc_spec(c3, "x", script_user=("daemon", None), script_security=False)
    assert (spec.user, spec.user_source) == ("daemon", "script_user")


def test_dynamic_exit_code_from_a_real_script(tmp_path: Path) -> None:
    script = write_script(tmp_path, "w.sh", "exit 7")
    c = Checker(kind="MISC_CHECK", misc_path=Script(str(script)), misc_dynamic=True)
    prepared = scripts.prepare(misc_spec(c, CID, script_user=None, script_security=False))
    out = asyncio.run(run_misc(prepared, CID, 5, dynamic=True))
    assert out.events[0] == CheckerWeight(CID, 5, absolute=True)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # The script leaves a grandchild in its group; the timeout must take it too.
    script = write_script(tmp_path, "hang.sh", f"sleep 60 & echo $! > {pidfile}\nwait")
    c = Checker(kind="MISC_CHECK", misc_path=Script(str(script)))
    prepared = scripts.prepare(misc_spec(c, CID, script_user=None, script_security=False))
    started = time.monotonic()
    out = asyncio.run(run_misc(prepared, CID, 0.5, dynamic=False, kill_grace=0.5))
    assert out.reason == "timed out" and time.monotonic() - started < 3
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _misc_config(command: str, g: GlobalDefs) -> Config:
    checker = Checker(kind="MISC_CHECK", misc_path=Script(command), misc_timeout=2)
    rs = RealServer(ip="198.51.100.1", port=80, checkers=(checker,))
    vs = VirtualServer(
        name="192.0.2.1 80", ip="192.0.2.1", port=80, protocol="TCP", real_servers=(rs,)
    )
    return Config(global_defs=g, virtual_servers=(vs,))


def test_script_security_refuses_an_unsafe_script_and_says_why() -> None:
    with open_dir() as d:
        script = write_script(d, "chk.sh", "exit 0", mode=0o777)  # world-writable
        cfg = _misc_config(
            str(script),
            GlobalDefs(enable_script_security=True, script_user=UserGroup("root")),
        )
        assert ScriptContext.of(cfg).script_security
        armed = arm(cfg, build_plan(cfg, hostname="lb"), Pinger())
        (one,) = armed.values()
        result = asyncio.run(one.attempt())
    assert not result.ok
    assert result.reason.startswith("disabled: refusing to run")
