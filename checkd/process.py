"""checkd's process: joins the bus and follows the published configuration."""

from __future__ import annotations

import structlog

from bus import Component

log = structlog.get_logger(__name__)


async def serve(comp: Component) -> None:
    configs = comp.subscribe("config.current")
    seen: str | None = None
    while True:
        for event in await configs.recv_batch():
            if event.body.get("hash") != seen:
                seen = event.body.get("hash")
                log.info("checkd.config", generation=event.body.get("generation"))
