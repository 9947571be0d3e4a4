"""checkd's process: follows ``config.current`` and publishes ``health.<name>`` verdicts.

A new config hash is planned (``checkd.plan``) and reconciled with the running checks
(``checkd.supervisor``); a model that cannot be read is logged and the last good checks keep
running. SIGUSR1 logs every check with its last verdict (``checkd.dump``).
"""

from __future__ import annotations

import signal

import structlog

from bus import Component, MessageRejected, messages
from checkd.errors import PlanError
from checkd.plan import normalize, plan_from_wire
from checkd.supervisor import CheckSet

log = structlog.get_logger(__name__)


async def serve(comp: Component) -> None:
    configs = comp.subscribe("config.current")
    checks = CheckSet(comp.publisher.retain, comp.publisher.forget)

    def dump() -> None:
        for entry in checks.snapshot():
            log.info("checkd.dump", **entry)

    comp.on_signal(signal.SIGUSR1, dump)
    seen: str | None = None
    try:
        while True:
            for event in await configs.recv_batch():
                try:
                    config = messages.ConfigCurrent.decode(event.topic, event.body)
                except MessageRejected as exc:
                    log.error("checkd.config.rejected", error=str(exc))
                    continue
                if config.hash == seen:
                    continue
                generation = config.generation
                try:
                    plan = plan_from_wire(normalize(config.model))
                except PlanError as exc:
                    # Keep running the last good checks: a bad publish must not stop them.
                    log.error("checkd.config.rejected", generation=generation, error=str(exc))
                    continue
                seen = config.hash
                for name in plan.unused:
                    log.warning("checkd.config.unused", check=name)
                for name in plan.external:
                    log.info("checkd.config.external", check=name, topic=f"health.{name}")
                for problem in plan.problems:
                    log.error("checkd.config.problem", problem=problem)
                await checks.apply(plan)
                log.info(
                    "checkd.config.applied",
                    generation=generation,
                    hash=seen,
                    checks=checks.names,
                )
    finally:
        await checks.stop_all()
