"""What strict mode (``vrrp_strict`` / ``strict_mode``) resets in an instance, as keepalived 2.2.7
reports it (keepalived 2.2.7). Messages are keepalived's own, checked live against
``keepalived -t`` (tests/core/test_samples_interop.py); each is an error that resets the setting.

The checks that strict mode shares with other causes (preempt_delay, authentication, the missing
VIP) stay with those in core.checks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.model import VrrpInstance

Reporter = Callable[..., None]


def strict_changes(
    inst: VrrpInstance, version: int, r: Reporter, at: tuple[str, ...]
) -> dict[str, Any]:
    """Report what strict mode refuses in ``inst``; return the fields it resets."""
    n = inst.name
    changes: dict[str, Any] = {}

    def reset(code: str, message: str, field: str, value: Any) -> None:
        r("error", code, f"({n}) {message}", field, at=(*at, field))
        changes[field] = value

    if inst.use_vmac is not None and inst.use_vmac.mac is not None:
        r(
            "error",
            "strict-vmac-mac",
            f"({n}): cannot specify MAC address with strict mode - clearing",
            inst.use_vmac.mac,
            at=(*at, "use_vmac"),
        )
        changes["use_vmac"] = replace(inst.use_vmac, mac=None)
    if inst.down_timer_adverts is not None and inst.down_timer_adverts != 3:
        reset(
            "strict-down-timer",
            "down_timer_adverts is incompatible with strict mode - resetting",
            "down_timer_adverts",
            3,
        )
    # The address owner always accepts, so only a non-owner's accept is refused.
    if inst.accept and version == 2 and inst.effective_priority != 255:
        reset(
            "strict-accept-v2",
            "warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting",
            "accept",
            False,
        )
    if inst.garp_lower_prio_repeat:
        reset(
            "strict-garp-repeat",
            "Strict mode requires no repeat garps. resetting",
            "garp_lower_prio_repeat",
            None,  # unset: strict mode's effective value is 0, which the keyword cannot say
        )
    if inst.garp_lower_prio_delay:
        reset(
            "strict-garp-delay",
            "Strict mode requires no repeat garp delay. resetting",
            "garp_lower_prio_delay",
            None,  # unset: strict mode's effective value is 0, which the keyword cannot say
        )
    if inst.lower_prio_no_advert is False:
        reset(
            "strict-lower-prio-advert",
            "Strict mode requires no lower priority advert. resetting",
            "lower_prio_no_advert",
            True,
        )
    if inst.higher_prio_send_advert:
        reset(
            "strict-higher-prio-advert",
            "strict mode requires higher_prio_send_advert to be clear. resetting",
            "higher_prio_send_advert",
            False,
        )
    if inst.vmac_xmit_base:
        reset(
            "strict-xmit-base",
            "xmit_base is incompatible with strict mode - resetting",
            "vmac_xmit_base",
            False,
        )
    # keepalived makes the initial state follow ownership (its -d dump: Wantstate).
    owner = inst.effective_priority == 255
    if (inst.effective_state == "MASTER") != owner:
        r(
            "error",
            "strict-master-owner",
            f"({n}) State MASTER must match being address owner",
            str(inst.state),
            at=(*at, "state"),
        )
        changes["state"] = "MASTER" if owner else "BACKUP"
    vips = inst.virtual_ipaddress
    if inst.family == 6 and inst.version == 2:
        reset(
            "strict-ipv6-v2",
            "cannot use IPv6 with VRRP version 2; setting version 3",
            "version",
            3,
        )
    if vips and vips[0].family == 6 and not ipaddress.IPv6Address(vips[0].ip).is_link_local:
        r(
            "error",
            "strict-ipv6-link-local",
            f"({n}) the first IPv6 VIP address must be link local",
            vips[0].address,
            at=(*at, "virtual_ipaddress"),
        )
    return changes
