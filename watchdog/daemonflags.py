"""keepalived's flags that change what one component does, handed on to that component.

keepalived sets them as bits every child reads; here each component takes the same long
option (``python -m netd --dont-release-vrrp`` works alone too), and the watchdog adds it to
the command lines of the children that act on it.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Final

from watchdog.children import ChildSpec

# parsed attribute -> (the component's option, the components that act on it)
FORWARDED: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "dont_release_vrrp": ("--dont-release-vrrp", ("vrrpd", "netd")),
    "release_vips": ("--release-vips", ("netd",)),
    "address_monitoring": ("--address-monitoring", ("netd",)),
    "dump_conf": ("--dump-conf", ("core",)),
    "all_config": ("--all-config", ("core",)),
}


def arguments(args: argparse.Namespace, component: str) -> tuple[str, ...]:
    return tuple(
        option
        for attr, (option, components) in FORWARDED.items()
        if getattr(args, attr) and component in components
    )


def forward(args: argparse.Namespace, specs: list[ChildSpec]) -> list[ChildSpec]:
    return [
        dataclasses.replace(spec, args=(*spec.args, *arguments(args, spec.name))) for spec in specs
    ]
