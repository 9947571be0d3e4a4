"""Notify scripts run as ``script_user`` (or their own user) under script security.

No namespace is needed: the scripts are run the way vrrpd runs them (``notify.run_job`` on the
jobs built from the plan), as the real unprivileged user ``nobody``. Needs root, as vrrpd does.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from core import loads
from tests.daemon import short_tmpdir
from vrrpd import notify
from vrrpd.plan import plan

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def scripts() -> Iterator[Path]:
    # Under /tmp directly (sticky, so a safe parent): pytest's own tmp dirs are 0700, which
    # `nobody` cannot traverse.
    base = short_tmpdir()
    base.chmod(0o755)
    out = base / "out"
    out.mkdir()
    out.chmod(0o777)
    # One file every run appends to, whoever it runs as.
    (out / "ids").touch()
    (out / "ids").chmod(0o666)
    ids = base / "ids.sh"
    ids.write_text(f'#!/bin/sh\necho "$(id -u) $(id -g) $*" >> {out}/ids\n')
    ids.chmod(0o755)
    yield base
    shutil.rmtree(base)


def config(global_lines: str, instance_lines: str) -> str:
    return f"""
global_defs {{
    {global_lines}
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {{
        192.0.2.100/24
    }}
    {instance_lines}
}}
"""


def run_transition(text: str, state: str) -> list[structlog.typing.EventDict]:
    (p,) = plan(loads(text, script_env=None, interfaces=["eth0"]).config)

    async def run() -> None:
        for job in notify.jobs_for("VI_1", p.notify, state, 100):
            await notify.run_job(job)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(run())
    return logs


def ids(base: Path) -> list[list[str]]:
    path = base / "out" / "ids"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_global_script_user_runs_state_and_generic_scripts(scripts: Path) -> None:
    text = config(
        "enable_script_security\n    script_user nobody",
        f'notify_master "{scripts}/ids.sh master"\n    notify {scripts}/ids.sh',
    )
    run_transition(text, "MASTER")
    uid, gid = str(NOBODY.pw_uid), str(NOBODY.pw_gid)
    assert ids(scripts) == [
        [uid, gid, "master"],
        [uid, gid, "INSTANCE", "VI_1", "MASTER", "100"],
    ]


def test_a_scripts_own_user_wins_over_script_user(scripts: Path) -> None:
    text = config(
        "enable_script_security\n    script_user nobody",
        f"notify_backup {scripts}/ids.sh root\n    notify_fault {scripts}/ids.sh",
    )
    run_transition(text, "BACKUP")
    run_transition(text, "FAULT")
    assert [row[0] for row in ids(scripts)] == ["0", str(NOBODY.pw_uid)]


def test_an_unsafe_script_is_refused_as_root_naming_the_file_and_why(scripts: Path) -> None:
    writable = scripts / "writable"
    writable.mkdir()
    writable.chmod(0o777)  # anyone could replace the script: root must not run it
    unsafe = writable / "ids.sh"
    shutil.copy(scripts / "ids.sh", unsafe)
    instance = f"notify_master {unsafe}"
    logs = run_transition(
        config("enable_script_security\n    script_user root", instance), "MASTER"
    )
    assert ids(scripts) == []
    (refused,) = [e for e in logs if e["event"] == "vrrpd.notify.refused"]
    assert str(writable) in refused["reason"] and "world-writable" in refused["reason"]
    assert refused["script"] == "notify_master"
    # The same script as an unprivileged user is no risk to root, so it runs.
    run_transition(config("enable_script_security\n    script_user nobody", instance), "MASTER")
    assert ids(scripts) == [[str(NOBODY.pw_uid), str(NOBODY.pw_gid)]]
    # Without enable_script_security root runs it too, with a warning that says why.
    logs = run_transition(config("script_user root", instance), "MASTER")
    assert ids(scripts)[-1][0] == "0"
    (warning,) = [e for e in logs if e["event"] == "vrrpd.notify.insecure"]
    assert str(writable) in warning["detail"]
