"""Our GARP / NA frames byte-for-byte against what Debian's keepalived sends."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, IPv6
from scapy.layers.l2 import ARP, Ether

from netd.announce import build_garp, build_unsolicited_na
from tests.lab import Lab, Node

KEEPALIVED = "/usr/sbin/keepalived"

pytestmark = [
    pytest.mark.netns,
    pytest.mark.interop,
    pytest.mark.skipif(not Path(KEEPALIVED).exists(), reason="keepalived not installed"),
]


def _conf(vip: str, version: int) -> str:
    return f"""global_defs {{
    router_id interop
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 1
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 61
    priority 255
    advert_int 1
    version {version}
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


def _run_keepalived(node: Node, tmp_path: Path, conf: str) -> subprocess.Popen[bytes]:
    path = tmp_path / "keepalived.conf"
    path.write_text(conf)
    argv = [KEEPALIVED, "-n", "-l", "-P", "-f", str(path)]
    argv += ["-p", str(tmp_path / "k.pid"), "-r", str(tmp_path / "v.pid")]
    argv += ["-c", str(tmp_path / "c.pid")]
    return node.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_garp_is_byte_identical_to_keepalived(lab: Lab, tmp_path: Path) -> None:
    master, listener = lab.nodes
    cap = listener.capture()
    proc = _run_keepalived(master, tmp_path, _conf("192.0.2.100/32", 2))
    try:
        (frame,) = cap.wait_for(
            lambda f: ARP in Ether(f) and Ether(f)[ARP].psrc == "192.0.2.100", timeout=10
        )[:1]
    finally:
        _stop(proc)
        cap.close()
    ours = build_garp("192.0.2.100", master.mac())
    # keepalived pads to the 60-byte Ethernet minimum; the ARP part must match exactly.
    assert frame[: len(ours)] == ours
    assert set(frame[len(ours) :]) <= {0}


def test_unsolicited_na_matches_keepalived(lab: Lab, tmp_path: Path) -> None:
    master, listener = lab.nodes
    cap = listener.capture()
    proc = _run_keepalived(master, tmp_path, _conf("2001:db8::100/128", 3))
    try:
        frames = cap.wait_for(
            lambda f: ICMPv6ND_NA in Ether(f) and Ether(f)[ICMPv6ND_NA].tgt == "2001:db8::100",
            timeout=10,
        )
    finally:
        _stop(proc)
        cap.close()
    theirs = Ether(frames[0])
    router = bool(theirs[ICMPv6ND_NA].R)
    ours = Ether(build_unsolicited_na("2001:db8::100", master.mac(), router=router))
    assert (theirs.src, theirs.dst) == (ours.src, ours.dst)
    assert (theirs[IPv6].src, theirs[IPv6].dst, theirs[IPv6].hlim) == (
        ours[IPv6].src,
        ours[IPv6].dst,
        ours[IPv6].hlim,
    )
    # Everything from the ICMPv6 header on (flags, target, option, checksum) is identical.
    assert bytes(theirs[ICMPv6ND_NA]) == bytes(ours[ICMPv6ND_NA])
