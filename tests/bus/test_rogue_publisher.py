"""A rogue local publisher on a running daemon's bus, and where secrets must never show.

The bus is root-only (tests/ctl/test_bus_access.py), so the rogue here is a root process:
garbage, oversized and forged frames are dropped, counted and logged by reason
(docs/bus.md: Subscribing), a forged verdict for a check checkd runs is refused and logged with
the sender its envelope names (vrrpd.verdicts), and every component keeps running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from bus import RuntimeDir, Subscriber
from ctl.snapshot import collect
from tests.daemon import JSON_LOGS, REPO, DaemonGroup, daemon_group, raw_publisher
from tests.lab import Lab, wait_until

pytestmark = pytest.mark.netns

VIP = "192.0.2.77/24"
SECRET = "Zq7secrt"
NEW_SECRET = "Kw4secrt"


def config(password: str) -> str:
    return f"""
global_defs {{
    router_id rogue
    enable_script_security
    script_user root
}}
vrrp_script chk_own {{
    script "/bin/true"
    interval 1
    weight -50
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 77
    priority 200
    advert_int 1
    version 2
    authentication {{
        auth_type PASS
        auth_pass {password}
    }}
    virtual_ipaddress {{
        {VIP}
    }}
    track_script {{
        chk_own
    }}
}}
"""


def instance(group: DaemonGroup) -> dict[str, Any]:
    return asyncio.run(collect(group.runtime)).instances.get("VI_1", {})


@pytest.fixture
def group(lab: Lab, tmp_path: Path) -> Iterator[DaemonGroup]:
    n0 = lab.node(0)
    # keepalived.data/.json go to $TMPDIR: this test's own directory
    with daemon_group(n0, config(SECRET), env={"TMPDIR": str(tmp_path), **JSON_LOGS}) as g:
        g.wait_started()
        wait_until(lambda: VIP in n0.address_set(), 30, message="the VIP")
        wait_until(
            lambda: instance(g).get("priority") == 200 and instance(g).get("state") == "MASTER",
            15,
            message="MASTER at 200 with checkd's verdict",
        )
        yield g


def envelope(src: str, seq: int) -> dict[str, Any]:
    return {"v": 1, "src": src, "pid": 4242, "boot": "rogueboot", "seq": seq, "ts": time.time()}


def test_garbage_oversized_and_forged_frames_leave_the_daemon_running(
    lab: Lab, group: DaemonGroup
) -> None:
    pids = group.pids()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = raw_publisher(ctx, group.runtime, b"health.chk_own")
    try:
        for frames in (
            [b"health.chk_own"],  # frames
            [b"health.\xff\xfe", b"x"],  # topic
            [b"health.chk_own", b"\xc1\xc1"],  # msgpack
            [b"health.chk_own", msgpack.packb([1, 2])],  # payload
            [b"health.chk_own", msgpack.packb({"name": "chk_own"})],  # envelope
            [b"health.chk_own", bytes(17 * 1024 * 1024)],  # size
        ):
            sock.send_multipart(frames)
        for seq in range(1, 4):  # forged verdicts: checkd's check, and under another topic
            forged = {**envelope("rogue", seq), "name": "chk_own", "ok": False}
            sock.send_multipart([b"health.chk_own", msgpack.packb(forged)])
            sock.send_multipart([b"health.chk_x", msgpack.packb(forged)])
    finally:
        sock.close()
        ctx.term()
    wait_until(
        lambda: (
            "vrrpd.health.refused" in group.log_text()
            and all(f'"reason": "{r}"' in group.log_text() for r in ("msgpack", "size", "topic"))
        ),
        15,
        message="the drops and the refusal to be logged",
    )
    refused = [
        json.loads(line)
        for line in group.log_text().splitlines()
        if '"vrrpd.health.refused"' in line
    ]
    assert {(r["src"], r["pid"]) for r in refused} == {("rogue", 4242)}
    # The forged "failed" verdict changed nothing: checkd's verdict still holds.
    assert instance(group)["priority"] == 200
    assert VIP in lab.node(0).address_set()
    assert group.pids() == pids
    assert "Traceback" not in group.log_text()


def ctl(group: DaemonGroup, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ctl", "--runtime-dir", str(group.runtime.path), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    return out.stdout + out.stderr


async def bus_bodies(runtime: RuntimeDir, seconds: float) -> dict[str, str]:
    """Every topic's latest body (as JSON text) heard within ``seconds`` (retained ones at once)."""
    import zmq.asyncio

    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, runtime, ["*"])
    sub.start()
    seen: dict[str, str] = {}
    try:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                batch = await asyncio.wait_for(sub.recv_batch(), left)
            except TimeoutError:
                break
            for event in batch:
                seen[event.topic] = json.dumps(event.body, default=str)
    finally:
        sub.close()
        ctx.term()
    return seen


def test_the_password_is_in_no_log_status_dump_or_bus_message(lab: Lab, group: DaemonGroup) -> None:
    # A reload that changes it, and every dump the daemon writes.
    group.config.write_text(config(NEW_SECRET))
    group.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "vrrpd.instance.updated" in group.log_text(), 20, message="the reload")
    group.proc.send_signal(signal.SIGUSR1)
    group.proc.send_signal(signal.SIGRTMIN + 2)
    wait_until(lambda: group.log_text().count('"vrrpd.dump"') >= 2, 10, message="the dumps")
    dumps = [
        Path(json.loads(line)["file"]).read_text()
        for line in group.log_text().splitlines()
        if '"vrrpd.dump"' in line
    ]
    places = {
        "log": group.log_text(),
        "status": ctl(group, "status", "--json") + ctl(group, "status"),
        "dump": ctl(group, "dump"),
        "data dumps": "\n".join(dumps),
    }
    bodies = asyncio.run(bus_bodies(group.runtime, 3))
    assert "vrrp.state.VI_1" in bodies and "config.current" in bodies
    # vrrpd needs the password and gets the configuration from core over the (root-only)
    # bus: config.current carries it, and only it (docs/reliability.md).
    places.update({f"bus {t}": b for t, b in bodies.items() if t != "config.current"})
    for secret in (SECRET, NEW_SECRET):
        leaks = [where for where, text in places.items() if secret in text]
        assert leaks == [], secret
