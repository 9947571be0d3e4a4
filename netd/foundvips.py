"""keepalived's -X (``--release-vips``): configured VIPs found on the host at start-up that
pykeepalived did not install are removed.

keepalived 2.2.7 with -X deletes an instance's VIPs whenever it sets the interface to backup
state, at start-up included, whether or not it added them in this run; here netd does it once,
when the first configuration arrives, for addresses it does not own (no marker, not in its
state file). An instance that becomes MASTER then adds them back as its own.
"""

from __future__ import annotations

from collections.abc import Iterable

import core
from netd import fromconfig
from netd.desired import Address, Item, item_key
from netd.errors import InvalidItemError
from netd.kernel import Observed


def configured(config: core.Config) -> list[Address]:
    """Every VIP and excluded VIP of the configuration, on the interface it goes on.

    A VIP without ``dev`` goes on the instance's interface, or on its VMAC, whose name (and so
    whether it exists yet) netd only learns from vrrpd: those are left out.
    """
    out = []
    for instance in config.instances:
        for part in (*instance.virtual_ipaddress, *instance.virtual_ipaddress_excluded):
            if part.dev is None and instance.use_vmac is not None:
                continue
            try:
                out.append(fromconfig.address(part, instance.interface))
            except InvalidItemError:
                continue  # core reported it; there is nothing to look for
    return out


def unowned(vips: Iterable[Address], observed: Observed) -> list[Item]:
    """The observed items that are one of ``vips`` and that netd did not install."""
    wanted = {item_key(v) for v in vips}
    return [
        item
        for item in observed.items
        if item_key(item) in wanted and item_key(item) not in observed.owned
    ]
