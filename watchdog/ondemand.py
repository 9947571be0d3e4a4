"""Which components run only when the configuration gives them work (pure).

checkd runs the checks a configuration declares (a ``vrrp_script`` with a ``script`` command,
``track_file``, ``track_process``) and the virtual servers' checkers and pools; nothing else in
the group needs it. A VRRP-only node, the common case, would otherwise keep a whole process
(about 12 MiB of PSS, docs/benchmarks.md) heart-beating for nothing. So the watchdog starts
checkd when the configuration needs it and stops it when a reload removes the last such block
(``watchdog.supervisor``). A ``vrrp_script`` without a command is fed by an external checker
over the bus (docs/bus.md), not by checkd, so it does not count.
"""

from __future__ import annotations

from core.effective import lvs_work
from core.model import Config

#: the components started on demand
ON_DEMAND = frozenset({"checkd"})


def checkd_needed(config: Config) -> bool:
    """Whether ``config`` gives checkd anything to run or publish."""
    return bool(
        config.virtual_servers
        or config.track_files
        or config.track_processes
        or any(s.script is not None for s in config.vrrp_scripts)
    )


def needed(config: Config) -> frozenset[str]:
    """The on-demand components ``config`` needs running."""
    return frozenset({"checkd"}) if checkd_needed(config) else frozenset()


def image_modules(config: Config) -> tuple[tuple[str, str], ...]:
    """(component, module): modules a child loads on demand that ``config`` makes it load at
    once, imported into the image before that child is forked (``watchdog.spawn``), as its
    entry module is. netd's LVS driver is the one: a VRRP-only netd never imports it
    (``netd.lvsdemand``)."""
    return (("netd", "netd.lvs.driver"),) if lvs_work(config) else ()
