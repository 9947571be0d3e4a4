"""systemd's notify protocol: READY, RELOADING, STOPPING, STATUS and watchdog pings.

The end-to-end test plays systemd: it binds the datagram socket named by NOTIFY_SOCKET and
reads what a whole daemon group sends, in order, while the test reloads, hangs a child and
stops the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import DaemonGroup, daemon_group, short_tmpdir
from tests.lab import Lab
from watchdog.readiness import Readiness
from watchdog.sdnotify import Notifier
from watchdog.supervisor import HEARTBEAT_TIMEOUT, PING_SILENCE

COMPONENTS = ("bus", "core", "netd", "checkd", "vrrpd")


def test_ready_needs_every_component_and_a_config() -> None:
    r = Readiness(COMPONENTS)
    for name in COMPONENTS[:-1]:
        assert r.heartbeat(name) == []
    assert r.config_current(1) == []  # vrrpd not heard yet
    assert r.heartbeat("vrrpd") == ["ready"]
    assert r.heartbeat("vrrpd") == []  # once
    assert r.status_line() == "5/5 components up; config generation 1"


def test_config_after_heartbeats_makes_it_ready() -> None:
    r = Readiness(("bus", "core"))
    r.heartbeat("bus")
    r.heartbeat("core")
    assert r.config_current(4) == ["ready"]


@pytest.mark.parametrize("outcome", ["current", "rejected"])
def test_a_reload_is_reloading_until_core_answers(outcome: str) -> None:
    r = Readiness(("core",))
    r.heartbeat("core")
    r.config_current(1)
    assert r.reload_requested() == ["reloading"]
    assert r.reload_requested() == []  # SIGHUP and config.reload of one reload
    says = r.config_current(2) if outcome == "current" else r.config_rejected()
    assert says == ["ready"]
    assert ("last reload rejected" in r.status_line()) == (outcome == "rejected")


def test_no_reload_before_ready_and_states_update_the_status() -> None:
    r = Readiness(("vrrpd",))
    assert r.reload_requested() == []
    assert r.vrrp_state("VI_1", "BACKUP") == []  # not ready yet: nothing to tell
    r.heartbeat("vrrpd")
    r.config_current(1)
    assert r.vrrp_state("VI_1", "MASTER") == ["status"]
    assert r.vrrp_state("VI_1", "MASTER") == []
    assert r.vrrp_state("VI_2", "BACKUP") == ["status"]
    assert r.status_line().endswith("1 BACKUP, 1 MASTER")
    assert r.child_restarted("vrrpd") == ["status"]
    assert r.status_line().startswith("0/1 components up")


def test_an_on_demand_component_counts_only_while_wanted() -> None:
    r = Readiness(("bus", "checkd"))
    r.heartbeat("bus")
    r.config_current(1)
    assert r.wanted("checkd", False) == ["ready"]  # the config gives checkd no work
    assert r.status_line() == "1/1 components up; config generation 1"
    assert r.wanted("checkd", True) == ["status"]  # a reload added a check
    assert r.status_line().startswith("1/2 components up")
    assert r.wanted("checkd", True) == []
    assert r.heartbeat("checkd") == []  # ready already
    assert r.status_line().startswith("2/2 components up")
    assert r.wanted("checkd", False) == ["status"]
    assert r.status_line().startswith("1/1 components up")


def _listener(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    return sock


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_sends_one_datagram_per_message(tmp_path: Path, abstract: bool) -> None:
    name = f"pk-test-{os.getpid()}-{time.monotonic_ns()}"
    path = "\0" + name if abstract else str(tmp_path / "notify")
    with _listener(path) as sock:
        env = {"NOTIFY_SOCKET": "@" + name if abstract else path}
        n = Notifier(env)
        n.ready("5/5 components up")
        n.reloading()
        n.stopping()
        n.close()
        assert sock.recv(4096) == b"READY=1\nSTATUS=5/5 components up"
        first, monotonic = sock.recv(4096).decode().split("\n")
        assert first == "RELOADING=1" and monotonic.startswith("MONOTONIC_USEC=")
        assert sock.recv(4096) == b"STOPPING=1"


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_us() -> None:
    assert Notifier({"WATCHDOG_USEC": "4000000"}).watchdog_interval == 2.0
    assert Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    mine = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval == 0.5
    assert Notifier({}).watchdog_interval is None
    assert not Notifier({}).enabled


def test_a_missing_systemd_socket_never_raises(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    n.ready("x")  # logged once, not raised
    n.watchdog()
    n.close()


CONFIG = """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.200/24
    }
}
"""


class Systemd:
    """What systemd would receive on the notify socket."""

    def __init__(self) -> None:
        self.dir = short_tmpdir("pk-sd-")
        self.path = str(self.dir / "notify")
        self.sock = _listener(self.path)

    def next_message(self, want: str, timeout: float) -> list[str]:
        """Messages up to and including the first holding the line `want`."""
        return [msg for _, msg in self.timed_messages(want, timeout)]

    def timed_messages(self, want: str, timeout: float) -> list[tuple[float, str]]:
        """Like next_message, with the monotonic time each message arrived."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            seen.append((time.monotonic(), msg))
            if want in msg.split("\n"):
                return seen
        raise AssertionError(f"no {want!r} within {timeout} s; got {seen}")

    def pings_within(self, seconds: float) -> int:
        end = time.monotonic() + seconds
        pings = 0
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                pings += self.sock.recv(4096) == b"WATCHDOG=1"
            except TimeoutError:
                break
        return pings


@pytest.fixture
def systemd() -> Iterator[Systemd]:
    sd = Systemd()
    yield sd
    sd.sock.close()


@pytest.fixture
def group(lab: Lab, systemd: Systemd) -> Iterator[DaemonGroup]:
    env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "1000000"}
    with daemon_group(lab.node(0), CONFIG, "-l", env=env) as g:
        yield g


@pytest.mark.netns
def test_systemd_hears_ready_reload_watchdog_and_stop(group: DaemonGroup, systemd: Systemd) -> None:
    before = systemd.next_message("READY=1", 20)
    ready = before[-1]
    # A VRRP-only config gives checkd no work: the watchdog does not start it.
    assert "STATUS=4/4 components up; config generation" in ready
    assert all(m == "WATCHDOG=1" for m in before[:-1])
    # Ready means up: every component the config needs is running.
    assert set(group.components()) <= set(group.pids())
    assert "checkd" not in group.pids()

    os.kill(group.proc.pid, signal.SIGHUP)
    reload = systemd.next_message("READY=1", 15)
    assert any(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in reload)

    assert systemd.pings_within(1.5) >= 1  # healthy: pinged every 0.5 s
    vrrpd = group.pids()["vrrpd"]
    os.kill(vrrpd, signal.SIGSTOP)  # hung: its heartbeats stop, so must the pings
    try:
        hang = systemd.timed_messages("STATUS=3/4 components up; config generation 1; 1 BACKUP", 15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(vrrpd, signal.SIGCONT)  # normally already killed and replaced
    *pings, (restarted_at, _) = hang
    assert pings, "healthy before the silence was long: pings must go on for a while"
    assert [msg for _, msg in pings] == ["WATCHDOG=1"] * len(pings)
    # Pings (every 0.5 s while healthy) went on while vrrpd's silence was short, then
    # stopped well before the watchdog gave up on it and replaced it.
    last_ping = pings[-1][0] if pings else 0.0
    assert restarted_at - last_ping >= HEARTBEAT_TIMEOUT - PING_SILENCE - 0.5
    # Once the new vrrpd heart-beats, pings resume.
    assert systemd.pings_within(3) >= 1

    group.close()
    systemd.next_message("STOPPING=1", 10)
