"""When netd needs its LVS driver at all (light: imported by every netd, the driver is not).

The driver and its backends (nftables tables, IPVS over generic netlink, with pyroute2's
message classes for both: 19 modules, ~1 MiB and ~30 ms of imports, docs/benchmarks.md) are
work for a node with virtual servers. A VRRP-only node, the common case, needs them only to
remove what an earlier run left, so netd loads the driver when the first of these holds:

* the configuration has a ``virtual_server``, or IPVS-wide settings keepalived applies at
  start whatever is configured (``lvs_flush``, ``lvs_timeouts``): :func:`driver_needed`
  (:func:`core.effective.lvs_work`);
* checkd reports a pool (``check.pool.*``);
* a table carrying our marker is in the kernel (a killed run's, or a reload removed the last
  virtual server and netd was then restarted): :func:`marked_tables`, one dump per family.

The watchdog asks the same question (:func:`core.effective.lvs_work`), to import the
driver into the image it forks netd from only when it will be used at once.
"""

from __future__ import annotations

from typing import Final

from pyroute2.netlink.nfnetlink.nftsocket import NFPROTO_INET, NFPROTO_NETDEV, NFT_MSG_GETTABLE

from core.effective import lvs_work
from core.model import Config
from netd.nftbatch import NftSocket

# The userdata our tables carry (netd.lvs.render writes them; a table is ours by its marker,
# not its name).
MARKER: Final = "pykeepalived netd lvs"
DR_MARKER: Final = "pykeepalived netd lvs dr"
_FAMILIES: Final = ((NFPROTO_INET, MARKER), (NFPROTO_NETDEV, DR_MARKER))


def driver_needed(config: Config) -> bool:
    """Whether ``config`` gives the LVS driver work at once."""
    return lvs_work(config)


def marked_tables() -> list[str]:
    """Our tables left in the kernel (netlink worker thread); raises ``NftError``."""
    found = []
    for family, marker in _FAMILIES:
        sock = NftSocket(family)
        try:
            for msg in sock.dump(NFT_MSG_GETTABLE, (), "list tables"):
                if str(msg.get_attr("NFTA_TABLE_USERDATA") or "") == marker:
                    found.append(str(msg.get_attr("NFTA_TABLE_NAME")))
        finally:
            sock.close()
    return found
