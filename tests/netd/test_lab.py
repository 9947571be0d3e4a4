"""The shared lab itself: topology, addresses, reachability and cleanup."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from tests.lab import Lab, wait_until

pytestmark = pytest.mark.netns


def test_nodes_have_documentation_addresses_and_links_up(lab: Lab) -> None:
    n0, n1 = lab.nodes
    assert "192.0.2.10/24" in n0.address_set("eth0")
    assert "2001:db8::11/64" in n1.address_set("eth0")
    assert n0.links()["eth0"]["state"] == "UP"
    assert n0.mac() != n1.mac()


def _udp_roundtrip(lab: Lab, family: int, dst: str) -> bytes:
    n0, n1 = lab.nodes
    rx = n1.call(socket.socket, family, socket.SOCK_DGRAM)
    tx = n0.call(socket.socket, family, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind((dst, 0))
        rx.settimeout(3)
        tx.sendto(b"hello", rx.getsockname()[:2])
        return rx.recv(100)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_nodes_reach_each_other(lab: Lab, family: int) -> None:
    dst = lab.nodes[1].ip4 if family == socket.AF_INET else lab.nodes[1].ip6
    assert _udp_roundtrip(lab, family, dst) == b"hello"


def test_inside_binds_sockets_to_the_node_namespace(lab: Lab) -> None:
    n0 = lab.nodes[0]

    def names() -> set[str]:
        with IPRoute() as ipr:
            return {m.get("IFLA_IFNAME") for m in ipr.link("dump")}

    assert "eth0" in n0.call(names)
    assert n0.sysctl("net.ipv6.conf.eth0.accept_dad") == "0"


def test_capture_sees_a_frame_from_another_node(lab: Lab) -> None:
    n1 = lab.nodes[1]
    cap = n1.capture()
    try:
        _udp_roundtrip(lab, socket.AF_INET, n1.ip4)
        frames = cap.wait_for(lambda f: f[12:14] == b"\x08\x00", timeout=3)
        assert frames
    finally:
        cap.close()


def test_close_removes_every_namespace() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    lab = Lab(nodes=2)
    names = [lab.hub] + [n.netns for n in lab.nodes]
    lab.close()
    for name in names:
        assert not os.path.exists(f"/run/netns/{name}")


def test_wait_until_times_out_with_message() -> None:
    with pytest.raises(AssertionError, match="never"):
        wait_until(lambda: False, timeout=0.05, message="never")
    assert wait_until(lambda: 42, timeout=0.05) == 42


def test_routes_and_rules_read_back(lab: Lab) -> None:
    n0 = lab.nodes[0]
    assert any(r["dst"] == "192.0.2.0/24" and r["dev"] == "eth0" for r in n0.routes())
    assert any(r["table"] == 254 for r in n0.rules(socket.AF_INET))


def test_namespaces_are_removed_even_when_the_test_fails(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    names_file = tmp_path / "names.txt"
    (tmp_path / "conftest.py").write_text("from tests.lab_fixtures import make_lab\n")
    (tmp_path / "test_boom.py").write_text(
        "from pathlib import Path\n"
        "def test_boom(make_lab):\n"
        "    lab = make_lab(2)\n"
        "    names = [lab.hub] + [n.netns for n in lab.nodes]\n"
        f"    Path({str(names_file)!r}).write_text(' '.join(names))\n"
        "    raise RuntimeError('boom')\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        check=False,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the inner test failed...
    names = names_file.read_text().split()
    assert len(names) == 3
    for name in names:  # ...and its namespaces are gone anyway
        assert not os.path.exists(f"/run/netns/{name}")
