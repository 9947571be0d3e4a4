"""Per-interface IPv4 settings (the ``net.ipv4.conf.<if>.*`` sysctls) over netlink.

keepalived adjusts these for VMACs and restores them at exit (vrrp_if_config.c):

* on the VMAC: ``arp_ignore=1``, ``accept_local=1``, ``rp_filter=0``,
  ``promote_secondaries=1``;
* on its base interface: ``arp_ignore=1``, ``arp_filter=1`` (originals restored when the
  last VMAC on that base goes away).

They are read and written with RTM_GETLINK / RTM_SETLINK (``IFLA_AF_SPEC`` -> ``AF_INET`` ->
``IFLA_INET_CONF``), as keepalived does when built with devconf support, so netd changes
kernel state through netlink only. Every change is logged with the old and new value.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Mapping
from typing import Final

import structlog
from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST

from netd.errors import KernelError
from netd.kernel import KernelAdapter
from netd.nlbatch import RawRequest, nla

__all__ = [
    "BASE_SETTINGS",
    "IPV4_DEVCONF",
    "VMAC_SETTINGS",
    "DevconfGuard",
    "ipv6_forwarding",
    "read_ipv4_conf",
    "write_ipv4_conf",
]

log = structlog.get_logger(__name__)

#: IPV4_DEVCONF_* indexes (include/uapi/linux/ip.h); names as the sysctls spell them.
IPV4_DEVCONF: Final[Mapping[str, int]] = {
    "forwarding": 1,
    "proxy_arp": 3,
    "rp_filter": 8,
    "arp_filter": 13,
    "arp_announce": 18,
    "arp_ignore": 19,
    "promote_secondaries": 20,
    "arp_accept": 21,
    "arp_notify": 22,
    "accept_local": 23,
}
# pyroute2 decodes the array with its own field names; only arp_filter differs.
_PYROUTE2_NAMES: Final = {"arp_filter": "arpfilter"}

VMAC_SETTINGS: Final[Mapping[str, int]] = {
    "arp_ignore": 1,
    "accept_local": 1,
    "rp_filter": 0,
    "promote_secondaries": 1,
}
BASE_SETTINGS: Final[Mapping[str, int]] = {"arp_ignore": 1, "arp_filter": 1}

DEVCONF_FILE: Final = "netd-devconf.json"
RTM_SETLINK: Final = 19
IFLA_AF_SPEC: Final = 26
IFLA_INET_CONF: Final = 1
_IFINFO = struct.Struct("=BxHiII")


def read_ipv4_conf(kernel: KernelAdapter, ifname: str) -> dict[str, int]:
    """Current values of the settings in :data:`IPV4_DEVCONF` for ``ifname``."""
    msg = kernel.call(kernel.ipr.link, "get", index=kernel.ifindex_fresh(ifname))[0]
    conf = msg.get_nested("IFLA_AF_SPEC", "AF_INET")
    if conf is None:
        raise KernelError(f"devconf {ifname}", 97, "EAFNOSUPPORT", "no IPv4 settings")
    return {name: int(conf[_PYROUTE2_NAMES.get(name, name)]) for name in IPV4_DEVCONF}


def ipv6_forwarding(kernel: KernelAdapter, ifname: str) -> bool:
    """Whether ``ifname`` forwards IPv6: keepalived sets the NA Router flag only then."""
    msg = kernel.call(kernel.ipr.link, "get", index=kernel.ifindex_fresh(ifname))[0]
    conf = msg.get_nested("IFLA_AF_SPEC", "AF_INET6", "IFLA_INET6_CONF")
    return bool(conf and conf.get("forwarding"))


def write_ipv4_conf(kernel: KernelAdapter, ifname: str, values: Mapping[str, int]) -> None:
    unknown = set(values) - set(IPV4_DEVCONF)
    if unknown:
        raise KernelError(f"devconf {ifname}", 22, "EINVAL", f"unknown settings {sorted(unknown)}")
    index = kernel.ifindex(ifname)
    conf = b"".join(nla(IPV4_DEVCONF[k], struct.pack("=I", v)) for k, v in values.items())
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0) + nla(
        IFLA_AF_SPEC, nla(socket.AF_INET, nla(IFLA_INET_CONF, conf))
    )
    kernel.netlink_calls += 1
    (ack,) = kernel.batch.run([RawRequest(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, body)])
    if ack.code:
        raise KernelError(f"devconf {ifname}", ack.code, ack.errno_name, ack.reason)


class DevconfGuard:
    """Applies settings, remembering the originals so :meth:`restore` can put them back.

    Reference-counted per interface: a base interface shared by several VMACs is restored
    only when the last of them releases it. The originals are kept in
    ``<state_dir>/netd-devconf.json`` when the kernel adapter has a state directory, so a
    netd restarted after a crash still restores the operator's values, not its own.
    """

    def __init__(self, kernel: KernelAdapter) -> None:
        self._k = kernel
        self._path = kernel.state_dir / DEVCONF_FILE if kernel.state_dir is not None else None
        self._originals: dict[str, dict[str, int]] = self._load()
        self._refs: dict[str, int] = {}

    def _load(self) -> dict[str, dict[str, int]]:
        if self._path is None or not self._path.exists():
            return {}
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            return {str(i): {str(k): int(v) for k, v in kv.items()} for i, kv in data.items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("netd.devconf.state_unreadable", path=str(self._path), error=str(exc))
            return {}

    def _save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._originals), encoding="utf-8")
        tmp.replace(self._path)

    def apply(self, ifname: str, values: Mapping[str, int]) -> None:
        current = read_ipv4_conf(self._k, ifname)
        changes = {k: v for k, v in values.items() if current[k] != v}
        saved = self._originals.setdefault(ifname, {})
        for k in values:
            saved.setdefault(k, current[k])
        self._refs[ifname] = self._refs.get(ifname, 0) + 1
        self._save()
        if changes:
            write_ipv4_conf(self._k, ifname, changes)
            for k, v in changes.items():
                log.info(
                    "netd.sysctl.changed", key=f"net.ipv4.conf.{ifname}.{k}", old=current[k], new=v
                )

    def release(self, ifname: str) -> None:
        """Drop one reference; restore the originals when none is left."""
        refs = self._refs.get(ifname, 0) - 1
        if refs > 0:
            self._refs[ifname] = refs
            return
        self._refs.pop(ifname, None)
        saved = self._originals.pop(ifname, {})
        self._save()
        if saved:
            try:
                write_ipv4_conf(self._k, ifname, saved)
            except KernelError as exc:
                if exc.errno_name != "ENODEV":  # an interface that vanished needs nothing
                    raise
                return
            log.info("netd.sysctl.restored", ifname=ifname, values=saved)

    def forget(self, ifname: str) -> None:
        """The interface is gone (e.g. a deleted VMAC): nothing to restore."""
        self._refs.pop(ifname, None)
        self._originals.pop(ifname, None)
        self._save()

    def restore_all(self) -> None:
        """Restore everything remembered, including what a previous (crashed) run saved."""
        for ifname in list(self._originals):
            self._refs[ifname] = 1
            self.release(ifname)
