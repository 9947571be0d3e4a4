"""docs/bus.md, "Staleness": an ``init_fail`` vrrp_script starts failed when the node starts
(keepalived's meaning), but checkd killed and restarted alone starts it from the verdict vrrpd
still holds (checkd.resume): the instance's priority never moves for the restart."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq.asyncio

from bus import Subscriber
from bus.envelope import Event
from tests.checkd.support import open_dir, write_script
from tests.daemon import DaemonGroup, daemon_group, next_event
from tests.lab import Lab

pytestmark = pytest.mark.netns


def config(script: Path) -> str:
    # rise 2: after init_fail a single success is not enough to pass
    return f"""
global_defs {{
    router_id restart1
    enable_script_security
    script_user root
}}
vrrp_script chk {{
    script "{script}"
    interval 1
    timeout 60
    rise 2
    fall 2
    weight -20
    init_fail
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority 150
    advert_int 1
    virtual_ipaddress {{
        192.0.2.61/24
    }}
    track_script {{
        chk
    }}
}}
"""


Match = Callable[[Event], bool]


def _verdict(pid: int | None = None, **fields: object) -> Match:
    def match(event: Event) -> bool:
        if event.topic != "health.chk" or (pid is not None and event.env.pid != pid):
            return False
        return all(event.body.get(k) == v for k, v in fields.items())

    return match


def _priority(value: int) -> Match:
    return lambda e: e.topic == "vrrp.state.VI_1" and e.body["priority"] == value


async def scenario(group: DaemonGroup, flag: Path) -> None:
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, group.runtime, ["health.chk", "vrrp.state.VI_1"])
    sub.start()
    try:
        # First start: failed (init_fail) while the first run waits for the flag.
        first = await next_event(sub, _verdict(ok=False, reason="init_fail"), 20)
        await next_event(sub, _priority(130), 10)
        flag.touch()  # noqa: ASYNC240
        await next_event(sub, _verdict(pid=first.env.pid, ok=True, rc=0), 10)  # two successes
        await next_event(sub, _priority(150), 10)
        # Runs from now on wait again; checkd goes on re-sending its last verdict meanwhile.
        flag.unlink()  # noqa: ASYNC240
        os.kill(first.env.pid, signal.SIGKILL)
        seen: list[Event] = []

        def recording(match: Match) -> Match:
            def record(event: Event) -> bool:
                seen.append(event)
                return match(event) and event.env.pid != first.env.pid

            return record

        await next_event(sub, recording(_verdict()), 10)  # the new checkd's first word
        flag.touch()  # noqa: ASYNC240 (its first run passes)
        await next_event(sub, recording(_verdict(ok=True, rc=0)), 10)
        from_new = [e.body for e in seen if e.topic == "health.chk" and e.env.pid != first.env.pid]
        priorities = [e.body["priority"] for e in seen if e.topic == "vrrp.state.VI_1"]
        assert set(priorities) <= {150}, priorities
        assert all(body["ok"] for body in from_new), from_new
        assert from_new[0]["reason"] == "resumed"
    finally:
        sub.close()
        ctx.term()


def test_a_restarted_checkd_does_not_fail_a_passing_init_fail_script(lab: Lab) -> None:
    with open_dir() as scripts:
        flag = scripts / "flag"
        script = write_script(scripts, "wait.sh", f"while [ ! -e {flag} ]; do sleep 0.05; done")
        with daemon_group(lab.node(0), config(script)) as group:
            group.wait_started()
            asyncio.run(scenario(group, flag))


def file_config(path: Path) -> str:
    return f"""
global_defs {{
    router_id restart2
}}
vrrp_track_file tf {{
    file "{path}"
    init_file 0 overwrite
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 62
    priority 150
    advert_int 1
    virtual_ipaddress {{
        192.0.2.62/24
    }}
    track_file {{
        tf weight 1
    }}
}}
"""


async def file_scenario(group: DaemonGroup, path: Path) -> None:
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, group.runtime, ["health.tf", "vrrp.state.VI_1"])
    sub.start()

    def value(v: int, pid: int | None = None) -> Match:
        def match(e: Event) -> bool:
            return e.topic == "health.tf" and e.body.get("value") == v and e.env.pid != pid

        return match

    try:
        # First start: init_file wrote 0; then the operator writes 5.
        first = await next_event(sub, value(0), 20)
        await next_event(sub, _priority(150), 10)
        path.write_text("5\n")  # noqa: ASYNC240
        await next_event(sub, value(5), 10)
        await next_event(sub, _priority(155), 10)
        os.kill(first.env.pid, signal.SIGKILL)
        seen: list[Event] = []

        def from_new_checkd(event: Event) -> bool:
            seen.append(event)
            return event.topic == "health.tf" and event.env.pid != first.env.pid

        restarted = await next_event(sub, from_new_checkd, 10)
        assert restarted.body["value"] == 5, restarted.body
        assert path.read_text().strip() == "5"  # noqa: ASYNC240
        priorities = [e.body["priority"] for e in seen if e.topic == "vrrp.state.VI_1"]
        assert set(priorities) <= {155}, priorities
    finally:
        sub.close()
        ctx.term()


def test_a_restarted_checkd_does_not_init_a_track_file_again(lab: Lab) -> None:
    """``init_file 0 overwrite`` applies when the node starts; checkd restarted alone must not
    clobber the value the operator wrote since (the instance's priority would drop)."""
    with open_dir() as files:
        path = files / "tf"
        with daemon_group(lab.node(0), file_config(path)) as group:
            group.wait_started()
            asyncio.run(file_scenario(group, path))
