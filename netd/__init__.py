"""netd: the only component that changes the kernel (addresses, routes, rules, VMACs,
GARP/NA). This package is the kernel-facing library; the netd process drives it."""

from netd.desired import (
    Address,
    DesiredSet,
    Item,
    ItemKey,
    Route,
    Rule,
    item_from_wire,
    item_key,
    item_to_wire,
)
from netd.errors import (
    AnnounceError,
    InvalidItemError,
    KernelError,
    NetdError,
    VmacError,
    WireFormatError,
)
from netd.kernel import NETD_PROTO, ApplyResult, Failure, KernelAdapter, Observed
from netd.reconcile import Action, Conflict, Merged, Operation, merge, plan, satisfies

__all__ = [
    "NETD_PROTO",
    "Action",
    "Address",
    "AnnounceError",
    "ApplyResult",
    "Conflict",
    "DesiredSet",
    "Failure",
    "InvalidItemError",
    "Item",
    "ItemKey",
    "KernelAdapter",
    "KernelError",
    "Merged",
    "NetdError",
    "Observed",
    "Operation",
    "Route",
    "Rule",
    "VmacError",
    "WireFormatError",
    "item_from_wire",
    "item_key",
    "item_to_wire",
    "merge",
    "plan",
    "satisfies",
]
