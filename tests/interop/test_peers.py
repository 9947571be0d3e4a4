"""The interop helpers themselves: configs both daemons accept, and the scapy advert decoder."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _pytest.mark.structures import ParameterSet
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Packet

from core import loads
from tests.interop.peers import KEEPALIVED, decode_vrrp, vrrp_frames
from tests.interop.variants import VARIANTS, Variant, variant_of

EXTRAS: list[dict[str, Any]] = [{}, {"nopreempt": True}, {"preempt_delay": 3.0}]


class _FakeLab:
    """Just enough of a Lab for Variant.config (no namespaces needed to render text)."""

    def __init__(self) -> None:
        import ipaddress

        from tests.lab import Node

        self.nodes = [
            Node(
                i,
                f"x{i}",
                "eth0",
                ipaddress.IPv4Interface(f"192.0.2.1{i}/24"),
                ipaddress.IPv6Interface(f"2001:db8::1{i}/64"),
            )
            for i in range(2)
        ]

    def node(self, i: int) -> object:
        return self.nodes[i]


def _configs() -> list[ParameterSet]:
    out = []
    for param in VARIANTS:
        variant = variant_of(param)
        for extra in EXTRAS:
            label = "-".join(extra) or "plain"
            out.append(pytest.param(variant, extra, id=f"{param.id}-{label}"))
    return out


@pytest.mark.parametrize(("variant", "extra"), _configs())
def test_pykeepalived_reads_the_shared_config_without_problems(
    variant: Variant, extra: dict[str, Any]
) -> None:
    lab = _FakeLab()
    for index in (0, 1):
        # _FakeLab stands in for a Lab: config() only asks it for nodes.
        text = variant.config(lab, index, 150, **extra)  # type: ignore[arg-type]
        result = loads(text, script_env=None)
        assert [str(p) for p in result.problems] == []
        inst = result.config.instances[0]
        assert inst.priority == 150
        assert inst.nopreempt == bool(extra.get("nopreempt"))


@pytest.mark.interop
@pytest.mark.parametrize(("variant", "extra"), _configs())
def test_keepalived_reads_the_shared_config_without_problems(
    variant: Variant, extra: dict[str, Any]
) -> None:
    lab = _FakeLab()
    with tempfile.TemporaryDirectory(prefix="pk-kat-") as tmp:
        conf = Path(tmp) / "keepalived.conf"
        conf.write_text(variant.config(lab, 1, 150, **extra))  # type: ignore[arg-type]  # _FakeLab
        proc = subprocess.run(
            [str(KEEPALIVED), "-t", "-f", str(conf), "-l"], capture_output=True, text=True
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _frame(packet: Packet) -> bytes:
    return bytes(packet)


@pytest.mark.parametrize(
    "frame",
    [
        Ether()
        / IP(src="192.0.2.10", dst="224.0.0.18", ttl=255)
        / VRRP(vrid=7, priority=150, addrlist=["192.0.2.100"], authtype=1, auth1=0x73336372),
        Ether()
        / IP(src="192.0.2.10", dst="224.0.0.18", ttl=255)
        / VRRPv3(vrid=7, priority=150, adv=10, addrlist=["192.0.2.100"]),
        Ether()
        / IPv6(src="fe80::1", dst="ff02::12", hlim=255)
        / VRRPv3(vrid=7, priority=150, adv=10, addrlist=["2001:db8::100"]),
    ],
    ids=["v2", "v3-ipv4", "v3-ipv6"],
)
def test_decoder_accepts_good_and_flags_bad_checksums(frame: Packet) -> None:
    raw = _frame(frame)
    assert vrrp_frames([raw]) == [raw]
    good = decode_vrrp(raw)
    assert (good.vrid, good.priority, good.ttl, good.checksum_ok) == (7, 150, 255, True)
    offset = 14 + (20 if good.version == 2 or "." in good.src else 40) + 6
    bad = bytearray(raw)
    bad[offset] ^= 0x01
    assert not decode_vrrp(bytes(bad)).checksum_ok
    # Something that is not VRRP is not picked.
    assert vrrp_frames([_frame(Ether() / IP(proto=17) / (b"x" * 30))]) == []
