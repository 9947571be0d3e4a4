"""The name under which a virtual server's quorum is published as a verdict.

checkd publishes each virtual server's quorum as ``health.vs:<key>`` (docs/checkers.md,
"Tracking a virtual server's quorum"), so a ``vrrp_script vs:<key> { }`` without a ``script``
line lets a ``vrrp_instance`` follow it with ``track_script``. The key is keepalived's service
id made topic-safe: ``192.0.2.1:tcp:80``, ``fwm:7`` or ``group:NAME:N`` (N: the order of the
virtual servers using that group). core needs the names to tell such a script from one fed by
an external checker; checkd derives the same keys from its plan (tested to agree), and netd
finds the virtual server of each ``check.pool.<key>`` with them.
"""

from __future__ import annotations

import re

from core.model import Config, VirtualServer

_BAD = re.compile(r"[^A-Za-z0-9_.:@/+-]")


def vs_keys(config: Config) -> dict[str, VirtualServer]:
    """Every virtual server checkd runs, by its key (``check.pool.<key>``, ``vs:<key>``)."""
    groups = {g.name for g in config.virtual_server_groups}
    member_no: dict[str, int] = {}
    out: dict[str, VirtualServer] = {}
    for vs in config.virtual_servers:
        if vs.group is not None:
            if vs.group not in groups:
                continue
            n = member_no.get(vs.group, 0)
            member_no[vs.group] = n + 1
            key = f"group:{vs.group}:{n}"
        elif vs.fwmark is not None:
            key = f"fwm:{vs.fwmark}"
        else:
            # No protocol on an addressed service is the kernel's default, UDP (as checkd).
            key = f"{vs.ip}:{(vs.protocol or 'udp').lower()}:{vs.port or 0}"
        out[_BAD.sub("_", key)] = vs
    return out


def quorum_script_names(config: Config) -> dict[str, VirtualServer]:
    """``vs:<key>`` for every virtual server checkd runs, with the virtual server."""
    return {f"vs:{key}": vs for key, vs in vs_keys(config).items()}
