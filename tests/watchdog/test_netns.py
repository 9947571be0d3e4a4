"""net_namespace / -s: the whole daemon works in the named namespace, as keepalived's does."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import daemon_group
from tests.lab import Lab, wait_until
from watchdog import netns
from watchdog.errors import NamespaceUnavailable

VIP = "198.51.100.77"

CONFIG = """
net_namespace {ns}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 52
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {vip}/32
    }}
}}
"""


class RootNamespace:
    """Starts processes where the test runs (the host's namespace), as systemd would."""

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, **kwargs)


def _netns_inode(path: str | Path) -> int:
    return os.stat(path).st_ino


def test_a_missing_namespace_is_named(tmp_path: Path) -> None:
    with pytest.raises(NamespaceUnavailable, match="network namespace blue does not exist"):
        netns.enter("blue", tmp_path)


@pytest.mark.parametrize("name", ["", "..", "a/b"])
def test_a_path_is_not_a_namespace_name(name: str) -> None:
    with pytest.raises(NamespaceUnavailable, match="not a namespace name"):
        netns.enter(name)


@pytest.mark.netns
def test_the_vip_lands_in_the_named_namespace_and_nowhere_else(
    make_lab: Callable[..., Lab],
) -> None:
    lab = make_lab(2)
    target, other = lab.node(1), lab.node(0)
    assert VIP not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    config = CONFIG.format(ns=target.netns, vip=VIP)
    with daemon_group(RootNamespace(), config, "-l") as group:
        pids = group.wait_started(timeout=20)
        wait_until(
            lambda: f"{VIP}/32" in target.address_set("eth0"), 20, message="the VIP in the node"
        )
        # Every process of the group lives in the named namespace.
        inode = _netns_inode(Path(netns.NETNS_DIR) / target.netns)
        assert {_netns_inode(f"/proc/{pid}/ns/net") for pid in pids.values()} == {inode}
        assert f"{VIP}/32" not in other.address_set()
        host = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        assert VIP not in host
        assert "watchdog.namespace.entered" in group.log_text()
    # Stopping withdraws it from the namespace it was put in.
    assert f"{VIP}/32" not in target.address_set("eth0")
