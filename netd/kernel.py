"""Kernel adapter: apply operations and read addresses, routes and rules over netlink.

Works in the *current* network namespace (netd runs inside the namespace it manages; tests
enter a lab namespace before constructing the adapter). Only pyroute2 is used, never ``ip``.

Idempotence follows the errno, as pyroute2's own fixtures do: an add answered with EEXIST
and a delete answered with ESRCH / EADDRNOTAVAIL / ENOENT / ENODEV are successes. Any other
failure is collected per item with the kernel's reason and does not stop the batch.

Ownership marking, so a later start can tell netd's items from the operator's:

* addresses carry ``IFA_PROTO`` = :data:`NETD_PROTO` (kernel >= 5.18);
* routes are installed with ``rtm_protocol`` = :data:`NETD_PROTO` (unless the config names a
  protocol explicitly) and rules with ``FRA_PROTOCOL`` = :data:`NETD_PROTO`;
* and, for what a marker cannot cover (explicit route protocols, old kernels), a state file
  ``netd-installed.json`` in the runtime directory lists every item netd installed.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import structlog
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netd.desired import (
    ROUTE_TYPES,
    RULE_ACTIONS,
    SCOPES,
    Address,
    Item,
    ItemKey,
    Route,
    Rule,
    item_from_wire,
    item_key,
    item_to_wire,
)
from netd.errors import InvalidItemError, KernelError, WireFormatError
from netd.reconcile import Action, Operation, plan

__all__ = [
    "NETD_PROTO",
    "STATE_FILE",
    "ApplyResult",
    "Failure",
    "KernelAdapter",
    "Observed",
    "translate_netlink_error",
]

log = structlog.get_logger(__name__)

#: Marker for everything netd installs: 112 is VRRP's IP protocol number, and is unused
#: by iproute2's rt_protos (keepalived itself uses 18), so netd's items are told apart from
#: both the operator's and a co-existing keepalived's.
NETD_PROTO: Final = 112
STATE_FILE: Final = "netd-installed.json"

IFA_F_NODAD: Final = 0x02
IFA_F_NOPREFIXROUTE: Final = 0x200
RTNH_F_ONLINK: Final = 0x04
RT_TABLE_LOCAL: Final = 255
RTPROT_KERNEL: Final = 2
FRA_SUPPRESS_UNSET: Final = 0xFFFFFFFF

_ADD_OK: Final = frozenset({errno.EEXIST})
_DEL_OK: Final = frozenset({errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV})

_TYPE_NAMES: Final = {v: k for k, v in ROUTE_TYPES.items()}
_ACTION_NAMES: Final = {v: k for k, v in RULE_ACTIONS.items()}

T = TypeVar("T")


def translate_netlink_error(what: str, exc: NetlinkError) -> KernelError:
    code = int(exc.code)
    return KernelError(what, code, errno.errorcode.get(code, str(code)), os.strerror(code))


@dataclass(frozen=True, slots=True)
class Failure:
    """An operation the kernel refused, with its reason (``errno_name`` like ``"ENODEV"``)."""

    op: Operation
    code: int
    errno_name: str
    reason: str


@dataclass(frozen=True, slots=True)
class ApplyResult:
    done: tuple[Operation, ...] = ()
    failures: tuple[Failure, ...] = ()
    netlink_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class Observed:
    """What the kernel holds right now; ``owned`` are the keys of items netd installed."""

    items: tuple[Item, ...]
    owned: frozenset[ItemKey]

    def owned_items(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if item_key(i) in self.owned)


@dataclass(slots=True)
class _Batch:
    done: list[Operation] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


class KernelAdapter:
    """Netlink access for netd. Not thread-safe; one per event loop.

    ``state_dir``: runtime directory for the ownership state file (``None`` = marker only).
    ``netlink_calls`` counts every request sent to the kernel (dumps count once).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        proto: int = NETD_PROTO,
        ipr: IPRoute | None = None,
    ) -> None:
        self.proto = proto
        self.netlink_calls = 0
        self._ipr = ipr if ipr is not None else IPRoute()
        self._state_path = Path(state_dir) / STATE_FILE if state_dir is not None else None
        self._names: dict[int, str] = {}
        self._indexes: dict[str, int] = {}
        self._installed: dict[ItemKey, Item] = self._load_state()

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> KernelAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ipr(self) -> IPRoute:
        """The adapter's pyroute2 socket, shared with :class:`netd.vmac.VmacManager`."""
        return self._ipr

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one netlink request through ``fn``, counting it in ``netlink_calls``."""
        self.netlink_calls += 1
        return fn(*args, **kwargs)

    def refresh_links(self) -> dict[str, int]:
        """Re-read interface names and indexes (done lazily on an unknown name)."""
        self._names = {
            int(m["index"]): str(m.get("IFLA_IFNAME")) for m in self.call(self._ipr.link, "dump")
        }
        self._indexes = {v: k for k, v in self._names.items()}
        return dict(self._indexes)

    def ifindex(self, name: str) -> int:
        if name not in self._indexes:
            self.refresh_links()
        if name not in self._indexes:
            raise KernelError(f"interface {name}", errno.ENODEV, "ENODEV", "No such device")
        return self._indexes[name]

    def ifindex_fresh(self, name: str) -> int:
        """Like :meth:`ifindex` but re-reads the interfaces first (after a create)."""
        self.refresh_links()
        return self.ifindex(name)

    def _ifname(self, index: int | None) -> str | None:
        if index is None:
            return None
        if index not in self._names:
            self.refresh_links()
        return self._names.get(index)

    # -- state file -----------------------------------------------------------------------

    def _load_state(self) -> dict[ItemKey, Item]:
        if self._state_path is None or not self._state_path.exists():
            return {}
        try:
            data = json.loads(self._state_path.read_text(encoding="utf-8"))
            items = [item_from_wire(d) for d in data["items"]]
        except (OSError, ValueError, KeyError, TypeError, WireFormatError) as exc:
            # A corrupt state file must not stop netd; the kernel markers still work.
            log.warning("netd.state.unreadable", path=str(self._state_path), error=str(exc))
            return {}
        return {item_key(i): i for i in items}

    def _save_state(self) -> None:
        if self._state_path is None:
            return
        payload = {"version": 1, "items": [item_to_wire(i) for i in self._installed.values()]}
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._state_path.parent, prefix=".netd-state-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
            os.chmod(tmp, 0o640)
            os.replace(tmp, self._state_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- reading --------------------------------------------------------------------------

    def read_addresses(self) -> list[tuple[Address, bool]]:
        """Every address as (item, marked-as-ours)."""
        self.refresh_links()
        out: list[tuple[Address, bool]] = []
        for msg in self.call(self._ipr.addr, "dump"):
            item = self._address_from(msg)
            if item is not None:
                out.append((item, msg.get("IFA_PROTO") == self.proto))
        return out

    def _address_from(self, msg: Any) -> Address | None:
        dev = self._ifname(msg["index"])
        local, remote = msg.get("IFA_LOCAL"), msg.get("IFA_ADDRESS")
        ip = local if local is not None else remote
        if dev is None or ip is None:
            return None
        v6 = msg["family"] == socket.AF_INET6
        label = msg.get("IFA_LABEL")
        flags = msg.get("IFA_FLAGS", msg["flags"])
        try:
            return Address(
                ip=ip,
                prefix=msg["prefixlen"],
                dev=dev,
                brd=None if v6 else msg.get("IFA_BROADCAST"),
                label=None if v6 or label in (None, dev) else label,
                scope=0 if v6 else msg["scope"],
                peer=remote if local is not None and remote not in (None, local) else None,
                noprefixroute=bool(flags & IFA_F_NOPREFIXROUTE),
            )
        except InvalidItemError:
            return None  # something the model cannot express is never ours

    def read_routes(self) -> list[tuple[Route, bool]]:
        """Every route of every table, except the kernel's own local/broadcast entries."""
        self.refresh_links()
        out: list[tuple[Route, bool]] = []
        for msg in self.call(self._ipr.route, "dump"):
            table = msg.get("RTA_TABLE", msg["table"])
            if msg["proto"] == RTPROT_KERNEL and table == RT_TABLE_LOCAL:
                continue
            item = self._route_from(msg, table)
            if item is not None:
                out.append((item, msg["proto"] == self.proto))
        return out

    def _route_from(self, msg: Any, table: int) -> Route | None:
        dst = msg.get("RTA_DST")
        family = msg["family"]
        if dst is None:
            dst = "0.0.0.0" if family == socket.AF_INET else "::"
        metrics = msg.get("RTA_METRICS")
        mtu = metrics.get("RTAX_MTU") if metrics is not None else None
        metric = msg.get("RTA_PRIORITY")
        try:
            return Route(
                dst=f"{dst}/{msg['dst_len']}",
                via=msg.get("RTA_GATEWAY"),
                dev=self._ifname(msg.get("RTA_OIF")),
                src=msg.get("RTA_PREFSRC"),
                table=table,
                metric=metric,
                proto=None if msg["proto"] == self.proto else msg["proto"],
                scope=msg["scope"],
                type=_TYPE_NAMES.get(msg["type"], "unicast"),
                onlink=bool(msg["flags"] & RTNH_F_ONLINK),
                tos=msg["tos"],
                mtu=mtu,
            )
        except InvalidItemError:
            return None  # e.g. multipath routes: not expressible, never ours

    def read_rules(self) -> list[tuple[Rule, bool]]:
        out: list[tuple[Rule, bool]] = []
        for msg in self.call(self._ipr.rule, "dump"):
            item = self._rule_from(msg)
            if item is not None:
                out.append((item, msg.get("FRA_PROTOCOL") == self.proto))
        return out

    def _rule_from(self, msg: Any) -> Rule | None:
        src, dst = msg.get("FRA_SRC"), msg.get("FRA_DST")
        table = msg.get("FRA_TABLE", msg["table"])
        suppress = msg.get("FRA_SUPPRESS_PREFIXLEN")
        proto = msg.get("FRA_PROTOCOL")
        try:
            return Rule(
                priority=msg.get("FRA_PRIORITY", 0),
                table=table or None,
                src=f"{src}/{msg['src_len']}" if src else None,
                dst=f"{dst}/{msg['dst_len']}" if dst else None,
                family=msg["family"],
                iif=msg.get("FRA_IIFNAME"),
                oif=msg.get("FRA_OIFNAME"),
                fwmark=msg.get("FRA_FWMARK"),
                fwmask=msg.get("FRA_FWMASK"),
                tos=msg["tos"],
                action=_ACTION_NAMES.get(msg["action"], "table"),
                goto=msg.get("FRA_GOTO"),
                suppress_prefixlength=None if suppress in (None, FRA_SUPPRESS_UNSET) else suppress,
                protocol=None if proto == self.proto else proto,
            )
        except InvalidItemError:
            return None

    def observe(self) -> Observed:
        """Read everything; ``owned`` = kernel-marked items plus state-file items present."""
        items: list[Item] = []
        owned: set[ItemKey] = set()
        readers: Sequence[Callable[[], Sequence[tuple[Any, bool]]]] = (
            self.read_addresses,
            self.read_routes,
            self.read_rules,
        )
        for read in readers:
            for item, marked in read():
                items.append(item)
                key = item_key(item)
                if marked or key in self._installed:
                    owned.add(key)
        return Observed(tuple(items), frozenset(owned))

    def find_leftovers(self, keep: Iterable[Item] = ()) -> list[Item]:
        """Items netd installed (marker or state file) that are in the kernel and not in
        ``keep``: what a previous run left behind, e.g. after ``kill -9``."""
        keep_keys = {item_key(i) for i in keep}
        return [i for i in self.observe().owned_items() if item_key(i) not in keep_keys]

    def cleanup(self, keep: Iterable[Item] = ()) -> ApplyResult:
        """Remove every leftover (see :meth:`find_leftovers`), logging each one."""
        keep = list(keep)
        obs = self.observe()
        ops = plan(keep, obs.items, obs.owned)
        ops = [op for op in ops if op.action is Action.DELETE]
        for op in ops:
            log.info("netd.cleanup.stale", item=item_to_wire(op.item))
        return self.apply(ops)

    # -- writing --------------------------------------------------------------------------

    def reconcile(self, desired: Iterable[Item]) -> ApplyResult:
        """Observe, plan and apply: the kernel ends up holding ``desired`` (plus foreign items)."""
        obs = self.observe()
        return self.apply(plan(list(desired), obs.items, obs.owned))

    def apply(self, ops: Iterable[Operation]) -> ApplyResult:
        start = self.netlink_calls
        batch = _Batch()
        for op in ops:
            try:
                self._apply_one(op)
            except KernelError as exc:
                batch.failures.append(Failure(op, exc.code, exc.errno_name, exc.reason))
                log.warning(
                    "netd.op.failed",
                    action=str(op.action),
                    item=item_to_wire(op.item),
                    errno=exc.errno_name,
                    reason=exc.reason,
                )
                continue
            batch.done.append(op)
            key = item_key(op.item)
            if op.action is Action.DELETE:
                self._installed.pop(key, None)
            else:
                self._installed[key] = op.item
        if batch.done:
            self._save_state()
        return ApplyResult(tuple(batch.done), tuple(batch.failures), self.netlink_calls - start)

    def _apply_one(self, op: Operation) -> None:
        item = op.item
        if isinstance(item, Address):
            if op.action is Action.REPLACE:
                # Label/brd/scope of an address cannot be changed in place.
                self._request("delete", item if op.old is None else op.old)
            self._request("delete" if op.action is Action.DELETE else "add", item)
        elif op.action is Action.DELETE:
            self._request("delete", item)
        elif isinstance(item, Route):
            self._request("replace" if op.action is Action.REPLACE else "add", item)
        else:
            self._request("add", item)

    def _request(self, verb: str, item: Item) -> None:
        what = f"{verb} {_describe(item)}"
        ok = _DEL_OK if verb == "delete" else _ADD_OK
        try:
            if isinstance(item, Address):
                self.call(
                    self._ipr.addr, "del" if verb == "delete" else "add", **self._addr_args(item)
                )
            elif isinstance(item, Route):
                cmd = {"delete": "del", "add": "add", "replace": "replace"}[verb]
                self.call(self._ipr.route, cmd, **self._route_args(item, verb == "delete"))
            else:
                self.call(
                    self._ipr.rule, "del" if verb == "delete" else "add", **self._rule_args(item)
                )
        except NetlinkError as exc:
            if exc.code in ok:
                log.debug("netd.op.already", op=what, errno=errno.errorcode.get(exc.code))
                return
            raise translate_netlink_error(what, exc) from exc
        except KernelError as exc:
            if exc.code in ok:  # e.g. deleting from an interface that is already gone
                return
            raise
        log.info(f"netd.{_kind(item)}.{'removed' if verb == 'delete' else 'added'}", op=what)

    def _addr_args(self, a: Address) -> dict[str, Any]:
        args: dict[str, Any] = {
            "index": self.ifindex(a.dev),
            "address": a.peer if a.peer is not None else a.ip,
            "prefixlen": a.prefix,
        }
        if a.peer is not None:
            args["local"] = a.ip
        if a.family == socket.AF_INET:
            args["scope"] = a.scope
            if a.brd is not None:
                args["broadcast"] = a.brd
            if a.label is not None:
                args["label"] = a.label
        flags = IFA_F_NOPREFIXROUTE if a.noprefixroute else 0
        if a.family == socket.AF_INET6:
            # keepalived adds IPv6 VIPs nodad so the kernel does not run DAD against the
            # old master still holding the address.
            flags |= IFA_F_NODAD
        if flags:
            args["flags"] = flags
        lft = a.effective_preferred_lft()
        if lft is not None:
            args["preferred_lft"] = lft
        args["proto"] = self.proto
        return args

    def _route_args(self, r: Route, deleting: bool) -> dict[str, Any]:
        net, plen = r.dst.split("/")
        args: dict[str, Any] = {
            "dst": net,
            "dst_len": int(plen),
            "family": r.family,
            "table": r.table,
            "type": r.type,
            "tos": r.tos,
        }
        if r.metric is not None:
            args["priority"] = r.metric
        if deleting:
            return args
        if r.via is not None:
            args["gateway"] = r.via
        if r.dev is not None:
            args["oif"] = self.ifindex(r.dev)
        if r.src is not None:
            args["prefsrc"] = r.src
        args["scope"] = r.scope if r.scope is not None else _default_scope(r)
        if r.onlink:
            args["flags"] = RTNH_F_ONLINK
        if r.mtu is not None:
            args["metrics"] = {"mtu": r.mtu}
        args["proto"] = self.proto if r.proto is None else r.proto
        return args

    def _rule_args(self, r: Rule) -> dict[str, Any]:
        args: dict[str, Any] = {
            "family": r.family,
            "priority": r.priority,
            "action": RULE_ACTIONS[r.action],
            "tos": r.tos,
        }
        if r.table is not None:
            args["table"] = r.table
        for name, value in (("src", r.src), ("dst", r.dst)):
            if value is not None:
                net, plen = value.split("/")
                args[name] = net
                args[f"{name}_len"] = int(plen)
        if r.iif is not None:
            args["iifname"] = r.iif
        if r.oif is not None:
            args["oifname"] = r.oif
        if r.fwmark is not None:
            args["fwmark"] = r.fwmark
        if r.fwmask is not None:
            args["fwmask"] = r.fwmask
        if r.goto is not None:
            args["goto"] = r.goto
        if r.suppress_prefixlength is not None:
            args["suppress_prefixlength"] = r.suppress_prefixlength
        args["protocol"] = self.proto if r.protocol is None else r.protocol
        return args


def _default_scope(r: Route) -> int:
    """iproute2's implicit scope, so ``dev``-only routes behave as with ``ip route add``."""
    if r.type in ("local", "nat"):
        return SCOPES["host"]
    if r.type in ("broadcast", "multicast", "anycast"):
        return SCOPES["link"]
    if r.type == "unicast" and r.via is None:
        return SCOPES["link"]
    return SCOPES["global"]


def _kind(item: Item) -> str:
    return "addr" if isinstance(item, Address) else "route" if isinstance(item, Route) else "rule"


def _describe(item: Item) -> str:
    if isinstance(item, Address):
        return f"address {item.cidr} dev {item.dev}"
    if isinstance(item, Route):
        via = f" via {item.via}" if item.via else ""
        dev = f" dev {item.dev}" if item.dev else ""
        return f"route {item.type} {item.dst}{via}{dev} table {item.table}"
    return f"rule pref {item.priority} from {item.src or 'all'} to {item.dst or 'all'}"
