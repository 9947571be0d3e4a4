"""A big configuration's first round of results is frozen out of the collector's reach as soon
as it is over (``LvsService._first_round_done``), not when a timer guesses it must be: until
then each result's new pool member piles up in the young generation without counting towards
a collection (docs/checkers.md, "Scheduling")."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Iterator

import pytest

import core
from checkd import lvs_service
from checkd.lvs_service import LvsService
from checkd.pool_actions import ActionRunner
from tests.checkd.support import FakePublisher

CHECKERS = 4


@pytest.fixture
def listeners() -> Iterator[list[int]]:
    socks = []
    for _ in range(CHECKERS):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        socks.append(s)
    yield [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()


def config_text(ports: list[int]) -> str:
    servers = "".join(
        f"  real_server 127.0.0.1 {port} {{\n    TCP_CHECK {{\n      connect_timeout 5\n"
        f"    }}\n  }}\n"
        for port in ports
    )
    return f"virtual_server 192.0.2.10 80 {{\n  delay_loop 1\n  protocol TCP\n{servers}}}\n"


def test_the_first_round_is_frozen_when_its_last_result_is_in(
    listeners: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lvs_service, "FREEZE_AT", CHECKERS)

    async def scenario() -> None:
        service = LvsService(FakePublisher(), actions=ActionRunner())
        service.start()
        try:
            model = core.to_wire(core.loads(config_text(listeners), script_env=None).config)
            assert service.apply_model(model, 1)
            fallback = service._refreeze
            assert fallback is not None  # armed, as it must be for a round that may never end
            frozen = gc.get_freeze_count()
            async with asyncio.timeout(20):
                while len(service.runner.last) < CHECKERS:
                    await asyncio.sleep(0.02)
            # the last first result froze the heap and took the fallback timer down with it
            assert service._refreeze is None and fallback.cancelled()
            assert gc.get_freeze_count() > frozen
            assert all(r.ok for r in dict(service.runner.last).values())
        finally:
            await service.stop()

    try:
        asyncio.run(scenario())
    finally:
        gc.unfreeze()
