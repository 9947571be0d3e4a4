"""The notify FIFO's reader script (``vrrp_notify_fifo_script``), run as keepalived runs it."""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
from pathlib import Path

import pytest

from core import Config, loads, vrrp_fifos
from scripts import FifoChannel
from tests.daemon import short_tmpdir
from tests.lab import wait_until

NOBODY = pwd.getpwnam("nobody")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def _config(text: str) -> Config:
    return loads(text, script_env=None).config


def _reader(tmp: Path) -> tuple[Path, Path]:
    out = tmp / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    script = tmp / "reader.sh"
    # keepalived's sample reader: the FIFO path is the last argument.
    script.write_text(
        f'#!/bin/sh\nid -u > {out}/uid\nwhile read -r line; do echo "$line" >> {out}/lines; '
        'done < "$1"\n'
    )
    script.chmod(0o755)
    return script, out


def test_reader_gets_the_fifo_path_runs_as_its_user_and_is_stopped_with_the_fifo() -> None:
    tmp = short_tmpdir()
    tmp.chmod(0o755)
    script, out = _reader(tmp)
    fifo = tmp / "events.fifo"
    config = _config(
        f"""
global_defs {{
    script_user nobody
    enable_script_security
    vrrp_notify_fifo {fifo} nobody
    vrrp_notify_fifo_script {script}
}}
"""
    )
    (setup,) = vrrp_fifos(config)
    assert setup.reader is not None
    assert setup.reader.user == "nobody"

    async def scenario() -> None:
        channel = FifoChannel(setup, "vrrpd")
        # Created with keepalived's mode (0644 less the umask) and given to the FIFO's user,
        # so the unprivileged reader can open it.
        st = fifo.stat()
        assert stat.S_ISFIFO(st.st_mode) and st.st_uid == NOBODY.pw_uid
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(st.st_mode) == 0o644 & ~umask
        channel.write('INSTANCE "VI_1" BACKUP 100\n')
        channel.write('INSTANCE "VI_1" MASTER 100\n')
        lines = out / "lines"
        await asyncio.to_thread(
            wait_until, lambda: lines.exists() and lines.read_text().count("\n") == 2, 10
        )
        assert (out / "uid").read_text().strip() == str(NOBODY.pw_uid)
        assert channel.reader is not None and not channel.reader.done()
        await channel.close()

    asyncio.run(scenario())
    assert (out / "lines").read_text().splitlines() == [
        'INSTANCE "VI_1" BACKUP 100',
        'INSTANCE "VI_1" MASTER 100',
    ]
    assert not fifo.exists()  # created here, so removed at close
    # The reader went with the FIFO: nothing of it is left running.
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert str(script).encode() not in cmdline, f"reader still running as pid {pid}"


def test_unsafe_reader_is_refused_and_the_fifo_still_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tmp = short_tmpdir()
    tmp.chmod(0o777)  # anyone could replace the script: root must not run it
    script, out = _reader(tmp)
    fifo = tmp / "events.fifo"
    config = _config(
        f"""
global_defs {{
    script_user root
    enable_script_security
    notify_fifo {fifo}
    notify_fifo_script {script}
}}
"""
    )
    (setup,) = vrrp_fifos(config)

    async def scenario() -> None:
        channel = FifoChannel(setup, "vrrpd")
        assert channel.reader is not None
        await asyncio.wait_for(channel.reader, 5)  # refused at once, not started
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            channel.write('INSTANCE "VI_1" FAULT 0\n')
            assert os.read(reader, 100) == b'INSTANCE "VI_1" FAULT 0\n'
        finally:
            os.close(reader)
        await channel.close()

    asyncio.run(scenario())
    assert not (out / "uid").exists()


def test_both_fifos_each_with_its_own_reader_as_keepalived_s_vrrp_process() -> None:
    config = _config(
        """
global_defs {
    notify_fifo /run/a.fifo
    notify_fifo_script /bin/cat
    vrrp_notify_fifo /run/b.fifo
}
"""
    )
    glob, vrrp = vrrp_fifos(config)
    assert glob.path == "/run/a.fifo" and glob.reader is not None
    assert glob.reader.command == "/bin/cat"
    assert vrrp.path == "/run/b.fifo" and vrrp.reader is None
    assert vrrp_fifos(_config("global_defs {\n}\n")) == ()


def test_a_vrrp_fifo_at_the_global_path_is_dropped_with_its_reader() -> None:
    config = _config(
        """
global_defs {
    notify_fifo /run/a.fifo
    vrrp_notify_fifo /run/a.fifo
    vrrp_notify_fifo_script /bin/cat
}
"""
    )
    (only,) = vrrp_fifos(config)
    assert only.keyword == "notify_fifo" and only.reader is None
