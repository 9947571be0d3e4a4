"""track_file: C strtol parsing, keepalived's missing/empty/out-of-range rules, live watching."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from checkd.files import FileCheck, init_file, judge, parse_value, read_value, strtol
from checkd.plan import FileSpec
from tests.checkd.support import Recorder, until

_libc = ctypes.CDLL(None)
_libc.strtol.restype = ctypes.c_long
_libc.strtol.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]

numberish = st.text(alphabet=" \t\n+-0123456789abcdefxABCDEFX.z", max_size=12)


@given(numberish)
@example("0x1F trailing")
@example("  -010")
@example("0x")
@example("08")
@example("+0xg")
def test_strtol_agrees_with_libc(text: str) -> None:
    # glibc is the independent reference for what keepalived computes.
    assert strtol(text) == _libc.strtol(text.encode(), None, 0)


def test_parse_value_rules() -> None:
    assert parse_value(b"42\n").value == 42
    assert parse_value(b"-254 fault please").value == -254
    assert parse_value(b"0x10").value == 16
    assert parse_value(b"").value == 0
    assert parse_value(b"\n\n").value == 0
    assert parse_value(b"hello").value == 0
    assert parse_value(b"2147483648").value is None  # out of int32: ignored
    assert parse_value(b"-2147483648").value == -(2**31)
    # Only the first 127 bytes count: a number starting after them is not seen.
    assert parse_value(b" " * 127 + b"5").value == 0


def test_read_value_missing_and_unreadable(tmp_path: Path) -> None:
    missing = read_value(str(tmp_path / "nope"))
    assert (missing.value, "missing" in missing.reason) == (0, True)
    as_dir = read_value(str(tmp_path))
    assert as_dir.value == 0 and "cannot read" in as_dir.reason


def test_judge_weights() -> None:
    assert judge(0, 0, False) and not judge(3, 0, False)  # weight 0: non-zero fails
    assert judge(-253, 1, False) and not judge(-254, 1, False)
    assert not judge(127, 2, True)  # reverse: 127 x -2 = -254
    assert judge(-100, 2, False)


def test_init_file_create_keep_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    init_file(FileSpec("tf", str(path), init_value=7))
    assert path.read_text().strip() == "7"
    path.write_text("3\n")
    init_file(FileSpec("tf", str(path), init_value=9))
    assert path.read_text().strip() == "3"  # exists, no overwrite
    init_file(FileSpec("tf", str(path), init_value=9, init_overwrite=True))
    assert path.read_text().strip() == "9"


def test_file_check_follows_changes(tmp_path: Path) -> None:
    path = tmp_path / "prio"
    spec = FileSpec("tf1", str(path), weight=1, init_value=0)
    rec = Recorder()

    async def scenario() -> None:
        check = FileCheck(spec, poll_interval=0.02, reread_interval=60)
        task = asyncio.create_task(check.run(rec))
        try:
            await until(lambda: rec.verdicts, 2, "first verdict")
            assert (rec.last.value, rec.last.ok) == (0, True)
            path.write_text("20\n")
            await until(lambda: rec.last.value == 20, 2, "value 20")
            assert rec.last.ok is True
            # Replaced by rename (how config tools write files): a new inode is noticed.
            tmp = tmp_path / "prio.new"
            tmp.write_text("-254\n")
            os.replace(tmp, path)
            await until(lambda: rec.last.value == -254, 2, "value -254")
            last = rec.last
            assert not last.ok and last.kind == "file"
            path.unlink()
            await until(lambda: rec.last.value == 0, 2, "missing file reads as 0")
            assert "missing" in rec.last.reason
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


def test_out_of_range_keeps_previous_value(tmp_path: Path) -> None:
    path = tmp_path / "v"
    path.write_text("5")
    check = FileCheck(FileSpec("v", str(path)))
    assert check.observe().value == 5
    path.write_text("99999999999")
    kept = check.observe()
    assert kept.value == 5 and "ignored" in kept.reason


def test_init_file_is_not_reapplied_on_reload(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    spec = FileSpec("tf", str(path), init_value=1, init_overwrite=True)
    rec = Recorder()

    async def run_briefly(check: FileCheck) -> None:
        task = asyncio.create_task(check.run(rec))
        await until(lambda: rec.verdicts, 2, "a verdict")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run_briefly(FileCheck(spec)))
    assert rec.last.value == 1
    path.write_text("42\n")  # the operator's value since start
    rec.verdicts.clear()
    asyncio.run(run_briefly(FileCheck(spec)))
    assert rec.last.value == 1  # a fresh start (no previous verdict) re-initialises
    path.write_text("42\n")
    previous = rec.last
    rec.verdicts.clear()
    asyncio.run(run_briefly(FileCheck(spec, previous=previous)))
    assert rec.last.value == 42  # a reload restart keeps the operator's value
