"""vrrpd's process: the component body around ``vrrpd.engine.Engine``."""

from __future__ import annotations

from bus import Component
from vrrpd.engine import Engine


async def serve(comp: Component) -> None:
    await Engine(comp).run()
