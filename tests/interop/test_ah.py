"""Issue #4 (1): VRRPv2 ``authentication { auth_type AH }`` against Debian's keepalived 2.2.7.

keepalived's AH is IPsec-AH done by hand: IP protocol 51, SPI = source address, a sequence
number, HMAC-MD5-96 over the IP header (mutable fields zeroed), AH header and VRRP message.
Both daemons get the same keepalived.conf text. keepalived logs every AH packet it refuses
("IPSEC-AH : invalid IPSEC HMAC-MD5 value", "sequence number ... already processed", "No AH
header but auth type is AH"), so a clean keepalived log means our adverts passed its checks.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.daemon import daemon_group
from tests.interop.peers import COMPLAINTS, KeepalivedPeer, wait_sole_holder
from tests.interop.variants import OURS, THEIRS, Variant, keepalived, pykeepalived
from tests.lab import Lab, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.interop]

HIGH, LOW = 150, 100
AH = Variant("v2-ah", 2, 4, "192.0.2.100/24", 1, auth_pass="s3cret", auth_type="AH")
# keepalived zeroes the TTL in the ICV only for unicast instances: both forms are tested.
AH_UNICAST = Variant(
    "v2-ah-unicast", 2, 4, "192.0.2.100/24", 1, auth_pass="s3cret", auth_type="AH", unicast=True
)
BOTH = [pytest.param(AH, id="multicast"), pytest.param(AH_UNICAST, id="unicast")]
# Python start-up, log polling and netlink round trips on a loaded CI box.
SLACK = 1.0
# What keepalived logs about an AH advert it refused (vrrp.c: vrrp_in_chk_ipsecah, check_packet).
AH_REFUSALS = re.compile(r"IPSEC|AH header|auth", re.IGNORECASE)


def _refusals(ka: KeepalivedPeer) -> list[str]:
    lines = ka.log_text().splitlines()
    return [ln for ln in lines if COMPLAINTS.search(ln) or AH_REFUSALS.search(ln)]


def _skew(priority: int) -> float:
    return (256 - priority) / 256 * AH.advert_int


def _mdi(priority: int) -> float:
    return 3 * AH.advert_int + _skew(priority)


def _ah_frames(frames: list[bytes], src: str) -> list[bytes]:
    """IPv4 protocol-51 frames from ``src``."""
    return [
        f
        for f in frames
        if f[12:14] == b"\x08\x00"
        and f[14 + 9] == 51
        and f[26:30] == ipaddress.ip_address(src).packed
    ]


@pytest.mark.parametrize("variant", BOTH)
def test_pykeepalived_with_higher_priority_wins_and_its_ah_adverts_decode(
    lab: Lab, variant: Variant
) -> None:
    from scapy.layers import ipsec
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    from scapy.layers.vrrp import VRRP

    capture = lab.node(THEIRS).capture()
    try:
        with keepalived(lab, variant, LOW) as ka, pykeepalived(lab, variant, HIGH) as ours:
            state = ours.watch.wait_state("MASTER", 15 + 3 * AH.master_down)
            assert state["priority"] == HIGH and state["version"] == 2
            ka.wait_current("BACKUP", timeout=2 * AH.master_down)
            wait_sole_holder(lab, AH.vip, OURS, 2 * AH.master_down)
            me = lab.node(OURS).ip4
            ka.wait_log(rf"received advert from {re.escape(me)} with higher priority {HIGH}", 5)
            mine = capture.wait_for(
                lambda f: bool(_ah_frames([f], me)), count=3, timeout=3 * AH.advert_int + SLACK
            )
            # Still BACKUP after several of our adverts: it accepted every one of them.
            assert ka.current_state() == "BACKUP"
            assert _refusals(ka) == []
            dropped = [ln for ln in ours.group.log_text().splitlines() if ".dropped" in ln]
            assert dropped == [], dropped
    finally:
        capture.close()
    seqs = []
    for raw in mine:
        pkt = Ether(raw)
        ip, ah = pkt[IP], pkt[ipsec.AH]
        dst = lab.node(THEIRS).ip4 if variant.unicast else "224.0.0.18"
        assert (ip.src, ip.dst, ip.ttl, ip.proto, ip.tos) == (me, dst, 255, 51, 0xC0)
        assert ah.nh == 112 and ah.payloadlen == 4
        assert ah.spi == int(ipaddress.IPv4Address(me))
        assert len(bytes(ah.icv)) == 12
        vrrp = VRRP(bytes(ah.payload))
        assert (vrrp.version, vrrp.vrid, vrrp.priority, vrrp.adv) == (2, 51, HIGH, 1)
        assert vrrp.authtype == 2 and (vrrp.auth1, vrrp.auth2) == (0, 0)
        assert list(vrrp.addrlist) == [str(ipaddress.ip_interface(AH.vip).ip)]
        got = int(vrrp.chksum)
        vrrp.chksum = None
        assert int(VRRP(bytes(vrrp)).chksum) == got, "VRRP checksum is not what scapy computes"
        seqs.append(int(ah.seq))
    assert len(seqs) >= 3
    assert seqs == sorted(set(seqs)), f"sequence numbers must rise: {seqs}"


@pytest.mark.parametrize("variant", BOTH)
def test_keepalived_with_higher_priority_wins(lab: Lab, variant: Variant) -> None:
    with keepalived(lab, variant, HIGH) as ka, pykeepalived(lab, variant, LOW) as ours:
        ka.wait_current("MASTER", timeout=3 * AH.master_down)
        ours.watch.wait_state("BACKUP", 15)
        wait_sole_holder(lab, AH.vip, THEIRS, 2 * AH.master_down)
        # Longer than our Master_Down_Interval: had we refused its adverts we would take over.
        deadline = time.monotonic() + _mdi(LOW) + SLACK
        while time.monotonic() < deadline:
            assert ours.watch.states()[-1] == "BACKUP"
            time.sleep(0.1)
        assert "MASTER" not in ours.watch.states()
        assert ka.current_state() == "MASTER"
        dropped = [ln for ln in ours.group.log_text().splitlines() if ".dropped" in ln]
        assert dropped == [], dropped
        assert _refusals(ka) == []


def test_failover_both_ways(lab: Lab) -> None:
    """keepalived master stops -> we take over; keepalived comes back higher -> it takes over
    again (its sequence counter restarts at 0 and follows ours, keepalived's anti-replay rule);
    then our group is killed -> keepalived takes over on our priority-0 advert."""
    with pykeepalived(lab, AH, LOW) as ours:
        with keepalived(lab, AH, HIGH) as ka:
            ka.wait_current("MASTER", timeout=3 * AH.master_down)
            ours.watch.wait_state("BACKUP", 15)
            t0 = time.time()
            ka.signal(signal.SIGTERM)  # priority 0: we wait our skew time only
            master = ours.watch.wait_state("MASTER", _mdi(LOW) + SLACK)
            assert master["_ts"] - t0 < _skew(LOW) + SLACK
            assert ka.proc is not None
            ka.proc.wait(10)
            wait_sole_holder(lab, AH.vip, OURS, 5)
            assert _refusals(ka) == []
        mark = ours.watch.mark()
        with keepalived(lab, AH, HIGH) as ka:
            ka.wait_current("MASTER", timeout=3 * AH.master_down + SLACK)
            ours.watch.wait_state("BACKUP", 2 * AH.master_down, since=mark)
            wait_sole_holder(lab, AH.vip, THEIRS, 5)
            assert _refusals(ka) == []
            dropped = [ln for ln in ours.group.log_text().splitlines() if ".dropped" in ln]
            assert dropped == [], dropped
    with keepalived(lab, AH, LOW) as ka, pykeepalived(lab, AH, HIGH) as ours:
        ours.watch.wait_state("MASTER", 15 + 3 * AH.master_down)
        ka.wait_current("BACKUP", timeout=2 * AH.master_down)
        mark_ka = ka.mark()
        t0 = time.monotonic()
        os.kill(ours.group.pids()["watchdog"], signal.SIGKILL)  # components stop in order
        ka.wait_log(r"Backup received priority 0 advertisement", 2 * AH.master_down, mark_ka)
        ka.wait_current("MASTER", timeout=2 * AH.master_down)
        assert time.monotonic() - t0 < _skew(LOW) + SLACK
        wait_sole_holder(lab, AH.vip, THEIRS, 5)
        assert _refusals(ka) == []


def test_wrong_password_is_dropped_by_both_sides(lab: Lab, tmp_path: Path) -> None:
    ours_conf = AH.config(lab, OURS, HIGH).replace("auth_pass s3cret", "auth_pass wrong")
    assert "auth_pass wrong" in ours_conf
    node = lab.node(OURS)
    with (
        keepalived(lab, AH, LOW) as ka,
        daemon_group(node, ours_conf, "-l", env={"TMPDIR": str(tmp_path)}) as group,
    ):
        group.wait_started()
        # Neither hears the other: both end up master.
        ka.wait_current("MASTER", timeout=3 * AH.master_down + SLACK)
        ka.wait_log(r"IPSEC-AH : invalid IPSEC HMAC-MD5 value", 15 + 3 * AH.master_down)

        def auth_drops() -> list[str]:
            return [
                ln
                for ln in group.log_text().splitlines()
                if "vrrpd.advert.dropped" in ln and re.search(r"\breason=auth\b", ln)
            ]

        line = wait_until(auth_drops, 3 * AH.master_down + SLACK, message="auth drop")[0]
        assert "ICV" in line and f"from {lab.node(THEIRS).ip4}" in line and "count=1" in line
        wait_until(
            lambda: AH.vip in node.address_set(), 3 * AH.master_down + SLACK, message="our VIP"
        )
        assert ka.current_state() == "MASTER"
        # The drops are counted where keepalived counts them: auth_failure in the stats dump.
        os.kill(group.pids()["vrrpd"], signal.SIGUSR2)
        stats = tmp_path / "keepalived.stats"
        wait_until(stats.exists, 5, message="keepalived.stats")
        failures = re.search(r"Failure: (\d+)", stats.read_text())
        assert failures is not None and int(failures.group(1)) >= 1, stats.read_text()


def test_plain_adverts_for_an_ah_instance_are_dropped_as_auth_type(lab: Lab) -> None:
    """keepalived with ``auth_type PASS`` on the same VRID: its protocol-112 adverts reach our
    AH instance and are dropped by name ("No AH header but auth type is AH" in keepalived)."""
    pass_variant = Variant("v2-pass", 2, 4, "192.0.2.100/24", 1, auth_pass="s3cret")
    with keepalived(lab, pass_variant, HIGH) as ka, pykeepalived(lab, AH, LOW) as ours:
        ka.wait_current("MASTER", timeout=3 * AH.master_down)

        def type_drops() -> list[str]:
            return [
                ln
                for ln in ours.group.log_text().splitlines()
                if "vrrpd.advert.dropped" in ln and re.search(r"\breason=auth_type\b", ln)
            ]

        line = wait_until(type_drops, 3 * AH.master_down, message="auth_type drop")[0]
        assert "PASS" in line and "AH" in line, line
        # Not heard, so not obeyed: we take over after our Master_Down_Interval.
        ours.watch.wait_state("MASTER", _mdi(LOW) + 15)
