"""A Runner on a stub engine (no sockets, timers or bus) for the runner's pure parts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

from core import loads
from vrrpd.links import Link
from vrrpd.packet import IPAddress
from vrrpd.plan import plan
from vrrpd.runner import Runner

Refresh = Callable[[], Mapping[str, Any]]


class Wire:
    """Stands in for a Sender: keeps what would have gone on the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def send(self, wire: bytes, dst: Any) -> bool:
        self.sent.append((wire, dst))
        return True


class Retained:
    """Stands in for the bus publisher: the last retained body and refresher per topic."""

    def __init__(self) -> None:
        self.bodies: dict[str, Mapping[str, Any]] = {}
        self.refresh: dict[str, Refresh | None] = {}
        self.counts: Counter[str] = Counter()

    def retain(
        self, topic: str, body: Mapping[str, Any], *, refresh: Refresh | None = None
    ) -> None:
        self.bodies[topic] = body
        self.refresh[topic] = refresh
        self.counts[topic] += 1


def runner_for(config: str, primary: IPAddress) -> tuple[Runner, Wire, Retained]:
    result = loads(config, script_env=None, interfaces=["eth0"])
    (p,) = plan(result.config)
    retained = Retained()
    engine = SimpleNamespace(
        timers=SimpleNamespace(
            set=lambda *a: None,
            cancel=lambda *a: None,
            cancel_instance=lambda *a: None,
            armed=lambda *a: False,
        ),
        comp=SimpleNamespace(publisher=retained),
        receivers={},
        runners={},
        stopping=False,
        notifier=SimpleNamespace(submit=lambda *a: None),
        mailer=SimpleNamespace(alert=lambda *a: None),
        fifo_write=lambda *a: None,
        group_notify=lambda *a: None,
        publish_event=lambda *a, **k: None,
    )
    wire = Wire()
    # engine and wire are stubs with only what a Runner calls.
    runner = Runner(engine, p, Link("eth0", 2, True), primary, wire)  # type: ignore[arg-type]
    return runner, wire, retained
