"""Notify scripts and the notify FIFO, from a real daemon in a namespace."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.daemon import daemon_group, stop
from tests.lab import Lab, wait_until
from vrrpd import notify


def test_specific_script_runs_before_generic_with_keepalived_arguments() -> None:
    jobs = notify.jobs_for(
        "VI_1", {"notify_master": "/x/m a b", "notify": "/x/g --v"}, "MASTER", 150
    )
    assert [j.argv for j in jobs] == [
        ("/x/m", "a", "b"),
        ("/x/g", "--v", "INSTANCE", "VI_1", "MASTER", "150"),
    ]
    assert notify.jobs_for("VI_1", {"notify": "/x/g"}, "STOP", 0)[0].timeout == notify.STOP_TIMEOUT
    assert notify.fifo_line("VI_1", "BACKUP", 100) == 'INSTANCE "VI_1" BACKUP 100\n'


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
