"""checkd as a real process on a real bus: config.current in, health.<name> verdicts out."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import zmq.asyncio

from bus import Publisher, RuntimeDir, Subscriber
from bus.envelope import Event
from tests.checkd import wire
from tests.checkd.support import pid_alive, write_script
from tests.daemon import (
    JSON_LOGS,
    connected,
    next_event,
    python_module,
    running_bus,
    runtime_dir,
    stop,
)
from tests.lab import wait_until


def _config(generation: int, model: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()
    return {
        "generation": generation,
        "hash": digest,
        "path": "/etc/keepalived/keepalived.conf",
        "model": model,
        "diff": {},
        "reason": "test",
    }


def _is(name: str, **fields: Any) -> Any:
    def predicate(event: Event) -> bool:
        return event.topic == f"health.{name}" and all(
            event.body.get(k) == v for k, v in fields.items()
        )

    return predicate


def test_checkd_publishes_and_follows_verdicts(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    script = write_script(tmp_path, "chk.sh", f"test -e {flag}")
    track = tmp_path / "track"
    proc_name = f"pk-{secrets.token_hex(4)}"
    sleeper = tmp_path / proc_name
    shutil.copy(shutil.which("sleep") or "/bin/sleep", sleeper)
    chk = wire.script("chk_flag", str(script), interval=0.2, fall=1, rise=1)
    tf = {"name": "tf", "file": str(track), "weight": 2, "init_file": {"value": 0}}
    pr = {"name": "pr", "process": [proc_name]}
    first = wire.tracking_all(scripts=[chk], files=[tf], processes=[pr])
    second = wire.tracking_all(scripts=[chk], processes=[pr])  # tf removed

    with runtime_dir() as rt, running_bus(rt):
        log_path = tmp_path / "checkd.log"
        with log_path.open("wb") as log_file:
            checkd = python_module(
                "checkd",
                "--runtime-dir",
                str(rt.path),
                env=JSON_LOGS,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                asyncio.run(_scenario(rt, flag, track, sleeper, first, second))
                checkd.send_signal(signal.SIGUSR1)  # keepalived's data dump signal
                wait_until(lambda: "checkd.dump" in log_path.read_text(), 5, message="the dump")
            finally:
                code = stop(checkd)
        text = log_path.read_text()
        assert code == 0, text
        assert "checkd.script.result" in text and "checkd.config.applied" in text
        dumps = [json.loads(line) for line in text.splitlines() if '"checkd.dump"' in line]
        assert {d["name"] for d in dumps} == {"chk_flag", "pr"}


class Verdicts:
    """Every health verdict received, so waits never lose one that arrived in another order."""

    def __init__(self, sub: Subscriber) -> None:
        self.sub = sub
        self.history: list[Event] = []
        self.latest: dict[str, dict[str, Any]] = {}

    async def pump(self) -> None:
        while True:
            for event in await self.sub.recv_batch():
                self.history.append(event)
                self.latest[event.topic] = event.body

    async def wait(self, name: str, timeout: float = 5, **fields: Any) -> dict[str, Any]:
        """The first verdict for ``name`` with ``fields`` since the last wait for ``name``."""
        match = _is(name, **fields)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.history:
                if match(event):
                    self.history.remove(event)
                    return event.body
            if loop.time() > deadline:
                raise AssertionError(f"no health.{name} with {fields}; latest={self.latest}")
            await asyncio.sleep(0.01)

    async def wait_log(self, event: str, timeout: float = 5, **fields: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(
            e.topic == "log.checkd"
            and e.body["event"] == event
            and all(e.body.get(k) == v for k, v in fields.items())
            for e in self.history
        ):
            if loop.time() > deadline:
                raise AssertionError(f"checkd did not log {event} {fields}")
            await asyncio.sleep(0.01)

    def forget_history(self) -> None:
        self.history.clear()


def _touch(path: Path) -> None:
    path.touch()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _read(path: Path) -> str:
    return path.read_text()


def _unlink(path: Path) -> None:
    path.unlink()


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv)


async def _scenario(
    rt: RuntimeDir,
    flag: Path,
    track: Path,
    sleeper: Path,
    first: dict[str, Any],
    second: dict[str, Any],
) -> None:
    ctx = zmq.asyncio.Context()
    core = Publisher(ctx, rt, "core")
    core.start()
    sub = Subscriber(ctx, rt, ["health.*", "log.checkd"])
    sub.start()
    verdicts = Verdicts(sub)
    pump = asyncio.create_task(verdicts.pump())
    try:
        await connected(sub, ctx, rt, "health.chk_flag")
        # Retained like core does: checkd gets it when its subscription reaches us.
        core.retain("config.current", _config(1, first))

        body = await verdicts.wait("chk_flag", 15)
        assert (body["ok"], body["kind"], body["rc"]) == (False, "script", 1)
        body = await verdicts.wait("tf")
        assert (body["value"], body["ok"], body["weight"], body["kind"]) == (0, True, 2, "file")
        assert _read(track).strip() == "0"  # init_file created it
        body = await verdicts.wait("pr")
        assert (body["count"], body["ok"], body["kind"]) == (0, False, "process")

        _touch(flag)
        body = await verdicts.wait("chk_flag", ok=True)
        assert body["rc"] == 0
        _write(track, "-127\n")
        body = await verdicts.wait("tf", value=-127)
        assert body["ok"] is False  # -127 x 2 < -253
        proc = _spawn([str(sleeper), "1000"])
        try:
            await verdicts.wait("pr", ok=True, count=1)
        finally:
            proc.kill()
            proc.wait()
        await verdicts.wait("pr", ok=False, count=0)

        # Reload: tf goes away; the passing script is not reset (no failed verdict appears).
        verdicts.forget_history()
        core.retain("config.current", _config(2, second))
        await verdicts.wait_log("checkd.config.applied", generation=2)
        late = Subscriber(ctx, rt, ["health.*"])
        late.start()
        late_verdicts = Verdicts(late)
        late_pump = asyncio.create_task(late_verdicts.pump())
        try:
            # A late joiner gets the retained verdicts at once.
            await late_verdicts.wait("chk_flag", ok=True)
            await late_verdicts.wait("pr", ok=False)
            await asyncio.sleep(0.6)  # a few script runs after the reload
            assert "health.tf" not in late_verdicts.latest  # removed checks are forgotten
            assert all(e.body["ok"] for e in verdicts.history if e.topic == "health.chk_flag")
        finally:
            late_pump.cancel()
            late.close()
        # An unchanged verdict is re-sent on a timer all the same: vrrpd takes a verdict
        # nobody re-sends for a while as a dead checker (docs/bus.md).
        heard = Subscriber(ctx, rt, ["health.pr"])
        heard.start()
        try:
            await next_event(heard, lambda e: True, 5)  # the copy a joiner gets
            again = await next_event(heard, lambda e: True, 15)  # the timer's
            assert (again.body["ok"], again.body["count"]) == (False, 0)
        finally:
            heard.close()
        _unlink(flag)
        await verdicts.wait("chk_flag", ok=False)
    finally:
        pump.cancel()
        sub.close()
        await core.close()
        ctx.term()


def test_stopping_or_killing_checkd_takes_its_scripts_along(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    slow = write_script(tmp_path, "slow.sh", f"echo $$ > {pidfile}; exec sleep 1000")
    model = wire.tracking_all(scripts=[wire.script("slow", str(slow), interval=100)])

    async def script_pid() -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert loop.time() < deadline, "the script never started"
            await asyncio.sleep(0.02)
        pid = int(pidfile.read_text())
        pidfile.unlink()
        return pid

    async def gone(pid: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while pid_alive(pid):
            assert loop.time() < deadline, f"script {pid} outlived checkd"
            await asyncio.sleep(0.02)

    async def scenario(rt: RuntimeDir) -> None:
        ctx = zmq.asyncio.Context()
        core = Publisher(ctx, rt, "core")
        core.start()
        core.retain("config.current", _config(1, model))
        try:
            # Orderly stop (SIGTERM): the running script is terminated before checkd exits.
            checkd = python_module("checkd", "--runtime-dir", str(rt.path))
            pid = await script_pid()
            assert stop(checkd) == 0
            assert not pid_alive(pid)
            # kill -9: no cleanup code runs, PDEATHSIG takes the script down.
            checkd = python_module("checkd", "--runtime-dir", str(rt.path))
            pid = await script_pid()
            checkd.kill()
            checkd.wait()
            await gone(pid)
        finally:
            await core.close()
            ctx.term()

    with runtime_dir() as rt, running_bus(rt):
        asyncio.run(scenario(rt))
