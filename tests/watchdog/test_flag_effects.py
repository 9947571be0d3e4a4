"""keepalived's -V, -d, -a and -e do here what they do in keepalived 2.2.7."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import JSON_LOGS, daemon_group
from tests.lab import Lab, wait_until
from watchdog.cli import main

VIP = "192.0.2.200/32"
STATIC = "198.51.100.9/32"

CONFIG = f"""
static_ipaddress {{
    {STATIC} dev eth0
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {VIP}
    }}
}}
"""


def _vrrp_priorities(frames: list[bytes]) -> set[int]:
    """Priorities of the IPv4 VRRP adverts among ``frames``."""
    out = set()
    for f in frames:
        if f[12:14] == b"\x08\x00" and f[23] == 112:
            header = (f[14] & 0x0F) * 4
            out.add(f[14 + header + 2])
    return out


def _records(text: str, event: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if f'"{event}"' in line:
            rec = json.loads(line[line.index("{") :])
            if rec.get("event") == event:
                out.append(rec)
    return out


@pytest.mark.netns
def test_v_keeps_the_vips_at_stop_d_dumps_the_config_a_logs_addresses(lab: Lab) -> None:
    node, peer = lab.node(0), lab.node(1)
    capture = peer.capture()
    try:
        with daemon_group(node, CONFIG, "-l", "-V", "-d", "-a", env=JSON_LOGS) as group:
            wait_until(lambda: VIP in node.address_set("eth0"), 20, message="the VIP")
            assert STATIC in node.address_set("eth0")
            # -a: netd logs the address events netlink reports, ours included.
            wait_until(
                lambda: any(
                    r["address"] == VIP and r["interface"] == "eth0"
                    for r in _records(group.log_text(), "netd.address.added")
                ),
                10,
                message="netd.address.added for the VIP",
            )

            # -d: core logs the configuration it parsed, line by line, after publishing it:
            # the VIP can be in place before the last line is written.
            def whole_dump() -> list[dict[str, Any]] | None:
                dump = _records(group.log_text(), "config.dump")
                return dump if dump and len(dump) == dump[0]["of"] else None

            dump = wait_until(whole_dump, 10, message="every line of the configuration dump")
            text = "\n".join(r["text"] for r in dump)
            assert "vrrp_instance VI_1 {" in text and "192.0.2.200" in text
            capture.wait_for(lambda f: _vrrp_priorities([f]) == {150}, timeout=10)
            group.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: group.proc.poll() is not None, 30, message="the group to stop")
            log = group.log_text()
        # -V: the VIP stays and no priority-0 advert went out; the static address goes.
        assert VIP in node.address_set("eth0")
        assert STATIC not in node.address_set("eth0")
        capture.poll(0.2)
        assert 0 not in _vrrp_priorities(capture.frames)
        (withdrawn,) = _records(log, "netd.withdrawn")
        assert withdrawn["kept"] == 1
        # vrrpd renewed the held intent for the stop, so netd held it until its own turn.
        (kept,) = _records(log, "vrrpd.vips.kept")
        assert kept["instances"] == ["VI_1"]
    finally:
        capture.close()


@pytest.mark.parametrize(("flags", "code"), [((), 0), (("-e",), 5)])
def test_e_makes_a_missing_include_an_error(
    tmp_path: Path, flags: tuple[str, ...], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(f"include {tmp_path}/missing.conf\n")
    assert main(["-t", "-f", str(conf), *flags]) == code
    assert "Config files missing" in capsys.readouterr().err


# An instance held in FAULT (its tracked interface stays down) never adds its VIP itself, so
# whatever happens to the address found on eth0 is -X's doing.
FAULTY = """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    track_interface {
        dum0
    }
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.200/32
    }
}
"""
OPERATORS = "198.51.100.5/32"


@pytest.mark.netns
def test_x_removes_a_configured_vip_found_at_start_up_and_nothing_else(lab: Lab) -> None:
    node = lab.node(0)
    node.run(["ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1"])  # left down
    for address in (VIP, OPERATORS):
        node.run(["ip", "addr", "add", address, "dev", "eth0"])
    with daemon_group(node, FAULTY, "-l", "-X", env=JSON_LOGS) as group:
        wait_until(lambda: VIP not in node.address_set("eth0"), 20, message="the VIP to go")
        # netd logs the release after the kernel has acknowledged it: wait for the line too.
        wait_until(
            lambda: "netd.vip.released" in group.log_text(), 10, message="the release logged"
        )
        (released,) = _records(group.log_text(), "netd.vip.released")
        assert "192.0.2.200" in released["item"]
        assert OPERATORS in node.address_set("eth0")
