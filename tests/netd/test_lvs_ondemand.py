"""netd loads its LVS driver on first need (netd.lvsdemand): a VRRP-only netd's modules,
as the watchdog's image holds them, include no datapath backend. The daemon-level behaviour
(no driver until a reload adds a virtual server; a table left behind still removed) is in
tests/netd/test_lvs_daemon.py."""

from __future__ import annotations

import subprocess
import sys

from tests.daemon import REPO

# What the watchdog imports for a VRRP-only node's netd (watchdog.spawn.ENTRY_MODULES).
_PROBE = (
    "import sys, netd.process\n"
    "print(' '.join(sorted(m for m in sys.modules if m.startswith(("
    "'netd.lvs.', 'netd.nftwatch', 'pyroute2.netlink.generic')))))\n"
)


def test_a_vrrp_only_netd_imports_no_lvs_backend() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.split() == []


def test_the_driver_module_does_bring_the_backends() -> None:
    """The probe above can fail: importing the driver loads what a VRRP-only netd skips."""
    probe = _PROBE.replace("netd.process", "netd.process, netd.lvs.driver")
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert {"netd.lvs.ipvs_backend", "netd.lvs.nft_backend", "netd.nftwatch"} <= set(
        out.stdout.split()
    )
