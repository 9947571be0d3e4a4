"""netd's process: the component body around ``netd.daemon.NetDaemon``."""

from __future__ import annotations

import argparse

from bus import Component
from netd.daemon import NetDaemon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dont-release-ipvs",
        action="store_true",
        help="leave the LVS datapath in the kernel at stop (keepalived's -I)",
    )


async def serve(comp: Component) -> None:
    await NetDaemon(comp).run()
