"""netd's process: the component body around ``netd.daemon.NetDaemon``."""

from __future__ import annotations

import argparse

from bus import Component
from netd.daemon import NetDaemon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-V",
        "--dont-release-vrrp",
        action="store_true",
        help="at stop, keep the VIPs, routes, rules and VMACs of VRRP instances (keepalived's -V)",
    )
    parser.add_argument(
        "-X",
        "--release-vips",
        action="store_true",
        help="remove configured VIPs found at start-up that pykeepalived did not add "
        "(keepalived's -X)",
    )
    parser.add_argument(
        "-a",
        "--address-monitoring",
        action="store_true",
        help="log every address addition and deletion netlink reports (keepalived's -a)",
    )
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
    await NetDaemon(
        comp,
        release_at_stop=not comp.args.dont_release_vrrp,
        address_monitoring=comp.args.address_monitoring,
        release_vips=comp.args.release_vips,
        lvs=not comp.args.no_lvs,
        lvs_only=comp.args.lvs_only,
        release_lvs_at_stop=not comp.args.dont_release_ipvs,
    ).run()
