"""core, checkd and the bus as real processes: keepalived.conf in, health verdicts out."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path
from typing import Any

import zmq.asyncio

from bus import RuntimeDir, Subscriber
from tests.checkd.support import write_script
from tests.daemon import connected, python_module, running_bus, runtime_dir, stop

CONF = """
global_defs {{
    script_user root
    enable_script_security
}}
vrrp_script chk_flag {{
    script "{script}"
    interval 0.1
    rise {rise}
    fall 2
    init_fail
}}
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {{
        192.0.2.1/24
    }}
    track_script {{
        chk_flag
    }}
}}
"""


def test_verdicts_from_a_real_keepalived_conf_survive_a_reload(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    script = write_script(tmp_path, "chk.sh", f"test -e {flag}")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(script=script, rise=1))
    with runtime_dir() as rt, running_bus(rt):
        args = ("--runtime-dir", str(rt.path))
        logs = tmp_path / "procs.log"
        with logs.open("wb") as out:
            kw: dict[str, Any] = {"stdout": out, "stderr": subprocess.STDOUT}
            checkd = python_module("checkd", *args, **kw)
            core = python_module("core", "-f", str(conf), *args, **kw)
            try:
                asyncio.run(_scenario(rt, flag, conf, script, core))
            finally:
                codes = stop(core), stop(checkd)
        assert codes == (0, 0), logs.read_text()


async def _scenario(
    rt: RuntimeDir, flag: Path, conf: Path, script: Path, core: subprocess.Popen[bytes]
) -> None:
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, rt, ["health.chk_flag", "config.current"])
    sub.start()
    history: list[tuple[str, dict[str, Any]]] = []

    async def pump() -> None:
        while True:
            history.extend((e.topic, e.body) for e in await sub.recv_batch())

    async def seen(pred: Any, what: str, timeout: float = 15) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(pred(t, b) for t, b in history):
            assert loop.time() < deadline, f"never saw {what}; got {history[-5:]}"
            await asyncio.sleep(0.02)

    task = asyncio.create_task(pump())
    try:
        await connected(sub, ctx, rt, "health.chk_flag")
        await seen(lambda t, b: t == "health.chk_flag" and b["ok"] is False, "a failed verdict")
        flag.touch()  # noqa: ASYNC240
        await seen(lambda t, b: t == "health.chk_flag" and b["ok"] is True, "an OK verdict")
        # Reload with a changed rise: the check restarts but keeps its OK state (a reset would
        # publish init_fail's failed verdict and need five successes).
        conf.write_text(CONF.format(script=script, rise=5))  # noqa: ASYNC240
        history.clear()
        core.send_signal(signal.SIGHUP)
        await seen(lambda t, b: t == "config.current" and b["generation"] >= 2, "generation 2")
        await asyncio.sleep(0.5)  # several runs of the restarted check
        verdicts = [b for t, b in history if t == "health.chk_flag"]
        assert all(b["ok"] for b in verdicts), verdicts
    finally:
        task.cancel()
        sub.close()
        ctx.term()
