"""The LVS datapath (keepalived's ``virtual_server``): a pure model and planner, and the
kernel backends that run the plans (nftables here; IPVS where the kernel has it).

Typical use by netd (one thread)::

    backend = choose_backend()                 # IPVS if the kernel has it, else nftables
                                               # (lvs_backend in global_defs: LvsSettings)
    backend.start()                            # remove a killed run's leftovers
    backend.apply([VirtualServer(Service("192.0.2.1", "tcp", 80), "wrr",
                                 members=(Member("203.0.113.10", 80, weight=3), ...))])
    backend.reconcile(desired)                 # periodically: re-apply on drift
    backend.withdraw()                         # at stop
"""

from netd.lvs.backend import LvsBackend, choose_backend, ipvs_available
from netd.lvs.ipvs_backend import IpvsBackend
from netd.lvs.layout import MAX_SLOTS, assign_slots, layout, notes, slot_counts
from netd.lvs.model import (
    FALLBACK_SCHEDULERS,
    SCHEDULERS,
    Forwarding,
    Member,
    Persistence,
    Service,
    VirtualServer,
)
from netd.lvs.nft_backend import DEFAULT_TABLE, Applied, NftablesBackend
from netd.lvs.planner import Op, Plan, diff, plan

__all__ = [
    "DEFAULT_TABLE",
    "FALLBACK_SCHEDULERS",
    "MAX_SLOTS",
    "SCHEDULERS",
    "Applied",
    "Forwarding",
    "IpvsBackend",
    "LvsBackend",
    "Member",
    "NftablesBackend",
    "Op",
    "Persistence",
    "Plan",
    "Service",
    "VirtualServer",
    "assign_slots",
    "choose_backend",
    "diff",
    "ipvs_available",
    "layout",
    "notes",
    "plan",
    "slot_counts",
]
