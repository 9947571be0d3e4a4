"""The ``global_defs`` keywords that shape the LVS datapath, read once when netd makes its
backend (a change takes effect at netd's next start)."""

from __future__ import annotations

from dataclasses import dataclass

from core.model import Config
from netd.lvs.ipvs_backend import FlushOnStop
from netd.lvs.ipvs_encode import Timeouts

__all__ = ["LvsSettings", "lvs_settings"]


@dataclass(frozen=True, slots=True)
class LvsSettings:
    """``lvs_backend`` (auto, nftables, ipvs), ``lvs_flush``, ``lvs_flush_on_stop [VS]`` and
    ``lvs_timeouts`` (the last three act on IPVS only)."""

    backend: str = "auto"
    flush_at_start: bool = False
    flush_on_stop: FlushOnStop = "no"
    timeouts: Timeouts | None = None


def lvs_settings(config: Config) -> LvsSettings:
    g = config.global_defs
    flush: FlushOnStop = "no"
    if g.lvs_flush_on_stop:
        flush = "vs" if g.lvs_flush_on_stop_vs else "full"
    timeouts = None
    if g.lvs_timeouts is not None:
        t = g.lvs_timeouts
        timeouts = Timeouts(t.tcp or 0, t.tcpfin or 0, t.udp or 0)
        if timeouts == Timeouts():
            timeouts = None  # all 0: nothing to change (keepalived)
    return LvsSettings(g.lvs_backend, g.lvs_flush, flush, timeouts)
