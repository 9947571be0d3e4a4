"""Global keywords that change where and how the daemon runs: umask, child_wait_time,
instance and use_pid_dir (pid file names), net_namespace (tests/watchdog/test_netns.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import core
from tests.core.conftest import no_scripts_env
from tests.daemon import REPO, DaemonGroup, daemon_group
from tests.lab import Lab, wait_until
from watchdog.settings import DaemonSettings, pid_names, settings, syslog_suffix

INSTANCE = """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.200/24
    }
}
"""


def conf(text: str) -> DaemonSettings:
    return settings(core.loads(text, config_id="n", script_env=no_scripts_env()).config)


def test_defaults_as_keepalived() -> None:
    s = conf(INSTANCE)
    assert (s.child_wait_time, s.umask, s.instance, s.use_pid_dir) == (5.0, None, None, False)
    assert pid_names(Path("/run"), s) == {
        "watchdog": Path("/run/keepalived.pid"),
        "vrrpd": Path("/run/vrrp.pid"),
        "checkd": Path("/run/checkers.pid"),
    }


def test_instance_and_use_pid_dir_name_the_pid_files_as_keepalived() -> None:
    s = conf("instance alpha\nchild_wait_time 2\nglobal_defs {\n    umask 0027\n}\n" + INSTANCE)
    assert (s.instance, s.child_wait_time, s.umask) == ("alpha", 2.0, 0o27)
    assert pid_names(Path("/run"), s)["vrrpd"] == Path("/run/keepalived/vrrp_alpha.pid")
    only_dir = conf("use_pid_dir\n" + INSTANCE)
    assert pid_names(Path("/run"), only_dir)["watchdog"] == Path("/run/keepalived/keepalived.pid")


@pytest.mark.parametrize(("text", "mask"), [("0027", 0o27), ("0x12", 0x12), ("18", 18)])
def test_umask_is_read_like_keepalived_and_renders_back(text: str, mask: int) -> None:
    r = core.loads(f"global_defs {{\n    umask {text}\n}}\n", config_id="n", script_env=None)
    assert r.config.global_defs.umask == mask and not r.problems
    assert core.loads(core.render(r.config), config_id="n", script_env=None).config == r.config


def test_a_bad_umask_names_the_line() -> None:
    r = core.loads("global_defs {\n    umask 0999\n}\n", path="/k.conf", config_id="n")
    (p,) = [p for p in r.problems if p.severity == "error"]
    assert (p.line, p.code) == (2, "bad-value")


def test_a_missing_net_namespace_is_named_and_nothing_starts(tmp_path: Path) -> None:
    text = "net_namespace pk-absent-ns\n" + INSTANCE
    assert core.loads(text, config_id="n", script_env=None).problems == ()
    path = tmp_path / "k.conf"
    path.write_text(text)
    out = subprocess.run(
        [sys.executable, "-m", "watchdog", "-f", str(path), "--runtime-dir", str(tmp_path / "r")],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert "network namespace pk-absent-ns does not exist" in out.stderr
    assert not (tmp_path / "r").exists()  # refused before the bus or any child


def test_pid_files_of_a_namespace_are_where_keepalived_shows_them() -> None:
    s = conf("net_namespace blue\ninstance alpha\n" + INSTANCE)
    assert pid_names(Path("/run"), s)["vrrpd"] == Path("/run/keepalived/blue/vrrp_alpha.pid")


CONFIG = "instance alpha\nchild_wait_time 1\nglobal_defs {\n    umask 0027\n}\n" + INSTANCE


@pytest.fixture
def group(lab: Lab) -> Iterator[DaemonGroup]:
    with daemon_group(lab.node(0), CONFIG, "-l") as g:
        g.wait_started()
        yield g


def _umask(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line")


@pytest.mark.netns
def test_a_running_group_follows_the_global_keywords(group: DaemonGroup) -> None:
    pids = group.pids()
    piddir = group.runtime.path / "keepalived"
    assert int((piddir / "keepalived_alpha.pid").read_text()) == pids["watchdog"]
    assert int((piddir / "vrrp_alpha.pid").read_text()) == pids["vrrpd"]
    # (the broker binds its sockets under a restrictive umask for a moment: wait it out)
    wait_until(
        lambda: {_umask(pid) for pid in pids.values()} == {0o27},
        10,
        message="every component's umask to be the configured 0027",
    )
    # child_wait_time 1: a child that does not stop is killed after 1 s, not keepalived's 5.
    os.kill(pids["netd"], signal.SIGSTOP)
    group.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: group.proc.poll() is not None, 20, message="the group to stop")
    assert "watchdog.child.kill" in group.log_text()
    assert "child=netd" in group.log_text()


@pytest.mark.parametrize(
    ("head", "suffix"),
    [
        ("", ""),
        ("instance alpha\n", "_alpha"),
        ("net_namespace blue\ninstance alpha\n", "_blue_alpha"),
    ],
)
def test_syslog_idents_are_suffixed_as_keepalived_s(head: str, suffix: str) -> None:
    assert syslog_suffix(conf(head + INSTANCE)) == suffix
