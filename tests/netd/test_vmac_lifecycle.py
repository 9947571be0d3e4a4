"""A VMAC with ``always: false`` (netd.daemon): it exists only while its instance holds its
VIPs, survives a netd restart, and goes when the instance leaves MASTER, leaves the config,
or netd stops. netd runs alone on a real bus in a lab node; the test publishes what vrrpd
and core would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import zmq.asyncio

import core
from bus import Publisher, RuntimeDir
from tests.daemon import REPO, running_bus, runtime_dir, stop
from tests.lab import Lab, Node

pytestmark = pytest.mark.netns

VMAC = "vrrp.51"
VIP = "192.0.2.200"
CONFIG = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    use_vmac
    virtual_ipaddress {
        192.0.2.200/24
    }
}
"""
OTHER = CONFIG.replace("VI_1", "VI_2").replace("use_vmac", "")


def config_body(text: str, generation: int) -> dict[str, Any]:
    model = core.loads(text).config
    return {
        "generation": generation,
        "hash": f"h{generation}",
        "path": "/test/keepalived.conf",
        "model": core.to_wire(model),
        "diff": {},
        "reason": "test",
    }


def intent(generation: int, held: bool) -> dict[str, Any]:
    vip = {"kind": "vip", "spec": {"address": f"{VIP}/24", "dev": VMAC}}
    return {
        "instance": "VI_1",
        "generation": generation,
        "items": [vip] if held else [],
        "held": held,
        "lease": 60.0,
        "interface": "eth0",
        "family": 4,
        "accept": True,
        "announce": 0,
        "garp_count": 1,
        "vmac": {
            "base": "eth0",
            "name": VMAC,
            "vrid": 51,
            "family": 4,
            "mac": "00:00:5e:00:01:33",
            "always": False,
            "xmit_base": False,
        },
    }


def start_netd(node: Node, runtime: RuntimeDir) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "netd", "--runtime-dir", str(runtime.path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (runtime.path / "netd.log").open("ab") as log:  # the child keeps its own copy
        return node.popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def vmac_index(node: Node) -> int | None:
    link = node.links().get(VMAC)
    return None if link is None else int(link["index"])


async def until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` (a kernel read) on a thread: pyroute2's synchronous API cannot run
    inside an event loop, and the publisher's loop must keep running."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def fake_core_and_vrrpd(runtime: RuntimeDir) -> AsyncIterator[Publisher]:
    ctx = zmq.asyncio.Context()
    pub = Publisher(ctx, runtime, "vrrpd")
    pub.start()
    try:
        yield pub
    finally:
        await pub.close()
        ctx.term()


def test_vmac_always_false_follows_the_vips_survives_restart_and_goes(lab: Lab) -> None:
    node = lab.node(0)
    with runtime_dir() as runtime, running_bus(runtime):

        async def scenario() -> None:
            netd = start_netd(node, runtime)
            try:
                async with fake_core_and_vrrpd(runtime) as pub:
                    assert await pub.wait_for_subscriber("vrrp.intent.VI_1", 15)
                    pub.retain("config.current", config_body(CONFIG, 1))
                    pub.retain("vrrp.intent.VI_1", intent(1, held=False))
                    # Not held: no VMAC (keepalived's use_vmac would create it at once). An
                    # absence has nothing to poll for: give netd a generous second.
                    await asyncio.sleep(1.0)
                    assert await asyncio.to_thread(vmac_index, node) is None

                    pub.retain("vrrp.intent.VI_1", intent(2, held=True))
                    index = await until(lambda: vmac_index(node), 10, "the VMAC")
                    await until(lambda: f"{VIP}/24" in node.address_set(VMAC), 10, "the VIP")

                    # netd killed and restarted: the VMAC (and the VIP on it) are kept.
                    os.kill(netd.pid, signal.SIGKILL)
                    netd.wait()
                    netd = start_netd(node, runtime)
                    await until(
                        lambda: (
                            "netd.leftover.grace_ended" in (runtime.path / "netd.log").read_text()
                        ),
                        15,
                        "the restarted netd's grace to end",
                    )
                    assert await asyncio.to_thread(vmac_index, node) == index
                    assert f"{VIP}/24" in await asyncio.to_thread(node.address_set, VMAC)

                    # Leaving MASTER: the VIP and then the VMAC go.
                    pub.retain("vrrp.intent.VI_1", intent(3, held=False))
                    await until(lambda: vmac_index(node) is None, 10, "the VMAC removed")

                    # MASTER again: a new one; then the instance leaves the config.
                    pub.retain("vrrp.intent.VI_1", intent(4, held=True))
                    await until(lambda: vmac_index(node), 10, "the VMAC back")
                    # (vrrpd stops announcing an instance the config no longer has)
                    pub.forget("vrrp.intent.VI_1")
                    pub.retain("config.current", config_body(OTHER, 2))
                    await until(lambda: vmac_index(node) is None, 10, "the VMAC gone with VI_1")

                    # Back in the config and held; TERM removes it.
                    pub.retain("config.current", config_body(CONFIG, 3))
                    pub.retain("vrrp.intent.VI_1", intent(5, held=True))
                    await until(lambda: vmac_index(node), 10, "the VMAC for the TERM case")
                    assert await asyncio.to_thread(stop, netd) == 0
                    assert await asyncio.to_thread(vmac_index, node) is None
                    assert f"{VIP}/24" not in str(await asyncio.to_thread(node.address_set))
            finally:
                stop(netd)

        # Its own thread: the loop must not be this thread's (pyroute2 uses that one).
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, scenario()).result()
