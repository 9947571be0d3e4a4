"""Notify scripts and the notify FIFO, from a real daemon in a namespace."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path

import pytest
import structlog

from scripts import ScriptSpec
from tests.daemon import daemon_group, short_tmpdir, stop
from tests.lab import Lab, wait_until
from vrrpd import notify


def test_specific_script_runs_before_generic_with_keepalived_arguments() -> None:
    scripts = {
        "notify_master": ScriptSpec("VI_1:m", "/x/m a b"),
        "notify": ScriptSpec("VI_1:g", "/x/g --v"),
    }
    jobs = notify.jobs_for("VI_1", scripts, "MASTER", 150)
    assert [j.argv for j in jobs] == [
        ("/x/m", "a", "b"),
        ("/x/g", "--v", "INSTANCE", "VI_1", "MASTER", "150"),
    ]
    group = notify.jobs_for("G1", {"notify": ScriptSpec("G1:g", "/x/g")}, "STOP", 0, "GROUP")
    assert group[0].argv == ("/x/g", "GROUP", "G1", "STOP", "0")
    assert group[0].timeout == notify.STOP_TIMEOUT
    assert notify.fifo_line("VI_1", "BACKUP", 100) == 'INSTANCE "VI_1" BACKUP 100\n'


def test_a_notify_script_that_times_out_is_logged_under_vrrpd(tmp_path: Path) -> None:
    script = tmp_path / "hang.sh"
    script.write_text("#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n")
    script.chmod(0o755)
    job = notify.Job("VI_1", "notify_master", ScriptSpec("VI_1:m", str(script)), 0.2)
    with structlog.testing.capture_logs() as logs:
        asyncio.run(notify.run_job(job))
    events = [e["event"] for e in logs]
    # The runner's own events carry vrrpd's name (a stubborn script needs SIGKILL too).
    assert events == ["vrrpd.script.timeout", "vrrpd.script.kill", "vrrpd.notify.timeout"]
    assert logs[0]["name"] == "VI_1:notify_master"


@pytest.mark.netns
def test_notify_scripts_and_fifo_follow_the_transitions_in_order(lab: Lab, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    log = tmp_path / "notify.log"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    script.chmod(0o755)
    fifo = tmp_path / "events.fifo"
    config = f"""
global_defs {{
    router_id n1
    enable_script_security
    script_user root
    vrrp_notify_fifo {fifo}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority 150
    advert_int 1
    virtual_ipaddress {{
        192.0.2.150/24
    }}
    notify_master "{script} master-only"
    notify "{script} generic"
}}
"""
    with daemon_group(lab.node(0), config) as group:
        group.wait_started()
        wait_until(fifo.exists, 15, message="vrrpd to create the notify FIFO")
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            wait_until(
                lambda: log.exists() and "MASTER 150" in log.read_text(),
                15,
                message="the generic notify for MASTER",
            )
            lines = log.read_text().splitlines()
            # Per instance the queue keeps order: BACKUP (start-up), then master-only, generic.
            assert lines == [
                "generic INSTANCE VI_1 BACKUP 150",
                "master-only",
                "generic INSTANCE VI_1 MASTER 150",
            ]
            fifo_text = os.read(reader, 4096).decode()
            assert fifo_text == 'INSTANCE "VI_1" BACKUP 150\nINSTANCE "VI_1" MASTER 150\n'
            assert stop(group.proc, timeout=40) == 0
            assert log.read_text().splitlines()[-1] == "generic INSTANCE VI_1 STOP 150"
        finally:
            os.close(reader)
    assert not fifo.exists()  # created by vrrpd, so removed by it


@pytest.mark.netns
def test_notify_script_runs_as_script_user_and_unsafe_ones_are_refused(lab: Lab) -> None:
    # Under /tmp directly: pytest's own tmp dirs are 0700, which `nobody` cannot traverse.
    tmp_path = short_tmpdir()
    tmp_path.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    whoami = tmp_path / "whoami.sh"
    whoami.write_text(f"#!/bin/sh\nid -un > {out}/user\n")
    whoami.chmod(0o755)
    unsafe_dir = tmp_path / "writable"
    unsafe_dir.mkdir()
    unsafe_dir.chmod(0o777)  # anyone could replace the script: root must not run it
    unsafe = unsafe_dir / "evil.sh"
    unsafe.write_text(f"#!/bin/sh\ntouch {out}/evil-ran\n")
    unsafe.chmod(0o755)
    config = f"""
global_defs {{
    router_id n2
    enable_script_security
    script_user root
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 62
    priority 150
    advert_int 1
    virtual_ipaddress {{
        192.0.2.151/24
    }}
    notify_master "{whoami}" nobody
    notify_backup "{unsafe}"
}}
"""
    with daemon_group(lab.node(0), config) as group:
        group.wait_started()
        # The shell creates the file before id writes to it: wait for the content.
        user = out / "user"
        wait_until(
            lambda: user.exists() and user.read_text().endswith("\n"), 15, message="notify_master"
        )
        assert (out / "user").read_text().strip() == "nobody"
        assert not (out / "evil-ran").exists()
        assert "vrrpd.notify.refused" in group.log_text()
    shutil.rmtree(tmp_path)
