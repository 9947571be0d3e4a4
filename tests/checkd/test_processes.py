"""track_process: matching rules on synthetic entries, then real processes found in /proc."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkd.plan import ProcessSpec
from checkd.processes import (
    ProcessCheck,
    ProcInfo,
    ProcTable,
    count,
    matches,
    parse_stat,
    quorum_ok,
    read_proc,
)
from tests.checkd.support import Recorder, until
from tests.lab import wait_until


def _state(pid: int) -> str:
    return parse_stat(Path(f"/proc/{pid}/stat").read_text())[1]


def _p(comm: str, *argv: str) -> ProcInfo:
    return ProcInfo(1, comm, argv)


def test_parse_stat_with_awkward_comm() -> None:
    assert parse_stat("42 (my (odd) proc) S 1 2 3") == ("my (odd) proc", "S")
    assert parse_stat("7 (zz) Z 1") == ("zz", "Z")


def test_name_matches_comm_truncated_to_15() -> None:
    spec = ProcessSpec("t", ("a-very-long-process-name",))
    assert matches(spec, _p("a-very-long-pro", "/usr/bin/a-very-long-process-name"))
    assert not matches(ProcessSpec("t", ("nginx",)), _p("nginx-worker", "nginx"))


def test_full_command_matches_argv0() -> None:
    spec = ProcessSpec("t", ("/usr/sbin/nginx",), full_command=True)
    assert matches(spec, _p("nginx", "/usr/sbin/nginx", "-g", "daemon off;"))
    assert not matches(spec, _p("nginx", "nginx"))


def test_parameter_modes() -> None:
    proc = _p("sleep", "sleep", "1000", "--flag=value")
    exact = ProcessSpec("t", ("sleep", "1000", "--flag=value"))
    assert matches(exact, proc)
    assert not matches(ProcessSpec("t", ("sleep", "1000")), proc)  # exact by default
    assert matches(ProcessSpec("t", ("sleep", "1000"), param_match="initial"), proc)
    assert not matches(ProcessSpec("t", ("sleep", "100"), param_match="initial"), proc)
    partial = ProcessSpec("t", ("sleep", "1000", "--flag="), param_match="partial")
    assert matches(partial, proc)
    assert not matches(ProcessSpec("t", ("sleep", "10", "--f"), param_match="partial"), proc)
    assert matches(ProcessSpec("t", ("sleep",)), proc)  # no parameters: any parameters


words = st.lists(st.text(alphabet="ab-=1", min_size=1, max_size=4), max_size=4)


@given(have=words, want=words)
def test_parameter_modes_are_nested(have: list[str], want: list[str]) -> None:
    proc = _p("x", "x", *have)

    def m(mode: Literal["initial", "partial"] | None) -> bool:
        return matches(ProcessSpec("t", ("x", *want), param_match=mode), proc)

    if want:
        # exact implies initial implies partial, and exact is list equality.
        assert m(None) == (have == want)
        assert not m(None) or m("initial")
        assert not m("initial") or m("partial")
        assert m("initial") == (have[: len(want)] == want)


@pytest.mark.parametrize(
    ("quorum", "quorum_max", "n", "ok"),
    [
        (1, None, 0, False),
        (1, None, 5, True),
        (2, 3, 3, True),
        (2, 3, 4, False),
        (0, 0, 0, True),
        (0, 0, 1, False),
    ],
)
def test_quorum(quorum: int, quorum_max: int | None, n: int, ok: bool) -> None:
    assert quorum_ok(ProcessSpec("t", ("x",), quorum=quorum, quorum_max=quorum_max), n) == ok


@contextlib.contextmanager
def sleepers(
    tmp_path: Path, name: str, n: int, *args: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` copies of sleep running under a distinctive program name."""
    binary = tmp_path / name
    if not binary.exists():
        shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    procs = [subprocess.Popen([str(binary), "1000", *args]) for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_real_processes_are_found_and_counted(tmp_path: Path) -> None:
    name = f"pk-{secrets.token_hex(4)}"
    tag = f"0.{secrets.randbelow(10**8):08d}"  # sleep sums its arguments: a harmless marker
    with sleepers(tmp_path, name, 3, tag) as procs:
        info = read_proc(procs[0].pid)
        assert info is not None and info.comm == name and info.argv[1:] == ("1000", tag)
        table = ProcTable(max_age=0)
        assert count(ProcessSpec("t", (name,)), table.snapshot()) == 3
        assert count(ProcessSpec("t", (name, "1000", tag)), table.snapshot()) == 3
        assert count(ProcessSpec("t", (name, "1000")), table.snapshot()) == 0
        assert count(ProcessSpec("t", (name, "1000"), param_match="initial"), table.snapshot()) == 3
        assert (
            count(ProcessSpec("t", (str(tmp_path / name),), full_command=True), table.snapshot())
            == 3
        )
        procs[0].kill()
        procs[0].wait()
        assert count(ProcessSpec("t", (name,)), table.snapshot()) == 2
        zombie = subprocess.Popen([str(tmp_path / name), "1000", tag])
        assert count(ProcessSpec("t", (name,)), table.snapshot()) == 3
        zombie.kill()  # killed, not reaped: a zombie
        wait_until(
            lambda: _state(zombie.pid) == "Z", 5, message="the killed process to be a zombie"
        )
        assert count(ProcessSpec("t", (name,)), table.snapshot()) == 2
        zombie.wait()


def test_process_check_quorum_with_delays(tmp_path: Path) -> None:
    name = f"pk-{secrets.token_hex(4)}"
    spec = ProcessSpec(
        "proc", (name,), quorum=2, quorum_max=3, fork_delay=0.3, terminate_delay=0.4, weight=10
    )
    rec = Recorder()

    def current_ok() -> bool:
        return rec.last.ok

    async def scenario() -> None:
        check = ProcessCheck(spec, table=ProcTable(max_age=0), poll_interval=0.02)
        task = asyncio.create_task(check.run(rec))
        try:
            await until(lambda: rec.verdicts, 2, "first verdict")
            assert (rec.last.ok, rec.last.count) == (False, 0)  # startup: no delay applied
            with sleepers(tmp_path, name, 2):
                await until(lambda: rec.last.count == 2, 3, "two processes seen")
                seen = asyncio.get_running_loop().time()
                assert not current_ok()  # fork_delay holds the change
                await until(lambda: rec.last.ok, 3, "quorum after fork_delay")
                assert asyncio.get_running_loop().time() - seen >= 0.25
                with sleepers(tmp_path, name, 2):  # four: above quorum_max
                    await until(lambda: rec.last.count == 4, 3, "four processes")
                    assert current_ok()  # terminate_delay holds the loss
                    await until(lambda: not rec.last.ok, 3, "quorum_max exceeded")
                await until(lambda: rec.last.ok, 3, "back to two")
            await until(lambda: rec.last.count == 0, 3, "all gone")
            last = rec.last
            assert last.ok and "delay" in last.reason  # the loss is still held back
            await until(lambda: not rec.last.ok, 3, "terminate_delay expired")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert {v.weight for v in rec.verdicts} == {10}


def test_table_reads_command_lines_only_where_they_can_match(tmp_path: Path) -> None:
    name = f"pk-{secrets.token_hex(4)}"
    tag = f"0.{secrets.randbelow(10**8):08d}"
    spec = ProcessSpec("t", (name, "1000", tag))
    table = ProcTable(max_age=0)
    with sleepers(tmp_path, name, 2, tag) as procs:
        key = table.register(spec)
        snap = table.snapshot()
        assert count(spec, snap) == 2
        ours = {p.pid for p in procs}
        assert all(p.argv == () for p in snap if p.comm != name)  # not read: cannot match
        assert all(p.argv[1:] == ("1000", tag) for p in snap if p.pid in ours)
        full = ProcessSpec("f", (str(tmp_path / name),), full_command=True)
        table.register(full)  # full_command needs every argv[0]
        assert count(full, table.snapshot()) == 2
        assert any(p.argv for p in table.snapshot() if p.comm != name)
        table.unregister(key)
