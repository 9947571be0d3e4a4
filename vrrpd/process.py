"""vrrpd's process: the component body around ``vrrpd.engine.Engine``."""

from __future__ import annotations

import argparse

from bus import Component
from vrrpd.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-V",
        "--dont-release-vrrp",
        action="store_true",
        help="at stop, send no priority-0 advert and keep the VIPs (keepalived's -V)",
    )


async def serve(comp: Component) -> None:
    await Engine(comp, release_at_stop=not comp.args.dont_release_vrrp).run()
