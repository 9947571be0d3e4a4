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
    role = parser.add_mutually_exclusive_group()
    role.add_argument(
        "--no-lvs",
        action="store_true",
        help="program no virtual servers (pykeepalived -P: no checker decides the pools)",
    )
    role.add_argument(
        "--lvs-only",
        action="store_true",
        help="only the virtual servers' datapath, no static addresses, routes or rules "
        "(pykeepalived -C)",
    )


async def serve(comp: Component) -> None:
    await NetDaemon(comp).run()
