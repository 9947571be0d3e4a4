"""VMAC interfaces for ``use_vmac``: macvlans carrying the VRRP virtual MAC.

Naming and addresses follow keepalived: ``vrrp.<vrid>`` for IPv4 and ``vrrp6.<vrid>`` for
IPv6 unless a name is given; MAC ``00:00:5e:00:01:<vrid>`` (IPv4) or ``00:00:5e:00:02:<vrid>``
(IPv6) (RFC 5798 §7.3); macvlan mode ``private`` by default.

:meth:`VmacManager.ensure` is idempotent and survives restarts: an existing macvlan with the
right name, parent, MAC and mode is reused; one that differs is recreated; an interface of
that name that is not a macvlan is never touched (error). IPv6 VMACs are created with
``addrgenmode none`` so the kernel does not derive an EUI-64 link-local address from the
virtual MAC (RFC 5798 §7.4 forbids it, keepalived ka#2296).

:meth:`VmacManager.set_protodown` sets ``IFLA_PROTO_DOWN`` (macvlan supports it since Linux
5.1): a proto-down macvlan has no carrier and sends nothing (no ARP reply, no IGMP/MLD
report, no advert) while it still receives, so a BACKUP's VMAC cannot teach the switch the
virtual MAC. A proto-down macvlan gets its carrier back when its base interface comes up
again (Linux 6.x): the caller sets protodown again then.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any, Final

import structlog
from pyroute2.netlink.exceptions import NetlinkError

from netd.devconf import BASE_SETTINGS, VMAC_SETTINGS, DevconfGuard
from netd.errors import KernelError, VmacError
from netd.kernel import KernelAdapter

__all__ = ["MACVLAN_MODES", "Vmac", "VmacManager", "vmac_mac", "vmac_name"]

log = structlog.get_logger(__name__)

MACVLAN_MODES: Final = ("private", "vepa", "bridge", "passthru", "source")
IN6_ADDR_GEN_MODE_NONE: Final = 1
MAX_IFNAME: Final = 15
IFF_LOWER_UP: Final = 0x10000


def vmac_mac(vrid: int, family: int = socket.AF_INET) -> str:
    if not 1 <= vrid <= 255:
        raise VmacError(f"vmac vrid {vrid}", errno.EINVAL, "EINVAL", "VRID must be 1..255")
    kind = 2 if family == socket.AF_INET6 else 1
    return f"00:00:5e:00:{kind:02x}:{vrid:02x}"


def vmac_name(vrid: int, family: int = socket.AF_INET, prefix: str = "vrrp") -> str:
    """keepalived's default VMAC name (``vmac_prefix`` is ``vrrp`` by default)."""
    name = f"{prefix}6.{vrid}" if family == socket.AF_INET6 else f"{prefix}.{vrid}"
    if len(name) > MAX_IFNAME:
        raise VmacError(f"vmac {name}", errno.EINVAL, "EINVAL", "interface name too long")
    return name


@dataclass(frozen=True, slots=True)
class Vmac:
    ifname: str
    index: int
    base: str | None
    mac: str
    mode: str | None
    up: bool
    protodown: bool = False
    carrier: bool = False


class VmacManager:
    """Creates, finds and removes VMACs through a :class:`KernelAdapter`'s netlink socket
    (so they count in its ``netlink_calls``)."""

    def __init__(self, kernel: KernelAdapter, configure_interfaces: bool = True) -> None:
        self._k = kernel
        self._ipr = kernel.ipr  # one netlink socket for all of netd
        # keepalived's ARP/rp_filter settings on the VMAC and its base (see netd.devconf).
        self._configure = configure_interfaces
        self._guard = DevconfGuard(kernel)
        self._configured: dict[str, str] = {}  # vmac ifname -> base ifname

    def _configure_pair(self, vmac: str, base: str, family: int) -> None:
        if not self._configure or vmac in self._configured:
            return
        if family == socket.AF_INET:
            self._guard.apply(vmac, VMAC_SETTINGS)
        self._guard.apply(base, BASE_SETTINGS)
        self._configured[vmac] = base

    def restore_interfaces(self) -> None:
        """Put back every base-interface setting changed (call at shutdown)."""
        self._guard.restore_all()
        self._configured.clear()

    def _vmac_from(self, msg: Any) -> Vmac:
        base_index = msg.get("IFLA_LINK")
        names = self._k.refresh_links()
        by_index = {v: k for k, v in names.items()}
        return Vmac(
            ifname=str(msg.get("IFLA_IFNAME")),
            index=int(msg["index"]),
            base=by_index.get(base_index) if base_index is not None else None,
            mac=str(msg.get("IFLA_ADDRESS")),
            mode=msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "IFLA_MACVLAN_MODE"),
            up=bool(int(msg["flags"]) & 1),
            protodown=bool(msg.get("IFLA_PROTO_DOWN")),
            carrier=bool(int(msg["flags"]) & IFF_LOWER_UP),
        )

    def get(self, ifname: str) -> Vmac | None:
        """The macvlan called ``ifname``; None if absent. VmacError if not a macvlan."""
        try:
            msgs = self._k.call(self._ipr.link, "get", ifname=ifname)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise VmacError(
                f"get {ifname}", exc.code, errno.errorcode.get(exc.code, "?"), str(exc)
            ) from exc
        msg = msgs[0]
        kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
        if kind != "macvlan":
            raise VmacError(
                f"vmac {ifname}",
                errno.EEXIST,
                "EEXIST",
                f"exists and is a {kind or 'plain'} interface",
            )
        return self._vmac_from(msg)

    def find(self) -> list[Vmac]:
        """Every macvlan carrying a VRRP virtual MAC (to adopt or clean up after a restart)."""
        out = []
        for msg in self._k.call(self._ipr.link, "dump"):
            if msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "macvlan":
                continue
            mac = str(msg.get("IFLA_ADDRESS", ""))
            if mac.startswith(("00:00:5e:00:01:", "00:00:5e:00:02:")):
                out.append(self._vmac_from(msg))
        return out

    def ensure(
        self,
        base: str,
        vrid: int,
        family: int = socket.AF_INET,
        *,
        ifname: str | None = None,
        mac: str | None = None,
        mode: str = "private",
        up: bool = True,
        protodown: bool = False,
    ) -> Vmac:
        """Make sure the VMAC exists as asked (and is up if ``up``); return it.

        ``protodown`` applies to a VMAC created here, right as it goes up, so a BACKUP's new
        VMAC sends nothing; an existing one is left as it is (see set_protodown).
        """
        if mode not in MACVLAN_MODES:
            raise VmacError(f"vmac {ifname}", errno.EINVAL, "EINVAL", f"unknown mode {mode!r}")
        name = ifname or vmac_name(vrid, family)
        want_mac = (mac or vmac_mac(vrid, family)).lower()
        existing = self.get(name)
        if existing is not None:
            if (existing.base, existing.mac, existing.mode) == (base, want_mac, mode):
                if up and not existing.up:
                    self._set_up(existing.index)
                    existing = self.get(name) or existing
                log.debug("netd.vmac.reused", ifname=name)
                self._configure_pair(name, base, family)
                return existing
            log.info(
                "netd.vmac.recreated",
                ifname=name,
                had=dict(base=existing.base, mac=existing.mac, mode=existing.mode),
            )
            self.remove(name)
        try:
            base_index = self._k.ifindex_fresh(base)
        except KernelError as exc:
            raise VmacError(
                f"create {name} on {base}", exc.code, exc.errno_name, exc.reason
            ) from exc
        args: dict[str, Any] = {
            "ifname": name,
            "kind": "macvlan",
            "link": base_index,
            "macvlan_mode": mode,
            "address": want_mac,
        }
        try:
            self._k.call(self._ipr.link, "add", **args)
        except NetlinkError as exc:
            raise VmacError(
                f"create {name}", exc.code, errno.errorcode.get(exc.code, "?"), str(exc)
            ) from exc
        index = self._k.ifindex_fresh(name)
        if family == socket.AF_INET6:
            self._set_addrgen_none(index)
        if up:
            self._set_up(index)
        if protodown:
            # After going up: opening a macvlan hands it its base's carrier, protodown or not.
            try:
                self.set_protodown(name, True)
            except VmacError as exc:
                # Not fatal to the VMAC: the caller sees protodown=False and reports it.
                log.warning("netd.vmac.protodown_failed", ifname=name, reason=str(exc))
        log.info("netd.vmac.created", ifname=name, base=base, mac=want_mac, mode=mode)
        created = self.get(name)
        if created is None:
            raise VmacError(f"create {name}", errno.ENODEV, "ENODEV", "vanished after creation")
        try:
            self._configure_pair(name, base, family)
        except KernelError as exc:
            raise VmacError(f"configure {name}", exc.code, exc.errno_name, exc.reason) from exc
        return created

    def _set_up(self, index: int) -> None:
        try:
            self._k.call(self._ipr.link, "set", index=index, state="up")
        except NetlinkError as exc:
            raise VmacError(
                f"up {index}", exc.code, errno.errorcode.get(exc.code, "?"), str(exc)
            ) from exc

    def set_protodown(self, ifname: str, on: bool) -> None:
        """Protocol-down (no carrier, nothing sent) or back; VmacError if the kernel refuses
        (EOPNOTSUPP before Linux 5.1) or the VMAC is gone."""
        existing = self.get(ifname)
        if existing is None:
            raise VmacError(f"protodown {ifname}", errno.ENODEV, "ENODEV", "no such VMAC")
        # The kernel hands a macvlan its base's carrier when the base comes up again, even
        # while it is proto-down: setting it again takes the carrier away once more.
        if existing.protodown == on and not (on and existing.carrier):
            return
        try:
            self._k.call(self._ipr.link, "set", index=existing.index, proto_down=int(on))
        except NetlinkError as exc:
            raise VmacError(
                f"protodown {'on' if on else 'off'} {ifname}",
                exc.code,
                errno.errorcode.get(exc.code, "?"),
                str(exc),
            ) from exc
        log.info("netd.vmac.protodown", ifname=ifname, on=on)

    def _set_addrgen_none(self, index: int) -> None:
        spec = {
            "attrs": [
                ["AF_INET6", {"attrs": [["IFLA_INET6_ADDR_GEN_MODE", IN6_ADDR_GEN_MODE_NONE]]}]
            ]
        }
        try:
            self._k.call(self._ipr.link, "set", index=index, IFLA_AF_SPEC=spec)
        except NetlinkError as exc:
            raise VmacError(
                f"addrgenmode {index}", exc.code, errno.errorcode.get(exc.code, "?"), str(exc)
            ) from exc

    def remove(self, ifname: str) -> bool:
        """Delete the VMAC; False if it was already gone. Refuses non-macvlans."""
        existing = self.get(ifname)
        if existing is None:
            return False
        try:
            self._k.call(self._ipr.link, "del", index=existing.index)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise VmacError(
                f"delete {ifname}", exc.code, errno.errorcode.get(exc.code, "?"), str(exc)
            ) from exc
        self._k.refresh_links()
        log.info("netd.vmac.removed", ifname=ifname)
        base = self._configured.pop(ifname, None)
        self._guard.forget(ifname)
        if base is not None:
            self._guard.release(base)
        return True
