"""FILE_CHECK in the running service follows its file at once, as keepalived's inotify watch
does, whatever the ``delay_loop`` (docs/checkers.md, "FILE_CHECK"); a reading that changes
nothing is recorded and nothing more: no pool copy, no action, no bus message.

The configurations below have ``delay_loop 60``: every wait ends within ``PATIENCE``, far
sooner, which is the proof that the file is not read once a ``delay_loop``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import core
from checkd.lvs_service import LvsService
from checkd.pool_actions import ActionRunner
from checkd.pool_messages import Action
from checkd.pool_topics import rs_topic
from tests.checkd.support import FakePublisher, until

VS = "[192.0.2.10]:tcp:80"
PATIENCE = 15.0  # a quarter of the delay_loop; the waits end within a second


def put(path: Path, value: str) -> None:
    new = path.with_name(path.name + ".new")
    new.write_text(value)
    os.replace(new, path)  # never seen half-written


def config(state: Path) -> str:
    # two real servers on one track_file: one weighs its value, one fails on any non-zero
    return f"""track_file state {{
    file "{state}"
}}
virtual_server 192.0.2.10 80 {{
    protocol TCP
    delay_loop 60
    real_server 127.0.0.1 80 {{
        weight 10
        FILE_CHECK {{
            track_file state
            weight 5
        }}
    }}
    real_server 127.0.0.2 80 {{
        FILE_CHECK {{
            track_file state
            weight 0
        }}
    }}
}}
"""


class Recording(ActionRunner):
    def __init__(self) -> None:
        super().__init__()
        self.performed: list[Action] = []

    def perform(self, actions: Iterable[Action]) -> None:
        actions = tuple(actions)
        self.performed += actions
        super().perform(actions)


Scenario = Callable[[LvsService, FakePublisher, Recording], Awaitable[None]]


def run(state: Path, scenario: Scenario) -> None:
    async def main() -> None:
        publisher, actions = FakePublisher(), Recording()
        service = LvsService(publisher, actions=actions)
        model = core.to_wire(core.loads(config(state), script_env=None).config)
        assert service.apply_model(model, 1)
        service.start()
        try:
            await scenario(service, publisher, actions)
        finally:
            await service.stop()

    asyncio.run(main())


def _rs(publisher: FakePublisher, service: LvsService, ip: str) -> dict[str, object] | None:
    (member,) = [m for m in service.runner.pools[VS].members if m.rs.ip == ip]
    body = publisher.retained.get(rs_topic(VS, member.rs.text))
    return None if body is None else dict(body)


def test_a_write_moves_the_real_servers_at_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    put(state, "0\n")

    async def scenario(service: LvsService, publisher: FakePublisher, _: Recording) -> None:
        def weighed() -> dict[str, object] | None:
            return _rs(publisher, service, "127.0.0.1")

        def strict() -> dict[str, object] | None:
            return _rs(publisher, service, "127.0.0.2")

        assert len(service.runner.files) == 1  # one watch for both checkers
        await until(lambda: (b := weighed()) and b["effective_weight"] == 10, PATIENCE, "w 10")
        assert (b := strict()) is not None and b["alive"] is True

        put(state, "2\n")  # the operator raises the first one and drains the second
        await until(lambda: (b := weighed()) and b["effective_weight"] == 20, PATIENCE, "w 20")
        await until(lambda: (b := strict()) and b["alive"] is False, PATIENCE, "DOWN")
        assert (b := weighed()) is not None and b["alive"] is True

        put(state, "-2\n")  # 10 - 2 x 5: the weighted one is drained (weight 0), still alive
        await until(lambda: (b := weighed()) and b["effective_weight"] == 0, PATIENCE, "w 0")

        put(state, "0\n")
        await until(lambda: (b := strict()) and b["alive"] is True, PATIENCE, "UP")
        await until(lambda: (b := weighed()) and b["effective_weight"] == 10, PATIENCE, "w 10")

    run(state, scenario)


def test_a_reading_that_changes_nothing_costs_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    put(state, "3\n")

    async def scenario(service: LvsService, publisher: FakePublisher, actions: Recording) -> None:
        runner = service.runner
        cids = list(runner.armed)

        def read_at() -> list[float]:
            return [runner.last[c].at if c in runner.last else 0.0 for c in cids]

        def newer(before: list[float]) -> Callable[[], bool]:
            return lambda: all(a > t for a, t in zip(read_at(), before, strict=True))

        await until(lambda: all(read_at()), PATIENCE, "the first readings")
        sent, performed, pool = len(publisher.sent), len(actions.performed), runner.pools[VS]
        for value in ("3\n", " 3 trailing text\n", "0x3\n"):  # the same value, rewritten
            before = read_at()
            put(state, value)
            await until(newer(before), PATIENCE, f"a reading of {value!r}")
            assert len(publisher.sent) == sent
            assert len(actions.performed) == performed
            assert runner.pools[VS] is pool

    run(state, scenario)
