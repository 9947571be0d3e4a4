"""bus.priorities: keepalived's process priority keywords, applied per thread and put back
on a reload (docs/operations.md, "Process priorities").

The planning runs against a recording kernel; one test applies real settings in a child
interpreter (so this test process keeps its own) and reads them back from /proc; one runs
the daemon with them (tests/watchdog would be the other place; kept here with the mechanism).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from bus.priorities import PriorityKeeper, ProcessPriorities
from tests.daemon import daemon_group
from tests.lab import Lab, wait_until

RESET = os.SCHED_RESET_ON_FORK


class RecordingKernel:
    def __init__(self, *, refuse: set[str] | None = None) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.refuse = refuse or set()

    def _do(self, *call: object) -> None:
        self.calls.append(call)
        if call[0] in self.refuse:
            raise PermissionError(errno.EPERM, "Operation not permitted")

    def threads(self) -> list[int]:
        return [100, 101]

    def nice(self) -> int:
        return 0

    def set_nice(self, tid: int, value: int) -> None:
        self._do("nice", tid, value)

    def set_policy(self, tid: int, policy: int, priority: int) -> None:
        self._do("policy", tid, policy, priority)

    def cpus(self) -> frozenset[int]:
        return frozenset({0, 1})

    def set_cpus(self, tid: int, cpus: frozenset[int]) -> None:
        self._do("cpus", tid, tuple(sorted(cpus)))

    def rttime(self) -> tuple[int, int]:
        return (-1, -1)

    def set_rttime(self, soft: int, hard: int) -> None:
        self._do("rttime", soft, hard)

    def lock_memory(self, locked: bool) -> None:
        self._do("lock", locked)


def test_nothing_configured_changes_nothing() -> None:
    kernel = RecordingKernel()
    assert PriorityKeeper("vrrpd", kernel).apply(ProcessPriorities()) == []
    assert kernel.calls == []


def test_a_nice_value_on_every_thread_with_scripts_reset_to_zero() -> None:
    kernel = RecordingKernel()
    PriorityKeeper("checkd", kernel).apply(ProcessPriorities(nice=-5, cpus=(1,)))
    for tid in (100, 101):
        assert ("policy", tid, os.SCHED_OTHER | RESET, 0) in kernel.calls
        assert ("nice", tid, -5) in kernel.calls
        assert ("cpus", tid, (1,)) in kernel.calls
    assert not [c for c in kernel.calls if c[0] in ("rttime", "lock")]


def test_a_positive_nice_value_needs_no_reset_on_fork() -> None:
    kernel = RecordingKernel()
    PriorityKeeper("checkd", kernel).apply(ProcessPriorities(nice=5))
    assert ("policy", 100, os.SCHED_OTHER, 0) in kernel.calls


def test_realtime_replaces_the_nice_value_and_sets_its_time_limit() -> None:
    kernel = RecordingKernel()
    PriorityKeeper("vrrpd", kernel).apply(
        ProcessPriorities(nice=-5, realtime=20, rlimit_rttime=50_000, no_swap=True)
    )
    assert ("policy", 100, os.SCHED_RR | RESET, 20) in kernel.calls
    assert ("nice", 100, 0) in kernel.calls  # keepalived: no nice value under SCHED_RR
    assert ("rttime", 25_000, 50_000) in kernel.calls
    assert ("lock", True) in kernel.calls


def test_realtime_without_a_configured_limit_sets_none() -> None:
    kernel = RecordingKernel()
    PriorityKeeper("vrrpd", kernel).apply(ProcessPriorities(realtime=20))
    assert not [c for c in kernel.calls if c[0] == "rttime"]


def test_a_reload_that_drops_the_settings_puts_back_what_they_changed() -> None:
    kernel = RecordingKernel()
    keeper = PriorityKeeper("vrrpd", kernel)
    keeper.apply(ProcessPriorities(realtime=20, rlimit_rttime=50_000, no_swap=True, cpus=(0,)))
    kernel.calls.clear()
    keeper.apply(ProcessPriorities())
    assert ("policy", 101, os.SCHED_OTHER, 0) in kernel.calls
    assert ("nice", 101, 0) in kernel.calls
    assert ("cpus", 101, (0, 1)) in kernel.calls  # the CPUs the process started with
    assert ("rttime", -1, -1) in kernel.calls
    assert ("lock", False) in kernel.calls
    kernel.calls.clear()
    keeper.apply(ProcessPriorities())
    assert kernel.calls == []  # the same settings again: nothing to do


def test_a_refused_setting_is_reported_and_the_rest_still_applied() -> None:
    kernel = RecordingKernel(refuse={"policy"})
    problems = PriorityKeeper("vrrpd", kernel).apply(ProcessPriorities(realtime=20, cpus=(1,)))
    assert problems == ["scheduling policy: Operation not permitted"]  # once, not per thread
    assert ("cpus", 100, (1,)) in kernel.calls


def test_settings_from_the_wire_form_of_global_defs() -> None:
    defs = {
        "vrrp_priority": -5,
        "vrrp_rt_priority": 10,
        "vrrp_rlimit_rttime": 20_000,
        "vrrp_no_swap": True,
        "vrrp_cpu_affinity": [0, 1],
        "checker_priority": 7,
    }
    assert ProcessPriorities.from_global_defs(defs, "vrrp") == ProcessPriorities(
        nice=-5, realtime=10, rlimit_rttime=20_000, no_swap=True, cpus=(0, 1)
    )
    assert ProcessPriorities.from_global_defs(defs, "checker") == ProcessPriorities(nice=7)


@pytest.mark.parametrize(
    ("defs", "named"),
    [
        ({"vrrp_priority": 40}, "vrrp_priority"),
        ({"vrrp_rt_priority": "high"}, "vrrp_rt_priority"),
        ({"vrrp_cpu_affinity": ["a"]}, "vrrp_cpu_affinity"),
        ({"vrrp_priority": True}, "vrrp_priority"),
    ],
)
def test_a_malformed_setting_is_refused_with_its_name(defs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ProcessPriorities.from_global_defs(defs, "vrrp")


_CHILD = textwrap.dedent(
    """
    import json, os, subprocess, threading
    from bus.priorities import PriorityKeeper, ProcessPriorities
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
    problems = PriorityKeeper("test").apply(
        ProcessPriorities(nice=-3, cpus=(0,), no_swap=True)
    )
    tasks = os.listdir("/proc/self/task")
    nices = {int(open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()[16])
             for t in tasks}
    status = open("/proc/self/status").read()
    cpus = [l.split()[1] for l in status.splitlines() if l.startswith("Cpus_allowed_list")]
    locked = [l for l in status.splitlines() if l.startswith("VmLck")][0].split()[1]
    script = subprocess.run(["sh", "-c", "cut -d' ' -f19 /proc/self/stat"],
                            capture_output=True, text=True).stdout.strip()
    print("RESULT", json.dumps([problems, len(tasks), sorted(nices), cpus, int(locked), script]))
    """
)


def test_the_kernel_holds_the_settings_on_every_thread_and_scripts_start_clean() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    (line,) = [x for x in out.splitlines() if x.startswith("RESULT ")]
    problems, threads, nices, cpus, locked, script_nice = json.loads(line.removeprefix("RESULT "))
    assert problems == []
    assert threads >= 2
    assert nices == [-3]  # every thread
    assert cpus == ["0"]
    assert locked > 0
    assert script_nice == "0"  # SCHED_RESET_ON_FORK: a script does not inherit -3


CONFIG = """
global_defs {
    vrrp_priority 4
    checker_priority 6
}
vrrp_script chk_ok {
    script "/bin/true"
    interval 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 62
    priority 100
    advert_int 1
    track_script {
        chk_ok
    }
    virtual_ipaddress {
        192.0.2.62/24
    }
}
"""


def _nices(pid: int) -> set[int]:
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as fh:
            out.add(int(fh.read().rsplit(")", 1)[1].split()[16]))
    return out


@pytest.mark.netns
def test_vrrpd_and_checkd_run_at_their_configured_nice_values(lab: Lab) -> None:
    with daemon_group(lab.node(0), CONFIG, "-l") as g:
        pids = g.wait_started()
        wait_until(lambda: _nices(pids["vrrpd"]) == {4}, 15, message="vrrpd at nice 4")
        wait_until(lambda: _nices(pids["checkd"]) == {6}, 15, message="checkd at nice 6")
        assert _nices(pids["netd"]) == {0}  # only the two processes keepalived names
