"""startup_script / shutdown_script: once before the children, once after them, bounded."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import loads
from tests.daemon import JSON_LOGS, daemon_group, short_tmpdir, stop
from tests.lab import Lab, wait_until
from watchdog import scripts

INSTANCE = """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 81
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.181/24
    }
}
"""


def _hooks(global_defs: str) -> dict[str, scripts.Hook]:
    result = loads(f"global_defs {{\n{global_defs}\n}}\n{INSTANCE}", script_env=None)
    assert result.ok, result.problems
    return scripts.hooks(result.config)


def test_hooks_take_keepalived_defaults_and_users() -> None:
    hooks = _hooks(
        "script_user nobody\n"
        "enable_script_security\n"
        'startup_script "/bin/echo up" root\n'
        "shutdown_script /bin/true\n"
        "shutdown_script_timeout 3\n"
    )
    up, down = hooks["startup_script"], hooks["shutdown_script"]
    assert (up.spec.command, up.spec.user, up.spec.user_source, up.timeout) == (
        "/bin/echo up",
        "root",
        "script",
        10.0,
    )
    assert (down.spec.user, down.spec.user_source, down.timeout) == ("nobody", "script_user", 3.0)
    assert up.spec.script_security and down.spec.script_security
    assert _hooks("router_id x") == {}


def test_a_hook_that_ignores_sigterm_is_killed_after_its_timeout() -> None:
    tmp = short_tmpdir()
    try:
        script = tmp / "stubborn.sh"
        script.write_text("#!/bin/sh\ntrap '' TERM\nsleep 30 &\nwait\nsleep 30\n")
        script.chmod(0o755)
        hook = scripts.hooks(
            loads(
                f"global_defs {{\nstartup_script {script}\nstartup_script_timeout 1\n}}\n",
                script_env=None,
            ).config
        )["startup_script"]
        started = time.monotonic()
        result = scripts.run_hook(hook, kill_grace=0.5)
        took = time.monotonic() - started
        assert result is not None and result.timed_out and result.rc == -9
        assert 1.0 <= took < 3.0
    finally:
        shutil.rmtree(tmp)


def _records(log_text: str, event: str) -> list[dict[str, Any]]:
    out = []
    for line in log_text.splitlines():
        if "{" not in line:
            continue
        try:
            rec = json.loads(line[line.index("{") :])
        except ValueError:
            continue
        if rec.get("event") == event:
            out.append(rec)
    return out


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Under /tmp directly: pytest's tmp dirs are 0700, which `nobody` cannot traverse.
    tmp = short_tmpdir()
    tmp.chmod(0o755)
    out = tmp / "out"
    out.mkdir()
    out.chmod(0o777)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.netns
def test_startup_runs_before_any_child_and_shutdown_after_the_last(
    make_lab: Any, scratch: Path
) -> None:
    lab: Lab = make_lab(1)
    out = scratch / "out"
    # Each script records who ran it and how many children its parent (the watchdog) has
    # apart from the script itself: none before the children start, none after they exit.
    probe = scratch / "probe.sh"
    probe.write_text(
        "#!/bin/sh\n"
        'n=$(ps -o pid= --ppid "$PPID" | grep -vcw "$$")\n'
        f'echo "$1 $(id -un) $n" >> {out}/log\n'
    )
    probe.chmod(0o755)
    config = (
        "global_defs {\n"
        "    enable_script_security\n"
        "    script_user root\n"
        f'    startup_script "{probe} startup" nobody\n'
        f'    shutdown_script "{probe} shutdown"\n'
        "}\n" + INSTANCE
    )
    with daemon_group(lab.node(0), config, env=JSON_LOGS) as group:
        group.wait_started()
        lines = (out / "log").read_text().splitlines()
        assert lines == ["startup nobody 0"]
        assert stop(group.proc, timeout=40) == 0
        lines = (out / "log").read_text().splitlines()
        assert lines == ["startup nobody 0", "shutdown root 0"]
        log_text = group.log_text()
    done = _records(log_text, "watchdog.script.done")
    assert [(r["script"], r["rc"]) for r in done] == [("startup_script", 0), ("shutdown_script", 0)]
    # The first child starts only after the startup script has finished.
    started = _records(log_text, "watchdog.child.started")
    assert done[0]["timestamp"] <= started[0]["timestamp"]


@pytest.mark.netns
def test_hanging_startup_and_shutdown_scripts_are_killed_and_the_daemon_goes_on(
    make_lab: Any, scratch: Path
) -> None:
    lab: Lab = make_lab(1)
    hang = scratch / "hang.sh"
    hang.write_text(f"#!/bin/sh\ntouch {scratch}/out/$1\nexec sleep 60.4242\n")
    hang.chmod(0o755)
    config = (
        "global_defs {\n"
        "    script_user root\n"
        f'    startup_script "{hang} up"\n'
        "    startup_script_timeout 1\n"
        f'    shutdown_script "{hang} down"\n'
        "    shutdown_script_timeout 1\n"
        "}\n" + INSTANCE
    )
    with daemon_group(lab.node(0), config, env=JSON_LOGS) as group:
        group.wait_started(timeout=20)
        assert (scratch / "out" / "up").exists()
        stopping = time.monotonic()
        assert stop(group.proc, timeout=40) == 0
        stop_took = time.monotonic() - stopping
        assert (scratch / "out" / "down").exists()
        log_text = group.log_text()
    timeouts = _records(log_text, "watchdog.script.timeout")
    assert [(r["script"], r["timeout"], r["rc"]) for r in timeouts] == [
        ("startup_script", 1.0, -15),
        ("shutdown_script", 1.0, -15),
    ]
    assert stop_took < 15  # children's orderly stop + 1 s, not the script's 60 s
    # As keepalived, say that these scripts run without enable_script_security.
    insecure = _records(log_text, "watchdog.script.insecure")
    assert [r["script"] for r in insecure] == ["startup_script", "shutdown_script"]
    # Nothing of the scripts survives: their whole process group was killed.
    wait_until(lambda: "sleep 60.4242" not in _ps(), 5, message="no sleeping script left")


def _ps() -> str:
    import subprocess

    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


@pytest.mark.netns
def test_an_unsafe_startup_script_is_refused_and_the_daemon_still_starts(
    make_lab: Any, scratch: Path
) -> None:
    lab: Lab = make_lab(1)
    writable = scratch / "writable"
    writable.mkdir()
    writable.chmod(0o777)  # anyone could replace the script: root must not run it
    evil = writable / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {scratch}/out/evil-ran\n")
    evil.chmod(0o755)
    config = (
        "global_defs {\n"
        "    enable_script_security\n"
        "    script_user root\n"
        f"    startup_script {evil}\n"
        "}\n" + INSTANCE
    )
    with daemon_group(lab.node(0), config, env=JSON_LOGS) as group:
        group.wait_started()
        log_text = group.log_text()
    assert not (scratch / "out" / "evil-ran").exists()
    refused = _records(log_text, "watchdog.script.refused")
    assert len(refused) == 1 and refused[0]["script"] == "startup_script"
    assert "writable" in refused[0]["reason"]
