"""Interface-existence checks (keepalived -t fails a config naming a missing interface).

Pure: the caller passes the interface names (e.g. `system_interfaces()`, read in the right
network namespace), so the check is testable without a kernel.
"""

from __future__ import annotations

import socket
from collections.abc import Collection, Iterator, Mapping

from core.model import Config
from core.problems import Location, Problem, Severity, find_location


def system_interfaces() -> frozenset[str]:
    """Interface names of the current network namespace."""
    return frozenset(name for _, name in socket.if_nameindex())


def _uses(config: Config) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(interface, what uses it, location key) for every interface the config names."""
    for i in config.instances:
        at = ("vrrp_instance", i.name)
        if i.interface:
            yield i.interface, f"vrrp_instance {i.name}", (*at, "interface")
        for idx, t in enumerate(i.track_interface):
            yield t.name, f"track_interface of {i.name}", (*at, "track_interface", f"#{idx}")
        for field in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
            for idx, a in enumerate(getattr(i, field)):
                if a.dev:
                    yield a.dev, f"address {a.address} of {i.name}", (*at, field, f"#{idx}")
        for idx, r in enumerate(i.virtual_routes):
            if r.dev:
                yield r.dev, f"route {r.dest} of {i.name}", (*at, "virtual_routes", f"#{idx}")
    for g in config.sync_groups:
        for t in g.track_interface:
            yield t.name, f"track_interface of sync group {g.name}", ("vrrp_sync_group", g.name)
    for a in config.static_ipaddress:
        if a.dev:
            yield a.dev, f"static address {a.address}", ("static_ipaddress",)
    for r in config.static_routes:
        if r.dev:
            yield r.dev, f"static route {r.dest}", ("static_routes",)


def check_interfaces(
    config: Config,
    interfaces: Collection[str],
    locs: Mapping[tuple[str, ...], Location] | None = None,
) -> list[Problem]:
    locs = locs or {}
    # With dynamic_interfaces keepalived waits for the interface to appear: not an error.
    severity: Severity = "warning" if config.global_defs.dynamic_interfaces else "error"
    out: list[Problem] = []
    for name, what, at in _uses(config):
        if name in interfaces:
            continue
        loc = find_location(locs, at)
        out.append(
            Problem(
                severity,
                "missing-interface",
                f"interface {name} for {what} doesn't exist",
                loc.file,
                loc.line,
                loc.col,
                name,
            )
        )
    return out
