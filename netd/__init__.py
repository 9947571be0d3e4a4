"""netd: the only component that changes the kernel (addresses, routes, rules, VMACs,
GARP/NA). This package is the kernel-facing library; the netd process drives it.

Typical use by the process (everything runs in netd's own network namespace)::

    kernel = KernelAdapter(state_dir=runtime_dir)      # netlink; marks what it installs
    kernel.cleanup(keep=static_items)                    # startup: remove a dead run's leftovers
    store = DesiredStore()
    items = fromconfig.intent_items(Intent.decode(topic, body).items, "eth0")
    store.offer(DesiredSet("vrrp:VI_1", generation, items), now, boot=envelope["boot"])
    result = kernel.reconcile(store.merged().items)      # ApplyResult: done / failures
    store.expire(now)                                    # leases; reconcile again if any lapsed

    vmacs = VmacManager(kernel); vmacs.ensure("eth0", vrid=51)
    monitor = Monitor(); loop.add_reader(monitor.fileno(), lambda: handle(monitor.read()))
    sched = AnnounceScheduler(GarpTiming(...)); sender = FrameSender()
    sched.become_master("VI_1", loop.time(), [Target("eth0", vip, mac), ...])
    # arm a timer for sched.next_due(); on expiry: sender.send_planned(sched.due(loop.time()))
"""

# ruff: noqa: E402 (the imports below come after pyroute2's package is deferred)
# First: netd's modules import pyroute2's submodules, not its whole package.
from netd.lean_pyroute2 import defer_package_init

defer_package_init()

from netd.announce import (
    AnnounceScheduler,
    FrameCache,
    FrameSender,
    GarpTiming,
    Planned,
    Target,
    build_frame,
    build_garp,
    build_unsolicited_na,
)
from netd.desired import (
    ROUTE_TYPES,
    RULE_ACTIONS,
    SCOPES,
    Address,
    DesiredSet,
    Encap,
    Item,
    ItemKey,
    Nexthop,
    Route,
    Rule,
    describe,
    item_key,
    with_origin,
)
from netd.devconf import DevconfGuard, ipv6_forwarding, read_ipv4_conf, write_ipv4_conf
from netd.errors import (
    AnnounceError,
    FirewallError,
    InvalidItemError,
    KernelError,
    NetdError,
    VmacError,
    WireFormatError,
)
from netd.firewall import Firewall, FirewallSettings, blocked_addresses
from netd.kernel import NETD_PROTO, ApplyResult, Failure, KernelAdapter, Observed
from netd.linkstate import AddrFacts, LinkState
from netd.monitor import AddrEvent, Event, LinkEvent, Monitor, Overflow, RouteEvent
from netd.reconcile import Action, Conflict, Merged, Operation, merge, plan, satisfies
from netd.store import DesiredStore, Offer
from netd.vmac import Vmac, VmacManager, vmac_mac, vmac_name

__all__ = [
    "NETD_PROTO",
    "ROUTE_TYPES",
    "RULE_ACTIONS",
    "SCOPES",
    "Action",
    "AddrEvent",
    "AddrFacts",
    "Address",
    "AnnounceError",
    "AnnounceScheduler",
    "ApplyResult",
    "Conflict",
    "DesiredSet",
    "DesiredStore",
    "DevconfGuard",
    "Encap",
    "Event",
    "Failure",
    "Firewall",
    "FirewallError",
    "FirewallSettings",
    "FrameCache",
    "FrameSender",
    "GarpTiming",
    "InvalidItemError",
    "Item",
    "ItemKey",
    "KernelAdapter",
    "KernelError",
    "LinkEvent",
    "LinkState",
    "Merged",
    "Monitor",
    "NetdError",
    "Nexthop",
    "Observed",
    "Offer",
    "Operation",
    "Overflow",
    "Planned",
    "Route",
    "RouteEvent",
    "Rule",
    "Target",
    "Vmac",
    "VmacError",
    "VmacManager",
    "WireFormatError",
    "blocked_addresses",
    "build_frame",
    "build_garp",
    "build_unsolicited_na",
    "describe",
    "ipv6_forwarding",
    "item_key",
    "merge",
    "plan",
    "read_ipv4_conf",
    "satisfies",
    "vmac_mac",
    "vmac_name",
    "with_origin",
    "write_ipv4_conf",
]
