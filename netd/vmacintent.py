"""What an intent asks of VMACs: the macvlans to create, which stay proto-down while their
instance is not MASTER, and where ``garp_extra_if`` sends its periodic GARP/NA.

Pure: netd's daemon turns these into kernel changes and frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bus import messages
from netd.announce import Target
from netd.desired import Address, Item

PROTODOWN_ENV = "PYKEEPALIVED_VMAC_PROTODOWN"
PROTODOWN_POLICIES = ("passive", "all", "off")
# The advert-carrying VMAC is not proto-down by default: the first advert of a new MASTER
# leaves before netd hears of the change and would be lost, which lets a peer (keepalived
# or not) that is about to time out become master too, briefly.
PROTODOWN_DEFAULT = "passive"


@dataclass(frozen=True, slots=True)
class VmacSpec:
    """A VMAC as an intent asks for it (see vrrpd.plan)."""

    name: str
    base: str
    vrid: int
    family: int  # 4 or 6
    mac: str | None
    always: bool
    #: the instance's adverts go out of it (its own VMAC without vmac_xmit_base)
    adverts: bool = False

    @classmethod
    def from_intent(cls, vmac: messages.Vmac, adverts: bool = False) -> VmacSpec:
        if vmac.family not in (4, 6):
            raise ValueError(f"vmac family {vmac.family} is neither 4 nor 6")
        return cls(
            name=vmac.name,
            base=vmac.base,
            vrid=vmac.vrid,
            family=vmac.family,
            mac=vmac.mac.lower() if vmac.mac else None,
            always=vmac.always,
            adverts=adverts,
        )


@dataclass(frozen=True, slots=True)
class ExtraIf:
    """``garp_extra_if`` as an intent asks for it: every ``interval`` s one GARP/NA per VIP
    interface that is a VMAC (every one with ``all_if``), except ``own`` (the instance's
    advert interface) unless it sends adverts from its base (``vmac_xmit_base``)."""

    interval: float
    all_if: bool
    own: str
    xmit_base: bool

    @classmethod
    def from_intent(cls, intent: messages.Intent) -> ExtraIf | None:
        raw, vmac = intent.garp_extra_if, intent.vmac
        if raw is None:
            return None
        interval = float(raw.interval)
        if not 0 < interval <= 86400:
            raise ValueError(f"garp_extra_if interval {interval} is not in (0, 86400]")
        own = vmac.name if vmac is not None else intent.interface
        xmit_base = bool(vmac.xmit_base) if vmac is not None else False
        return cls(interval, raw.all, str(own), xmit_base)


def extra_if_targets(
    extra: ExtraIf, items: list[Item], vmacs: set[str], macs: Mapping[str, str | None]
) -> list[Target]:
    """keepalived's ``vrrp_send_vmac_update``: the first VIP/eVIP of each qualifying
    interface, once per interface."""
    out: list[Target] = []
    done: set[str] = set()
    for item in items:
        if not isinstance(item, Address) or item.dev in done:
            continue
        if item.dev not in vmacs and not extra.all_if:
            continue
        if item.dev == extra.own and not extra.xmit_base:
            continue
        mac = macs.get(item.dev)
        if not mac:
            continue
        done.add(item.dev)
        out.append(Target(ifname=item.dev, ip=item.ip, mac=mac))
    return out


def vmac_specs(intent: messages.Intent) -> tuple[VmacSpec, ...]:
    """The intent's own VMAC (first) and its ``addr_vmacs``."""
    specs = []
    if intent.vmac is not None:
        specs.append(VmacSpec.from_intent(intent.vmac, adverts=not intent.vmac.xmit_base))
    specs += [VmacSpec.from_intent(v) for v in intent.addr_vmacs]
    return tuple(specs)


def protodown_policy(value: str | None) -> str:
    """``$PYKEEPALIVED_VMAC_PROTODOWN``: which VMACs stay proto-down while their instance is
    not MASTER. ``passive`` (default): those that carry no adverts (use_vmac_addr VMACs, and
    the own VMAC with vmac_xmit_base); ``all``: the advert-carrying one too; ``off``: none."""
    policy = (value or PROTODOWN_DEFAULT).strip().lower()
    if policy not in PROTODOWN_POLICIES:
        raise ValueError(f"{PROTODOWN_ENV}={value!r}: not one of {', '.join(PROTODOWN_POLICIES)}")
    return policy


def wants_protodown(policy: str, spec: VmacSpec, master: bool) -> bool:
    if master or policy == "off":
        return False
    return policy == "all" or not spec.adverts
