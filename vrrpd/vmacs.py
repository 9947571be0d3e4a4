"""Which VMACs each instance needs, under which names, and which addresses go on them.

Pure (no link state): keepalived's rules from ``vrrp_complete_instance`` / ``create_vmac_name``
applied to the configuration in file order.

* ``use_vmac``: the instance's own VMAC on its interface, named ``use_vmac``'s name or
  ``<vmac_prefix>.<vrid>`` (``vmac_prefix`` defaults to ``vrrp``). VIPs and eVIPs of the
  instance's family without ``dev`` (or with ``dev`` = the instance's interface) go on it.
* ``use_vmac_addr`` (or ``use_vmac`` on one address): a VMAC on the interface of every VIP/eVIP
  that lives elsewhere (another ``dev``, or the other address family on the instance's
  interface), one per (interface, family), named from ``vmac_addr_prefix`` (else
  ``vmac_prefix``, else ``vrrp``); the address goes on that VMAC.
* A name already taken (an explicit VMAC name of any instance, a VMAC named earlier, or an
  interface the configuration names) moves on: IPv4 ``<prefix>1.<vrid>``, ``<prefix>2.<vrid>``,
  ...; IPv6 ``<prefix>6.<vrid>`` first, then 1, 2, 3, 4, 5, 7, ... A prefix that would make the
  name longer than 15 characters is shortened.

keepalived also treats an interface that exists in the kernel as taken; here only the names the
configuration mentions are known (netd refuses to turn a non-macvlan into a VMAC).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from core import Address, Config, VrrpInstance

__all__ = ["InstanceVmacs", "assign_vmacs", "vmac_name_candidates"]

IFNAMSIZ: Final = 16
DEFAULT_PREFIX: Final = "vrrp"


def _fit(prefix: str, suffix: str) -> str:
    """keepalived shortens the prefix, not the VRID, when a name would not fit."""
    room = IFNAMSIZ - 1 - len(suffix)
    return f"{prefix[: max(room, 0)]}{suffix}"


def vmac_name_candidates(prefix: str, vrid: int, family: int) -> Iterator[str]:
    """keepalived's names for a VMAC, in the order it tries them."""
    yield _fit(prefix, f".{vrid}")
    numbers: Iterator[int]
    if family == 6:
        numbers = (n for n in _count_from(1) if n != 6)
        yield _fit(prefix, f"6.{vrid}")
    else:
        numbers = _count_from(1)
    for n in numbers:
        yield _fit(prefix, f"{n}.{vrid}")


def _count_from(n: int) -> Iterator[int]:
    while True:
        yield n
        n += 1


def _mac(vrid: int, family: int) -> str:
    # RFC 5798 7.3: 00:00:5e:00:01:VRID (IPv4), 00:00:5e:00:02:VRID (IPv6)
    return f"00:00:5e:00:{1 if family == 4 else 2:02x}:{vrid:02x}"


@dataclass(frozen=True, slots=True)
class InstanceVmacs:
    """One instance's VMACs as plain data for its intent, and where its addresses go."""

    own: dict[str, Any] | None
    #: use_vmac_addr VMACs (base, name, vrid, family, mac), in the order they were named
    extra: tuple[dict[str, Any], ...]
    #: (kind, index in that list) -> the VMAC the address goes on, for "vip" and "evip"
    devs: dict[tuple[str, int], str]


def assign_vmacs(config: Config) -> dict[str, InstanceVmacs]:
    instances = [
        i for i in config.instances if i.interface is not None and i.virtual_router_id is not None
    ]
    g = config.global_defs
    prefix = g.vmac_prefix or DEFAULT_PREFIX
    addr_prefix = g.vmac_addr_prefix or prefix
    taken: set[str] = {i.use_vmac.name for i in instances if i.use_vmac and i.use_vmac.name}
    taken |= _configured_interfaces(config)
    out: dict[str, InstanceVmacs] = {}
    for inst in instances:
        out[inst.name] = _one(inst, prefix, addr_prefix, taken)
    return out


def _configured_interfaces(config: Config) -> set[str]:
    names = {i.interface for i in config.instances if i.interface}
    for inst in config.instances:
        for a in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
            if a.dev:
                names.add(a.dev)
        names |= {t.name for t in inst.track_interface}
    names |= {a.dev for a in config.static_ipaddress if a.dev}
    return names


def _pick(prefix: str, vrid: int, family: int, taken: set[str]) -> str:
    for name in vmac_name_candidates(prefix, vrid, family):
        if name not in taken:
            taken.add(name)
            return name
    raise AssertionError("unreachable: the candidates never end")  # pragma: no cover


def _one(inst: VrrpInstance, prefix: str, addr_prefix: str, taken: set[str]) -> InstanceVmacs:
    assert inst.interface is not None and inst.virtual_router_id is not None
    vrid, family, base = inst.virtual_router_id, inst.family, inst.interface
    own: dict[str, Any] | None = None
    if inst.use_vmac is not None:
        name = inst.use_vmac.name or _pick(prefix, vrid, family, taken)
        own = {
            "base": base,
            "name": name,
            "default_name": inst.use_vmac.name is None,
            "vrid": vrid,
            "family": family,
            "mac": inst.use_vmac.mac or _mac(vrid, family),
            # keepalived creates the VMAC at start and keeps it whatever the state
            "always": True,
            "xmit_base": bool(inst.vmac_xmit_base),
        }
    extra: dict[tuple[str, int], dict[str, Any]] = {}
    devs: dict[tuple[str, int], str] = {}
    lists: tuple[tuple[str, tuple[Address, ...]], ...] = (
        ("vip", inst.virtual_ipaddress),
        ("evip", inst.virtual_ipaddress_excluded),
    )
    for kind, addresses in lists:
        for index, a in enumerate(addresses):
            on_base = a.dev is None or a.dev == base
            if on_base and own is not None and a.family == family:
                devs[(kind, index)] = str(own["name"])
                continue
            if not (inst.use_vmac_addr or a.use_vmac):
                continue
            if on_base and a.family == family:
                continue  # no use_vmac: the instance's own addresses stay on its interface
            where = base if on_base else str(a.dev)
            key = (where, a.family)
            if key not in extra:
                extra[key] = {
                    "base": where,
                    "name": _pick(addr_prefix, vrid, a.family, taken),
                    "vrid": vrid,
                    "family": a.family,
                    "mac": _mac(vrid, a.family),
                    "always": True,
                }
            devs[(kind, index)] = str(extra[key]["name"])
    return InstanceVmacs(own, tuple(extra.values()), devs)
