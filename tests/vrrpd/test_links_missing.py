"""A vrrpd that never hears netd's links asks for them again (``Engine._ask_for_links``).

netd re-sends its retained ``net.link.*`` when vrrpd subscribes, and nothing repeats it on a
timer (docs/bus.md): were that one re-send lost, no instance could ever start. Once the resume
window has closed with no link heard, vrrpd asks again every second until one comes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from structlog.testing import capture_logs

import core
from vrrpd import engine as engine_module
from vrrpd.engine import Engine
from vrrpd.links import Link
from vrrpd.plan import plan

CONF = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.1/24
    }
}
"""


class Publisher:
    def retain(self, topic: str, body: Any, **_: Any) -> None: ...

    def publish(self, topic: str, body: Any) -> None: ...

    def forget(self, topic: str) -> None: ...


class Subscription:
    """Records what vrrpd asks the publishers to send again."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, ...]] = []

    def resync(self, *patterns: str) -> None:
        self.asked.append(patterns)


def test_no_link_heard_after_the_resume_window_asks_netd_again_until_one_comes(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(engine_module, "LINKS_ASK_AGAIN", 0.05)

    async def scenario() -> tuple[list[tuple[str, ...]], int]:
        engine = Engine(SimpleNamespace(publisher=Publisher()))  # type: ignore[arg-type]
        sub = Subscription()
        engine._sub = sub  # type: ignore[assignment]  # what run() subscribes
        engine.plans = {p.name: p for p in plan(core.loads(CONF, script_env=None).config)}
        engine.starter.open_window(engine.now())
        engine._start_pending(engine.now())
        assert sub.asked == []  # within the window netd's re-send may still be on its way
        async with asyncio.timeout(10):
            while len(sub.asked) < 3:  # the window closed: asked, and again, and again
                await asyncio.sleep(0.01)
        engine.links["eth0"] = Link("eth0", 2, False)  # heard (down: nothing starts yet)
        asked = len(sub.asked)
        await asyncio.sleep(0.2)  # four more periods: nothing more is asked
        return sub.asked, asked

    with capture_logs() as logs:
        asked, when_heard = asyncio.run(scenario())
    assert set(asked) == {("net.link.*", "net.held")}
    assert len(asked) == when_heard
    assert any(e["event"] == "vrrpd.links.missing" for e in logs)
