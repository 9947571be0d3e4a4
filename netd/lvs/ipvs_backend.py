"""The LVS datapath on IPVS (where the kernel has it): services and destinations kept equal to
the desired virtual servers through IPVS's generic netlink family.

IPVS has no transactions and no owner marks, so this backend diffs and sends one command per
difference (:mod:`netd.lvs.ipvs_encode` builds them):

* **ours** are the services it applied, and at the first apply (or after a restart) every
  service the configuration describes: those are adopted and edited in place, so restarting
  netd does not drop the connections IPVS tracks for them. Services of other keys are never
  touched, except by ``lvs_flush`` at start and ``lvs_flush_on_stop`` at stop, which flush the
  whole IPVS table as keepalived does.
* :meth:`IpvsBackend.apply` sends the difference from what it applied last;
  :meth:`IpvsBackend.reconcile` reads the kernel back first (someone ran ``ipvsadm -C``).
* a ``virtual_server_group`` is one service per entry (address of a range, port, fwmark),
  each with the virtual server's destinations, as keepalived programs it.
* a virtual server whose commands the kernel refuses is reported alone
  (:class:`netd.errors.LvsApplyError`) and the others are applied; what a group refused half
  way left is read back at the next apply and removed if no longer wanted.
* ``lvs_timeouts`` are set at start and the kernel's earlier values restored at withdrawal.
"""

from __future__ import annotations

import errno
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import structlog
from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import GenericNetlinkSocket

from netd.errors import KernelError, LvsApplyError
from netd.kernel import translate_netlink_error
from netd.lvs.ipvs_encode import (
    DestSpec,
    IpvsMsg,
    ServiceKey,
    ServiceSpec,
    Timeouts,
    dest_from_message,
    dest_specs,
    request,
    service_from_message,
    service_keys,
    service_specs,
    timeouts_from_message,
)
from netd.lvs.model import VirtualServer

__all__ = [
    "FlushOnStop",
    "IpvsApplied",
    "IpvsBackend",
    "IpvsKernel",
    "IpvsSocket",
    "ipvs_available",
]

log = structlog.get_logger(__name__)

FlushOnStop = Literal["no", "full", "vs"]
_NO_IPVS: Final = "this kernel has no IPVS (its generic netlink family does not resolve)"
_GONE: Final = frozenset({errno.ENOENT, errno.ESRCH})  # a delete of what is not there

Dests = dict[tuple[str, int], DestSpec]
Table = dict[ServiceKey, tuple[ServiceSpec, Dests]]


def ipvs_available() -> bool:
    """Whether the kernel has IPVS (its generic netlink family resolves)."""
    sock = GenericNetlinkSocket()
    try:
        sock.bind("IPVS", object)
    except NetlinkError:
        return False
    finally:
        sock.close()
    return True


class IpvsKernel(Protocol):
    """How the backend talks to IPVS: a request acknowledged, or a dump (NetlinkError on
    refusal). :class:`IpvsSocket` is the kernel; the tests have a fake."""

    def request(self, msg: IpvsMsg) -> None: ...

    def dump(self, msg: IpvsMsg) -> list[Any]: ...

    def close(self) -> None: ...


class IpvsSocket:
    """pyroute2's IPVS socket (bound to the family when made: NetlinkError if the kernel has
    no IPVS), sent our own messages."""

    def __init__(self) -> None:
        from pyroute2 import IPVS  # binding needs the kernel: only here

        # Asked first: a failed IPVS() leaves its socket and event loop behind.
        if not ipvs_available():
            raise KernelError("IPVS", errno.ENOENT, "ENOENT", _NO_IPVS)
        try:
            self._sock = IPVS()
        except NetlinkError as exc:
            raise translate_netlink_error("IPVS", exc) from exc

    def _send(self, msg: IpvsMsg, flags: int) -> list[Any]:
        return list(self._sock.nlm_request(msg, msg_type=self._sock.prid, msg_flags=flags))

    def request(self, msg: IpvsMsg) -> None:
        self._send(msg, NLM_F_REQUEST | NLM_F_ACK)

    def dump(self, msg: IpvsMsg) -> list[Any]:
        return self._send(msg, NLM_F_REQUEST | NLM_F_DUMP)

    def close(self) -> None:
        self._sock.close()


@dataclass(frozen=True, slots=True)
class IpvsApplied:
    """One apply's outcome: the commands sent (``"add dest tcp 192.0.2.1:80 -> ..."``) and a
    counter of applies that changed something (IPVS has no generation id)."""

    ops: tuple[str, ...]
    generation: int
    rebuilt: bool = False


class IpvsBackend:
    """IPVS as the datapath (netlink I/O; call from one thread only)."""

    name: Final = "ipvs"

    def __init__(
        self,
        kernel: IpvsKernel | None = None,
        *,
        flush_at_start: bool = False,
        flush_on_stop: FlushOnStop = "no",
        timeouts: Timeouts | None = None,
    ) -> None:
        self.kernel = kernel if kernel is not None else IpvsSocket()
        self.flush_at_start = flush_at_start
        self.flush_on_stop = flush_on_stop
        self.timeouts = timeouts
        self._applied: Table = {}
        # services a refused virtual server may have left half made (a group's first entries):
        # read back at the next apply, and deleted if no longer wanted
        self._unsure: set[ServiceKey] = set()
        self._read_first = True  # adopt what the kernel holds at the first apply
        self._started = False
        self._saved_timeouts: Timeouts | None = None
        self._changes = itertools.count(1)
        self._generation = 0

    @property
    def applied(self) -> Mapping[ServiceKey, tuple[ServiceSpec, Dests]]:
        return self._applied

    # ---- talking to the kernel -------------------------------------------------------------

    def _send(self, what: str, msg: IpvsMsg, *, missing_ok: bool = False) -> None:
        try:
            self.kernel.request(msg)
        except NetlinkError as exc:
            if missing_ok and exc.code in _GONE:
                return
            raise translate_netlink_error(what, exc) from exc

    def _dump(self, what: str, msg: IpvsMsg) -> list[Any]:
        try:
            return self.kernel.dump(msg)
        except NetlinkError as exc:
            raise translate_netlink_error(what, exc) from exc

    def read(self, keys: set[ServiceKey] | None = None) -> Table:
        """What the kernel holds: every service (or those of ``keys``) with its destinations."""
        out: Table = {}
        for msg in self._dump("list IPVS services", request("get_service")):
            spec = service_from_message(msg)
            if keys is not None and spec.key not in keys:
                continue
            dests = self._dump(f"list destinations of {spec.key}", request("get_dest", spec.key))
            out[spec.key] = (spec, {d.key: d for d in map(dest_from_message, dests)})
        return out

    # ---- the backend's interface -----------------------------------------------------------

    def check(self, vs: VirtualServer) -> None:
        """IPVS forwards every method the model accepts (NAT, DR, TUN), and a
        ``virtual_server_group`` as one service per entry (keepalived's way): nothing to
        refuse."""

    def start(self) -> list[str]:
        """``lvs_flush``: flush every IPVS service; ``lvs_timeouts``: set them (the kernel's
        values are kept to restore at withdrawal). Returns what was removed. The first apply
        does this if nobody did (the driver calls start only when nothing is configured)."""
        self._started = True
        removed = []
        if self.flush_at_start:
            self._send("flush IPVS (lvs_flush)", request("flush"))
            removed.append("every IPVS service (lvs_flush)")
            log.info("netd.lvs.flushed", backend=self.name, detail="lvs_flush")
        if self.timeouts is not None and self._saved_timeouts is None:
            got = self._dump("read IPVS timeouts", request("get_config"))
            saved = timeouts_from_message(got[0]) if got else Timeouts()
            self._set_timeouts(self.timeouts, saved)
            self._saved_timeouts = saved
        self._applied, self._read_first = {}, True
        return removed

    def _set_timeouts(self, want: Timeouts, base: Timeouts) -> None:
        # 0 leaves a timeout as it was (keepalived): send the kernel's own value for it
        merged = Timeouts(want.tcp or base.tcp, want.tcpfin or base.tcpfin, want.udp or base.udp)
        self._send("set IPVS timeouts (lvs_timeouts)", request("set_config", timeouts=merged))
        log.info("netd.lvs.timeouts", tcp=merged.tcp, tcpfin=merged.tcpfin, udp=merged.udp)

    def apply(self, desired: Sequence[VirtualServer]) -> IpvsApplied:
        """Make IPVS hold ``desired``, sending only what differs from what we applied."""
        want = _wanted(desired)
        if not self._started:
            self.start()
        if self._read_first:
            have = self.read(set(want) | set(self._applied) | self._unsure)
            self._read_first = False
        else:
            have = dict(self._applied)
        return self._sync(desired, want, have, rebuilt=False)

    def reconcile(self, desired: Sequence[VirtualServer]) -> IpvsApplied:
        """Read our services back from the kernel and repair whatever differs."""
        want = _wanted(desired)
        if not self._started:
            self.start()
        have = self.read(set(want) | set(self._applied) | self._unsure)
        self._read_first = False
        drifted = {k: have.get(k) for k in self._applied} != self._applied
        if drifted:
            log.warning("netd.lvs.drift", backend=self.name, detail="IPVS was changed outside netd")
        return self._sync(desired, want, have, rebuilt=drifted)

    def _sync(
        self, desired: Sequence[VirtualServer], want: Table, have: Table, *, rebuilt: bool
    ) -> IpvsApplied:
        ops: list[str] = []
        failed: dict[Any, KernelError] = {}
        applied: Table = {}
        for key in sorted(set(have) - set(want)):  # have holds only ours
            self._send(f"del service {key}", request("del_service", key), missing_ok=True)
            ops.append(f"del service {key}")
        self._unsure = set()
        for vs in desired:
            keys = service_keys(vs)
            try:
                for key in keys:  # a group's entries: one service each, the same destinations
                    self._sync_service(want[key], have.get(key), ops)
            except KernelError as exc:
                name = vs.name or str(vs.service)
                log.error("netd.lvs.vs_failed", backend=self.name, vs=name, reason=str(exc))
                failed[vs.service] = exc
                self._unsure.update(keys)
                continue
            for key in keys:
                applied[key] = want[key]
        self._applied = applied
        if ops:
            self._generation = next(self._changes)
            for op in ops:
                log.debug("netd.lvs.op", backend=self.name, op=op)
        if failed:
            self._read_first = True  # what a refused one left is known only to the kernel
            raise LvsApplyError(failed)
        return IpvsApplied(tuple(ops), self._generation, rebuilt)

    def _sync_service(
        self,
        target: tuple[ServiceSpec, Dests],
        held: tuple[ServiceSpec, Dests] | None,
        ops: list[str],
    ) -> None:
        spec, dests = target
        key = spec.key
        if held is None:
            self._send(f"add service {key}", request("new_service", spec))
            ops.append(f"add service {key}")
            held_dests: Dests = {}
        else:
            if held[0] != spec:
                self._send(f"set service {key}", request("set_service", spec))
                ops.append(f"set service {key}")
            held_dests = held[1]
        for dk in sorted(set(held_dests) - set(dests)):
            what = f"del dest {key} -> {_dest_name(held_dests[dk])}"
            msg = request("del_dest", key, held_dests[dk], full_dest=False)
            self._send(what, msg, missing_ok=True)
            ops.append(what)
        for dk, d in dests.items():
            old = held_dests.get(dk)
            if old == d:
                continue
            verb, cmd = ("add", "new_dest") if old is None else ("set", "set_dest")
            what = f"{verb} dest {key} -> {_dest_name(d)} weight {d.weight}"
            self._send(what, request(cmd, key, d))
            ops.append(what)

    def withdraw(self) -> None:
        """Remove our services (``lvs_flush_on_stop``: flush the whole IPVS table; ``VS``:
        delete each service without its destinations first), then restore the timeouts."""
        try:
            if self.flush_on_stop == "full":
                self._send("flush IPVS (lvs_flush_on_stop)", request("flush"))
            else:
                for key in sorted(self._unsure - set(self._applied)):
                    self._send(f"del service {key}", request("del_service", key), missing_ok=True)
                for key, (_, dests) in sorted(self._applied.items()):
                    if self.flush_on_stop == "no":
                        for d in dests.values():
                            msg = request("del_dest", key, d, full_dest=False)
                            self._send(f"del dest {key}", msg, missing_ok=True)
                    self._send(f"del service {key}", request("del_service", key), missing_ok=True)
            log.info("netd.lvs.removed", backend=self.name, services=len(self._applied))
        finally:
            self._applied, self._read_first, self._started = {}, True, False
            self._unsure = set()
            if self._saved_timeouts is not None and self.timeouts is not None:
                self._set_timeouts(self._saved_timeouts, self._saved_timeouts)
                self._saved_timeouts = None

    def close(self) -> None:
        self.kernel.close()


def _wanted(desired: Sequence[VirtualServer]) -> Table:
    """Every service of ``desired`` with its destinations. A service two virtual servers (or a
    group entry and a virtual server) claim is refused before anything is sent, as the
    kernel's ``EINVAL`` would be, so the driver retries one virtual server at a time and
    reports the second alone (the nftables backend's layout does the same)."""
    out: Table = {}
    for vs in desired:
        for spec in service_specs(vs):
            if spec.key in out:
                name = vs.name or str(vs.service)
                reason = f"{name}: {spec.key} defined twice"
                raise KernelError(f"{name}: service {spec.key}", errno.EINVAL, "EINVAL", reason)
            out[spec.key] = (spec, {d.key: d for d in dest_specs(vs, spec.key)})
    return out


def _dest_name(d: DestSpec) -> str:
    host = d.address if d.family == 4 else f"[{d.address}]"
    return f"{host}:{d.port}"
