"""checkd's notify FIFOs as keepalived's checker process has them: the global ``notify_fifo``
and ``lvs_notify_fifo`` both written, their reader scripts started with the FIFO's path last
and stopped with it, kept across a reload that leaves them alone (docs/checkers.md, "Actions";
docs/operations.md, "Notify FIFOs"). Real FIFOs, real reader scripts."""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import core
from checkd.lvs_service import LvsService
from checkd.pool_actions import ActionRunner
from checkd.pool_messages import FifoLine
from tests.checkd.support import FakePublisher, open_dir, until, write_script

VS = "[192.0.2.10]:tcp:80"
RS_DOWN = f"RS [198.51.100.1]:tcp:80 {VS} DOWN\n"
VS_DOWN = f"VS {VS} DOWN\n"

# keepalived's reader contract: the FIFO is the last argument. The first names the reader, so
# one script serves every FIFO of a test.
READER = """label=$1
for fifo; do :; done
printf '%s\\n' "$@" > {out}/$label.args
echo $$ > {out}/$label.pid
while read -r line; do echo "$line" >> {out}/$label.lines; done < "$fifo"
"""

LOGS = list[MutableMapping[str, Any]]


@pytest.fixture
def tmp() -> Iterator[Path]:
    with open_dir() as path:
        yield path


def _reader(tmp: Path) -> Path:
    out = tmp / "out"
    out.mkdir()
    return write_script(tmp, "reader.sh", READER.format(out=out))


def _config(global_defs: str, vs: str = "") -> core.Config:
    vs = vs or (
        "virtual_server 192.0.2.10 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n"
        " real_server 198.51.100.1 80 {\n }\n}\n"
    )
    return core.loads(f"global_defs {{\n{global_defs}\n}}\n{vs}", script_env=None).config


def _lines(tmp: Path, label: str) -> list[str]:
    path = tmp / "out" / f"{label}.lines"
    return path.read_text().splitlines() if path.exists() else []


def _pid(tmp: Path, label: str) -> int | None:
    path = tmp / "out" / f"{label}.pid"
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_lines_go_to_both_fifos_each_reader_gets_its_path_last_and_stops_with_checkd(
    tmp: Path,
) -> None:
    reader = _reader(tmp)
    g, lvs = tmp / "global.fifo", tmp / "lvs.fifo"
    config = _config(
        f'notify_fifo {g}\nnotify_fifo_script "{reader} global"\n'
        f'lvs_notify_fifo {lvs}\nlvs_notify_fifo_script "{reader} lvs"'
    )

    async def scenario() -> tuple[int, int, LOGS]:
        # No vrrpd beside it (-C): checkd starts the global FIFO's reader too.
        runner = ActionRunner(with_vrrpd=False)
        with capture_logs() as logs:
            runner.configure(config)
            for path in (g, lvs):
                # keepalived's mkfifo mode, less the umask
                umask = os.umask(0)
                os.umask(umask)
                assert stat.S_ISFIFO(path.stat().st_mode)
                assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~umask
            runner.perform([FifoLine(RS_DOWN), FifoLine(VS_DOWN)])
            want = [RS_DOWN.strip(), VS_DOWN.strip()]
            await until(lambda: _lines(tmp, "global") == want, 10, "both lines, global FIFO")
            await until(lambda: _lines(tmp, "lvs") == want, 10, "both lines, LVS FIFO")
            pids = _pid(tmp, "global"), _pid(tmp, "lvs")
            assert pids[0] is not None and pids[1] is not None
            await runner.stop()
        return pids[0], pids[1], logs

    global_pid, lvs_pid, logs = asyncio.run(scenario())
    assert (tmp / "out" / "global.args").read_text().splitlines() == ["global", str(g)]
    assert (tmp / "out" / "lvs.args").read_text().splitlines() == ["lvs", str(lvs)]
    # Stopped with the FIFOs, which were created here and so are removed.
    assert _gone(global_pid) and _gone(lvs_pid)
    assert not g.exists() and not lvs.exists()
    started = [e for e in logs if e["event"] == "checkd.script.start"]
    assert {(e["script"], e["fifo"]) for e in started} == {
        ("notify_fifo_script", str(g)),
        ("lvs_notify_fifo_script", str(lvs)),
    }
    closed = [e for e in logs if e["event"] == "checkd.fifo.closed"]
    assert {(e["keyword"], e["removed"]) for e in closed} == {
        ("notify_fifo", True),
        ("lvs_notify_fifo", True),
    }
    assert not [e for e in logs if e["event"] == "checkd.fifo.line"]


def test_the_lvs_fifo_at_the_global_path_is_one_fifo_and_lines_are_keepalived_bytes(
    tmp: Path,
) -> None:
    path = tmp / "events.fifo"
    config = _config(f"notify_fifo {path}\nlvs_notify_fifo {path}\nlvs_notify_fifo_script /bin/cat")

    async def scenario() -> bytes:
        runner = ActionRunner(with_vrrpd=False)
        runner.configure(config)
        assert list(runner.fifos.channels) == [str(path)]
        assert runner.fifos.channels[str(path)].reader is None  # the LVS script went with it
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            runner.perform([FifoLine(RS_DOWN), FifoLine(VS_DOWN)])
            data = os.read(reader, 4096)
        finally:
            os.close(reader)
            await runner.stop()
        return data

    # Once each (not doubled), newline-terminated and nothing more: keepalived's released
    # checker writes exactly these bytes (docs/checkers.md, "Notifications").
    assert asyncio.run(scenario()) == (RS_DOWN + VS_DOWN).encode()


def test_a_reload_keeps_an_unchanged_fifo_and_replaces_a_changed_one(tmp: Path) -> None:
    reader = _reader(tmp)
    g, lvs1, lvs2 = tmp / "global.fifo", tmp / "lvs1.fifo", tmp / "lvs2.fifo"
    head = f'notify_fifo {g}\nnotify_fifo_script "{reader} global"\n'
    first = _config(f'{head}lvs_notify_fifo {lvs1}\nlvs_notify_fifo_script "{reader} lvs1"')
    second = _config(f'{head}lvs_notify_fifo {lvs2}\nlvs_notify_fifo_script "{reader} lvs2"')

    async def scenario() -> None:
        runner = ActionRunner(with_vrrpd=False)
        runner.configure(first)
        await until(lambda: _pid(tmp, "global") and _pid(tmp, "lvs1"), 10, "both readers")
        global_pid, lvs1_pid = _pid(tmp, "global"), _pid(tmp, "lvs1")
        assert global_pid is not None and lvs1_pid is not None
        kept = runner.fifos.channels[str(g)]
        inode = g.stat().st_ino

        runner.configure(second)
        # The unchanged global FIFO and its reader carry on; the old LVS FIFO is gone at once
        # and its reader is stopped; the new one has its own.
        assert runner.fifos.channels[str(g)] is kept and g.stat().st_ino == inode
        assert not lvs1.exists() and stat.S_ISFIFO(lvs2.stat().st_mode)
        await until(lambda: _gone(lvs1_pid), 10, "the old LVS reader to stop")
        await until(lambda: _pid(tmp, "lvs2"), 10, "the new LVS reader")
        runner.perform([FifoLine(RS_DOWN)])
        await until(lambda: _lines(tmp, "lvs2") == [RS_DOWN.strip()], 10, "the new LVS FIFO")
        await until(lambda: _lines(tmp, "global") == [RS_DOWN.strip()], 10, "the global FIFO")
        assert not _gone(global_pid)

        # The same configuration again changes nothing.
        lvs2_pid = _pid(tmp, "lvs2")
        runner.configure(second)
        assert runner.fifos.channels[str(g)] is kept and _pid(tmp, "lvs2") == lvs2_pid

        # A reload that leaves no virtual server closes them all (keepalived runs no checker).
        runner.configure(_config(head, vs="vrrp_script s {\n script /bin/true\n}\n"))
        assert not runner.fifos and not g.exists() and not lvs2.exists()
        await until(lambda: _gone(global_pid), 10, "the global reader to stop")
        await runner.stop()

    asyncio.run(scenario())
    assert _lines(tmp, "lvs1") == []


def test_a_path_that_is_not_a_fifo_checkd_owns_is_refused_and_left_alone(tmp: Path) -> None:
    planted = tmp / "planted"
    planted.write_text("not a FIFO\n")
    g = tmp / "global.fifo"
    refused = [planted]
    if os.geteuid() == 0:
        # A FIFO someone else owns: keepalived refuses it too (it may have been planted).
        other = tmp / "other.fifo"
        os.mkfifo(other)
        nobody = pwd.getpwnam("nobody")
        os.chown(other, nobody.pw_uid, nobody.pw_gid)
        refused.append(other)

    async def scenario(bad: Path) -> LOGS:
        runner = ActionRunner(with_vrrpd=False)
        with capture_logs() as logs:
            runner.configure(_config(f"notify_fifo {g}\nlvs_notify_fifo {bad}"))
            assert list(runner.fifos.channels) == [str(g)]
            reader = os.open(g, os.O_RDONLY | os.O_NONBLOCK)
            try:
                runner.perform([FifoLine(RS_DOWN)])
                assert os.read(reader, 4096) == RS_DOWN.encode()  # the other FIFO works
            finally:
                os.close(reader)
                await runner.stop()
        return logs

    for bad in refused:
        before = bad.stat()
        logs = asyncio.run(scenario(bad))
        (failed,) = [e for e in logs if e["event"] == "checkd.fifo.failed"]
        assert failed["keyword"] == "lvs_notify_fifo" and failed["fifo"] == str(bad)
        after = bad.stat()
        assert (after.st_ino, after.st_mode, after.st_uid) == (
            before.st_ino,
            before.st_mode,
            before.st_uid,
        )
    assert planted.read_text() == "not a FIFO\n"


def test_a_real_server_going_down_reaches_the_lvs_fifo_reader(tmp: Path) -> None:
    """From a real probe to the reader: the pool's RS line goes through the FIFO checkd opens."""
    reader = _reader(tmp)
    lvs = tmp / "lvs.fifo"

    async def scenario() -> None:
        real = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = real.sockets[0].getsockname()[1]
        conf = _config(
            f'lvs_notify_fifo {lvs}\nlvs_notify_fifo_script "{reader} lvs"',
            vs=(
                "virtual_server 192.0.2.10 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n"
                f" quorum 1\n real_server 127.0.0.1 {port} {{\n"
                "  TCP_CHECK {\n   connect_timeout 1\n   delay_loop 0.1\n   retry 0\n  }\n"
                " }\n}\n"
            ),
        )
        service = LvsService(FakePublisher(), actions=ActionRunner())
        assert service.apply_model(core.to_wire(conf), 1)
        service.start()
        try:
            await until(lambda: service.runner.last, 10, "a first probe")
            real.close()
            await real.wait_closed()
            rs = f"RS [127.0.0.1]:tcp:{port} {VS} DOWN"
            await until(lambda: rs in _lines(tmp, "lvs"), 10, "the RS line at the reader")
            await until(lambda: f"VS {VS} DOWN" in _lines(tmp, "lvs"), 10, "the VS line")
        finally:
            real.close()
            await service.stop()
        assert not lvs.exists()

    asyncio.run(scenario())
