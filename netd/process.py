"""netd's process: the component body around ``netd.daemon.NetDaemon``."""

from __future__ import annotations

from bus import Component
from netd.daemon import NetDaemon


async def serve(comp: Component) -> None:
    await NetDaemon(comp).run()
