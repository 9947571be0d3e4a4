"""keepalived's command line and signals, checked against keepalived 2.2.7 itself."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.signals import CAUGHT_SIGNALS, SIGNAL_FUNCTIONS, signal_name
from tests.daemon import DaemonGroup, daemon_group
from tests.lab import Lab, wait_until
from tests.watchdog.test_supervision import CONFIG as SUPERVISED
from watchdog.children import specs
from watchdog.cli import build_parser, main

KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
needs_keepalived = pytest.mark.skipif(
    not os.path.exists(KEEPALIVED), reason="Debian's keepalived is not installed"
)

# A value for each option of keepalived --help that takes one.
SAMPLE_VALUES = {
    "use-file": "/etc/keepalived/keepalived.conf",
    "log-facility": "local3",
    "umask": "022",
    "pid": "/run/k.pid",
    "vrrp_pid": "/run/v.pid",
    "checkers_pid": "/run/c.pid",
    "bfd_pid": "/run/b.pid",
    "snmp-agent-socket": "/run/agentx",
    "namespace": "blue",
    "core-dump-pattern": "core",
    "config-id": "node1",
    "signum": "STOP",
    "config-test": None,  # optional value
}


def keepalived_options() -> list[tuple[str | None, str, bool]]:
    """(short, long, takes a value) for every option keepalived --help lists."""
    out = subprocess.run([KEEPALIVED, "--help"], capture_output=True, text=True).stderr
    out += subprocess.run([KEEPALIVED, "--help"], capture_output=True, text=True).stdout
    found = []
    for m in re.finditer(r"^\s+(?:-(\w), )?--([\w-]+)(=|\[=| )?", out, re.MULTILINE):
        short, long, value = m.group(1), m.group(2), m.group(3)
        found.append((short, long, value in ("=", " ")))
    return found


@needs_keepalived
def test_every_keepalived_option_is_accepted() -> None:
    options = keepalived_options()
    assert len(options) > 30, options  # the parse found keepalived's whole list
    parser = build_parser()
    for short, long, takes_value in options:
        if long in ("help", "version", "genhash"):
            continue  # exit at once / genhash mode, tested on their own
        sample = SAMPLE_VALUES.get(long) if takes_value else None
        value = [sample] if sample else []
        for spelling in filter(None, (f"--{long}", short and f"-{short}")):
            parser.parse_args([spelling, *value])  # argparse exits 2 on an unknown option


@needs_keepalived
@pytest.mark.parametrize("name", [*SIGNAL_FUNCTIONS, "TDATA", "stop"])
def test_signum_prints_what_keepalived_prints(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    theirs = subprocess.run([KEEPALIVED, f"--signum={name}"], capture_output=True, text=True)
    ours = main([f"--signum={name}"])
    out, err = capfd.readouterr()
    assert (ours, out, err.strip()) == (
        theirs.returncode,
        theirs.stdout,
        theirs.stderr.strip(),
    )


@pytest.mark.parametrize(
    ("given", "facility"),
    [("0", "local0"), ("7", "local7"), ("local5", "local5"), ("user", "user")],
)
def test_log_facility_takes_numbers_and_names(given: str, facility: str) -> None:
    assert build_parser().parse_args(["-S", given]).log_facility == facility


def test_a_missing_namespace_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("")
    assert main(["-s", "pk-absent-ns", "-f", str(conf)]) == 1
    assert "network namespace pk-absent-ns does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["8", "local8", "kern", ""])
def test_a_bad_facility_is_refused(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["-S", bad])
    assert exc.value.code == 2


@pytest.mark.parametrize(("given", "mask"), [("022", 0o22), ("0x12", 0x12), ("18", 18), ("0", 0)])
def test_umask_is_read_as_keepalived_reads_it(given: str, mask: int) -> None:
    assert build_parser().parse_args(["-u", given]).umask == mask


@pytest.fixture
def group(lab: Lab) -> Iterator[DaemonGroup]:
    with daemon_group(lab.node(0), SUPERVISED, "-l") as g:
        g.wait_started()
        yield g


def _all_alive(pids: dict[str, int]) -> bool:
    for pid in pids.values():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
    return True


@pytest.mark.netns
def test_no_signal_ends_the_group(group: DaemonGroup) -> None:
    """keepalived's STATS_CLEAR (63) used to kill the daemon; no catchable signal may."""
    before = group.pids()
    assert len(before) == 6
    for signum in CAUGHT_SIGNALS:
        if signum == signal.SIGHUP:
            continue  # a reload: tested elsewhere, and it restarts nothing either
        for pid in before.values():
            os.kill(pid, signum)
    # Every process logs what it ignored; wait for the last one rather than for a time.
    last = signal_name(CAUGHT_SIGNALS[-1])
    wait_until(
        lambda: group.log_text().count(f"signal={last}") >= len(before),
        15,
        message="every process to log the last signal",
    )
    assert group.pids() == before, "a process died or was restarted"
    assert _all_alive(before)
    assert "component.signal.ignored" in group.log_text()
    # STATS_CLEAR (63) went to vrrpd before the last signal (64), but both can be pending at
    # once, and the kernel then runs the higher one's handler first: vrrpd may log its
    # clearing after its line about the last signal. Wait for it.
    wait_until(
        lambda: "vrrpd.stats.cleared" in group.log_text(),
        10,
        message="vrrpd to log the cleared statistics",
    )


@pytest.mark.parametrize(
    ("flags", "netd", "absent"),
    [
        ([], [], None),
        (["-P"], ["--no-lvs"], "checkd"),  # no checker decides the pools: no datapath
        (["-C"], ["--lvs-only"], "vrrpd"),  # the datapath, no static addresses
        (["-P", "-C"], [], None),
    ],
)
def test_vrrp_and_check_only_give_netd_its_role(
    flags: list[str], netd: list[str], absent: str | None
) -> None:
    argv = {c.name: c.argv for c in specs(build_parser().parse_args(flags), Path("/run/pk"), {})}
    assert [a for a in argv["netd"] if a.startswith("--") and "lvs" in a] == netd
    assert absent not in argv


def test_dont_release_ipvs_reaches_netd_alone() -> None:
    args = build_parser().parse_args(["-I"])
    argv = {c.name: c.argv for c in specs(args, Path("/run/pk"), {})}
    assert "--dont-release-ipvs" in argv["netd"]
    assert not any("--dont-release-ipvs" in a for n, a in argv.items() if n != "netd")
    plain = {c.name: c.argv for c in specs(build_parser().parse_args([]), Path("/run/pk"), {})}
    assert "--dont-release-ipvs" not in plain["netd"]


@pytest.mark.parametrize(
    ("flags", "no_vrrpd"), [([], False), (["-C"], True), (["-P", "-C"], False)]
)
def test_check_only_tells_checkd_it_starts_every_fifo_reader(
    flags: list[str], no_vrrpd: bool
) -> None:
    # docs/operations.md, "Notify FIFOs": without vrrpd, checkd starts the readers vrrpd would.
    argv = {c.name: c.argv for c in specs(build_parser().parse_args(flags), Path("/run/pk"), {})}
    assert ("--no-vrrpd" in argv["checkd"]) == no_vrrpd
    assert not any("--no-vrrpd" in a for n, a in argv.items() if n != "checkd")
