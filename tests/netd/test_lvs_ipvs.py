"""netd's IPVS backend without IPVS (this kernel has none): the encoded messages byte for byte
against include/uapi/linux/ip_vs.h, and the backend against a fake kernel that parses those
bytes as ip_vs_ctl.c does (tests/netd/ipvs_fake.py): adopt, diff, reconcile, refusals per
virtual server, flushes, withdrawal, lvs_timeouts and virtual_server_group (a service per
entry, as keepalived)."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from dataclasses import replace
from typing import Any

import pytest
from pyroute2 import IPVSDest, IPVSService
from pyroute2.ipvs import AsyncIPVS
from pyroute2.netlink.generic.ipvs import ipvsmsg

import core
from netd.errors import KernelError, LvsApplyError
from netd.lvs import Forwarding, Member, Persistence, Service, VirtualServer
from netd.lvs.backend import choose_backend, ipvs_available
from netd.lvs.fromconfig import desired_servers
from netd.lvs.ipvs_backend import IpvsBackend
from netd.lvs.ipvs_encode import (
    FWD_METHODS,
    Timeouts,
    dest_specs,
    request,
    service_from_message,
    service_spec,
    service_specs,
)
from netd.lvs.settings import LvsSettings
from tests.netd.ipvs_fake import FakeIpvs, parse_request

VIP, VIP6 = "198.51.100.80", "2001:db8::80"
A, B = Member("203.0.113.10", 8080, 3), Member("203.0.113.11", 8080, 1)


def _vs(*members: Member, **kw: Any) -> VirtualServer:
    kw.setdefault("scheduler", "wrr")
    return VirtualServer(Service(VIP, "tcp", 80), members=members, **kw)


def _bytes(msg: Any) -> tuple[int, dict[str, Any]]:
    msg.encode()
    cmd, version, attrs = parse_request(bytes(msg.data))
    assert version == 1  # IPVS_GENL_VERSION
    return cmd, attrs


def u32(v: int) -> bytes:
    return struct.pack("=I", v)


# ---- bytes ------------------------------------------------------------------------------------


def test_an_ipv4_service_is_laid_out_as_ip_vs_h_says() -> None:
    vs = _vs(A, persistence=Persistence(60, 24), flags=frozenset({"ops"}))
    cmd, attrs = _bytes(request("new_service", service_spec(vs)))
    assert cmd == 1  # IPVS_CMD_NEW_SERVICE
    assert attrs["SERVICE"] == {
        "AF": struct.pack("=H", socket.AF_INET),
        "PROTOCOL": struct.pack("=H", socket.IPPROTO_TCP),
        "ADDR": socket.inet_aton(VIP),
        "PORT": struct.pack("!H", 80),  # network order
        "SCHED_NAME": b"wrr\0",  # NLA_NUL_STRING
        # struct ip_vs_flags {u32 flags; u32 mask}: PERSISTENT | ONEPACKET, every bit set here
        "FLAGS": struct.pack("=II", 0x1 | 0x4, 0xFFFFFFFF),
        "TIMEOUT": u32(60),
        "NETMASK": socket.inet_aton("255.255.255.0"),  # __be32 mask
    }


def test_without_persistence_the_mask_is_the_whole_address_and_the_timeout_0() -> None:
    _, attrs = _bytes(request("set_service", service_spec(_vs(A, scheduler="sh"))))
    svc = attrs["SERVICE"]
    assert (svc["NETMASK"], svc["TIMEOUT"], svc["FLAGS"][:4]) == (b"\xff" * 4, u32(0), u32(0))
    assert svc["SCHED_NAME"] == b"sh\0"


def test_an_ipv6_services_netmask_is_a_prefix_length_in_host_order() -> None:
    vs = VirtualServer(Service(VIP6, "udp", 53), "rr", persistence=Persistence(300, 64), members=())
    _, attrs = _bytes(request("new_service", service_spec(vs)))
    svc = attrs["SERVICE"]
    assert svc["AF"] == struct.pack("=H", socket.AF_INET6)
    assert svc["ADDR"] == socket.inet_pton(socket.AF_INET6, VIP6)
    assert svc["PROTOCOL"] == struct.pack("=H", socket.IPPROTO_UDP)
    assert svc["NETMASK"] == u32(64)
    # without persistence keepalived sends 128
    plain = VirtualServer(Service(VIP6, "udp", 53), "rr")
    assert _bytes(request("new_service", service_spec(plain)))[1]["SERVICE"]["NETMASK"] == u32(128)


@pytest.mark.parametrize(("family", "af"), [(4, socket.AF_INET), (6, socket.AF_INET6)])
def test_a_fwmark_service_has_its_family_and_mark_and_no_address(family: int, af: int) -> None:
    vs = VirtualServer(Service(fwmark=7, family=family), "sh", flags=frozenset({"sh-port"}))
    _, attrs = _bytes(request("new_service", service_spec(vs)))
    svc = attrs["SERVICE"]
    assert svc["AF"] == struct.pack("=H", af) and svc["FWMARK"] == u32(7)
    assert not {"ADDR", "PORT", "PROTOCOL"} & set(svc)
    assert svc["FLAGS"][:4] == u32(0x10)  # IP_VS_SVC_F_SCHED_SH_PORT
    # pyroute2's IPVSService omits these two for a fwmark: the kernel refuses the add
    assert {"NETMASK", "TIMEOUT"} <= set(svc)


def test_a_port_0_service_is_persistent_over_every_port() -> None:
    vs = VirtualServer(Service(VIP, "tcp", 0), "rr", Forwarding.DR, Persistence(360))
    _, attrs = _bytes(request("new_service", service_spec(vs)))
    assert attrs["SERVICE"]["PORT"] == b"\0\0" and attrs["SERVICE"]["FLAGS"][:4] == u32(1)
    kernel = FakeIpvs()
    _backend(kernel).apply([vs])
    assert kernel.table() == {f"6/{VIP}/0": ("rr", 1, 360, {})}


def test_a_services_key_alone_is_what_dest_commands_and_deletes_carry() -> None:
    spec = service_spec(_vs(A))
    cmd, attrs = _bytes(request("del_service", spec.key))
    assert cmd == 3 and set(attrs["SERVICE"]) == {"AF", "PROTOCOL", "ADDR", "PORT"}


@pytest.mark.parametrize(
    ("method", "value", "port"),
    # DR and TUN cannot change the port: the service's goes (as ipvsadm and keepalived send it)
    [(Forwarding.NAT, 0, 8080), (Forwarding.TUN, 2, 80), (Forwarding.DR, 3, 80)],
)
def test_destinations_carry_method_weight_and_thresholds(
    method: Forwarding, value: int, port: int
) -> None:
    m = Member("203.0.113.10", 8080, 5, upper=100, lower=10)
    vs = _vs(m, forwarding=method)
    (d,) = dest_specs(vs)
    cmd, attrs = _bytes(request("new_dest", service_spec(vs).key, d))
    assert cmd == 5  # IPVS_CMD_NEW_DEST
    assert attrs["DEST"] == {
        "ADDR_FAMILY": struct.pack("=H", socket.AF_INET),
        "ADDR": socket.inet_aton("203.0.113.10"),
        "PORT": struct.pack("!H", port),
        "FWD_METHOD": u32(value),  # IP_VS_CONN_F_MASQ / _TUNNEL / _DROUTE
        "WEIGHT": u32(5),
        "U_THRESH": u32(100),
        "L_THRESH": u32(10),
    }
    # deleting needs only the address and port
    _, attrs = _bytes(request("del_dest", service_spec(vs).key, d, full_dest=False))
    assert set(attrs["DEST"]) == {"ADDR_FAMILY", "ADDR", "PORT"}


def test_a_dest_without_a_port_sends_port_0_and_the_sorry_server_stands_alone() -> None:
    sorry = Member("203.0.113.99", None)
    vs = _vs(A, B, sorry=sorry, sorry_active=True)
    (d,) = dest_specs(vs)
    _, attrs = _bytes(request("set_dest", service_spec(vs).key, d))
    assert attrs["DEST"]["PORT"] == b"\0\0" and attrs["DEST"]["ADDR"] == socket.inet_aton(
        "203.0.113.99"
    )


def test_timeouts_are_u32_command_attributes() -> None:
    cmd, attrs = _bytes(request("set_config", timeouts=Timeouts(900, 120, 300)))
    assert cmd == 12  # IPVS_CMD_SET_CONFIG
    assert (attrs["TIMEOUT_TCP"], attrs["TIMEOUT_TCP_FIN"], attrs["TIMEOUT_UDP"]) == (
        u32(900),
        u32(120),
        u32(300),
    )
    assert _bytes(request("flush"))[0] == 17  # IPVS_CMD_FLUSH


def test_a_kernel_dump_reads_back_equal_to_what_was_sent() -> None:
    kernel = FakeIpvs()
    for vs in (
        _vs(A, persistence=Persistence(60, 24)),
        VirtualServer(Service(VIP6, "tcp", 443), "mh", persistence=Persistence(30, 48)),
        VirtualServer(Service(fwmark=9), "lc"),
    ):
        spec = service_spec(vs)
        kernel.request(request("new_service", spec))
        (got,) = [
            s
            for s in map(service_from_message, kernel.dump(request("get_service")))
            if s.key == spec.key
        ]
        assert got == spec  # HASHED masked, 16-byte IPv4 address, prefix lengths


# ---- the backend against the fake kernel -------------------------------------------------------


def _backend(kernel: FakeIpvs, **kw: Any) -> IpvsBackend:
    return IpvsBackend(kernel, **kw)


def test_apply_programs_services_and_dests_and_a_second_apply_sends_nothing() -> None:
    kernel = FakeIpvs()
    backend = _backend(kernel)
    fwm = VirtualServer(Service(fwmark=5), "rr", Forwarding.DR, members=(Member("203.0.113.20"),))
    out = backend.apply([_vs(A, B), fwm])
    assert kernel.table() == {
        f"6/{VIP}/80": ("wrr", 0, 0, {"203.0.113.10:8080": (0, 3), "203.0.113.11:8080": (0, 1)}),
        "fwm5": ("rr", 0, 0, {"203.0.113.20:0": (3, 1)}),
    }
    assert len(out.ops) == 5 and out.generation == 1
    kernel.log.clear()
    again = backend.apply([_vs(A, B), fwm])
    assert again.ops == () and kernel.log == []  # from memory: nothing asked, nothing sent


def test_one_servers_change_is_one_command() -> None:
    kernel = FakeIpvs()
    backend = _backend(kernel)
    backend.apply([_vs(A, B)])
    kernel.log.clear()
    out = backend.apply([_vs(A, Member(B.address, B.port, 0))])  # inhibited: weight 0
    assert kernel.log == ["SET_DEST"] and len(out.ops) == 1
    assert kernel.table()[f"6/{VIP}/80"][3]["203.0.113.11:8080"] == (0, 0)
    kernel.log.clear()
    backend.apply([_vs(A)])
    assert kernel.log == ["DEL_DEST"]
    kernel.log.clear()
    backend.apply([_vs(A, persistence=Persistence(120))])
    assert kernel.log == ["SET_SERVICE"]
    assert kernel.table()[f"6/{VIP}/80"][:3] == ("wrr", 1, 120)


def test_quorum_loss_swaps_the_pool_for_the_sorry_server() -> None:
    kernel = FakeIpvs()
    backend = _backend(kernel)
    sorry = Member("203.0.113.99", 8080)
    backend.apply([_vs(A, B, sorry=sorry)])
    backend.apply([_vs(A, B, sorry=sorry, sorry_active=True)])
    assert kernel.table()[f"6/{VIP}/80"][3] == {"203.0.113.99:8080": (0, 1)}
    backend.apply([_vs(A, B, sorry=sorry)])
    assert set(kernel.table()[f"6/{VIP}/80"][3]) == {"203.0.113.10:8080", "203.0.113.11:8080"}


def test_a_restarted_netd_adopts_its_services_in_place_and_leaves_others_alone() -> None:
    kernel = FakeIpvs()
    _backend(kernel).apply([_vs(A, B)])
    other = VirtualServer(Service("192.0.2.7", "udp", 53), "rr", members=(B,))
    IpvsBackend(kernel).apply([other])  # someone else's service (ipvsadm, kube-proxy)
    kernel.log.clear()
    fresh = _backend(kernel)
    fresh.apply([_vs(A, Member(B.address, B.port, 2))])
    # read back, then only the changed weight: no delete and re-add dropping connections
    assert [c for c in kernel.log if not c.startswith("GET")] == ["SET_DEST"]
    assert "17/192.0.2.7/53" in kernel.table()
    fresh.apply([])
    assert list(kernel.table()) == ["17/192.0.2.7/53"]  # ours went, theirs stays


def test_reconcile_repairs_what_was_changed_behind_our_back() -> None:
    kernel = FakeIpvs()
    backend = _backend(kernel)
    backend.apply([_vs(A, B)])
    kernel.services.clear()  # ipvsadm -C
    out = backend.reconcile([_vs(A, B)])
    assert out.rebuilt and len(kernel.table()[f"6/{VIP}/80"][3]) == 2
    key = next(iter(kernel.services))
    kernel.services[key].dests.pop(("203.0.113.10", 8080))  # ipvsadm -d
    kernel.services[key].sched = "rr"  # ipvsadm -E -s rr
    kernel.log.clear()
    out = backend.reconcile([_vs(A, B)])
    assert out.rebuilt and sorted(c for c in kernel.log if not c.startswith("GET")) == [
        "NEW_DEST",
        "SET_SERVICE",
    ]
    assert not backend.reconcile([_vs(A, B)]).rebuilt  # nothing drifted: nothing sent


def test_a_refused_virtual_server_is_named_and_the_others_are_applied() -> None:
    kernel = FakeIpvs()
    kernel.refuse = lambda cmd, attrs: (
        errno.ENOENT if attrs.get("SERVICE", {}).get("PORT") == struct.pack("!H", 81) else None
    )
    backend = _backend(kernel)
    bad = VirtualServer(Service(VIP, "tcp", 81), "wrr", members=(A,))
    with pytest.raises(LvsApplyError) as info:
        backend.apply([bad, _vs(A, B)])
    assert set(info.value.failures) == {bad.service}
    assert info.value.failures[bad.service].errno_name == "ENOENT"
    assert list(kernel.table()) == [f"6/{VIP}/80"]
    kernel.refuse = lambda cmd, attrs: None
    backend.apply([bad, _vs(A, B)])  # read back (a refused one's state is the kernel's)
    assert len(kernel.table()) == 2


def test_a_duplicate_service_is_refused_before_anything_is_sent() -> None:
    # EINVAL, as nftables' layout: the driver then retries one at a time, the second fails alone
    kernel = FakeIpvs()
    with pytest.raises(KernelError, match="defined twice") as err:
        _backend(kernel).apply([_vs(A), _vs(B)])
    assert err.value.errno_name == "EINVAL" and kernel.table() == {}


def test_withdraw_removes_our_dests_then_services() -> None:
    kernel = FakeIpvs()
    backend = _backend(kernel)
    other = VirtualServer(Service("192.0.2.7", "udp", 53), "rr", members=(B,))
    IpvsBackend(kernel).apply([other])
    backend.apply([_vs(A, B)])
    kernel.log.clear()
    backend.withdraw()
    assert kernel.log == ["DEL_DEST", "DEL_DEST", "DEL_SERVICE"]
    assert list(kernel.table()) == ["17/192.0.2.7/53"]


def test_lvs_flush_on_stop_vs_deletes_services_only_and_plain_flushes_everything() -> None:
    kernel = FakeIpvs()
    backend = _backend(kernel, flush_on_stop="vs")
    backend.apply([_vs(A, B)])
    kernel.log.clear()
    backend.withdraw()
    assert kernel.log == ["DEL_SERVICE"]
    IpvsBackend(kernel).apply([VirtualServer(Service("192.0.2.7", "udp", 53), "rr")])
    full = _backend(kernel, flush_on_stop="full")
    full.apply([_vs(A)])
    full.withdraw()
    assert kernel.services == {} and kernel.log[-1] == "FLUSH"


def test_lvs_flush_flushes_at_start() -> None:
    kernel = FakeIpvs()
    IpvsBackend(kernel).apply([_vs(A)])
    assert _backend(kernel, flush_at_start=True).start() != []
    assert kernel.services == {}
    assert _backend(kernel).start() == [] and kernel.log[-1] == "FLUSH"  # the earlier one


def test_the_first_apply_does_starts_work_when_nobody_called_start() -> None:
    # the driver calls start() only when nothing is configured (for nftables, whose first
    # apply replaces a killed run's table in one transaction)
    kernel = FakeIpvs()
    IpvsBackend(kernel).apply([VirtualServer(Service("192.0.2.7", "udp", 53), "rr")])
    backend = _backend(kernel, flush_at_start=True, timeouts=Timeouts(tcp=60))
    backend.apply([_vs(A)])
    assert list(kernel.table()) == [f"6/{VIP}/80"] and kernel.timeouts["TIMEOUT_TCP"] == 60
    kernel.log.clear()
    backend.apply([_vs(A, B)])
    assert kernel.log == ["NEW_DEST"]  # once only


def test_lvs_timeouts_are_set_at_start_and_restored_at_withdrawal() -> None:
    kernel = FakeIpvs()
    backend = _backend(kernel, timeouts=Timeouts(tcp=60, udp=10))
    backend.start()
    assert kernel.timeouts == {"TIMEOUT_TCP": 60, "TIMEOUT_TCP_FIN": 120, "TIMEOUT_UDP": 10}
    backend.withdraw()
    assert kernel.timeouts == {"TIMEOUT_TCP": 900, "TIMEOUT_TCP_FIN": 120, "TIMEOUT_UDP": 300}


def test_choose_backend_follows_lvs_backend() -> None:
    nft = choose_backend(LvsSettings(backend="nftables"))
    try:
        assert nft.name == "nftables"
    finally:
        nft.close()
    # this kernel has no IPVS: asking for it says so, auto falls back to nftables
    if ipvs_available():
        pytest.skip("this kernel has IPVS: the fallback cannot be shown")
    with pytest.raises(KernelError, match="this kernel has no IPVS"):
        choose_backend(LvsSettings(backend="ipvs"))
    auto = choose_backend(LvsSettings())
    try:
        assert auto.name == "nftables"
    finally:
        auto.close()


# ---- why pyroute2's helpers are not used -------------------------------------------------------


def test_pyroute2_0_9_7s_ipvs_bugs_are_still_there() -> None:
    """The four bugs docs/lvs.md lists. If this fails, pyroute2 fixed one: the workaround in
    netd/lvs/ipvs_encode.py may go."""
    sent: list[Any] = []

    class Capture:
        async def _do_request(self, msg: Any, msg_flags: int = 0) -> list[Any]:
            sent.append(msg)
            return []

    # 1. "update" sends IPVS_CMD_DEL_SERVICE (3), not SET (2)
    svc = IPVSService(addr=VIP, port=80, protocol=socket.IPPROTO_TCP)
    asyncio.run(AsyncIPVS.service(Capture(), "update", svc))
    assert sent[0]["cmd"] == 3
    # 2. no NETMASK for IPv6 or fwmark services, no AF for a fwmark: the kernel says EINVAL
    fwm = dict(IPVSService(fwmark=7).dump_nla()["attrs"])
    assert "IPVS_SVC_ATTR_NETMASK" not in fwm and "IPVS_SVC_ATTR_AF" not in fwm
    v6 = dict(IPVSService(addr=VIP6, port=80, protocol=6).dump_nla()["attrs"])
    assert "IPVS_SVC_ATTR_NETMASK" not in v6
    # 3. from_message keeps its own default forwarding method (DR) over the kernel's NAT
    kernel = FakeIpvs()
    _backend(kernel).apply([_vs(A)])
    key = service_spec(_vs(A)).key
    (dump,) = kernel.dump(request("get_dest", key))
    assert dump.get_attr("IPVS_CMD_ATTR_DEST").get_attr("IPVS_DEST_ATTR_FWD_METHOD") == 0
    assert IPVSDest.from_message(dump)["fwd_method"] == 3
    # 4. the connection timeouts are typed "hex": a number cannot be encoded
    msg = ipvsmsg()
    msg["cmd"], msg["version"] = 12, 1
    msg["attrs"] = [("IPVS_CMD_ATTR_TIMEOUT_TCP", 900)]
    with pytest.raises(TypeError):
        msg.encode()


# ---- persistence_engine -------------------------------------------------------------------------


def test_a_persistence_engine_is_the_services_pe_name_and_goes_with_persistence() -> None:
    sip = VirtualServer(Service(VIP, "udp", 5060), "rr", persistence=Persistence(60, None, "sip"))
    _, attrs = _bytes(request("new_service", service_spec(sip)))
    assert attrs["SERVICE"]["PE_NAME"] == b"sip\0"  # IPVS_SVC_ATTR_PE_NAME (11), NUL-terminated
    assert "PE_NAME" not in _bytes(request("new_service", service_spec(_vs(A))))[1]["SERVICE"]
    kernel = FakeIpvs()
    backend = _backend(kernel)
    backend.apply([sip])
    (svc,) = kernel.services.values()
    assert svc.pe_name == "sip"
    again = backend.reconcile([sip])  # read back equal: no drift, nothing sent
    assert again.ops == () and not again.rebuilt
    backend.apply([VirtualServer(Service(VIP, "udp", 5060), "rr", persistence=Persistence(60))])
    assert kernel.log[-1] == "SET_SERVICE"
    assert next(iter(kernel.services.values())).pe_name == ""  # sent without: dropped


def test_persistence_engine_comes_from_the_configuration_with_persistence_only() -> None:
    text = """
virtual_server 198.51.100.80 5060 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    %s
    persistence_engine sip
    real_server 203.0.113.10 5060 {
    }
}
"""
    for timeout, want in (("persistence_timeout 60", Persistence(60, None, "sip")), ("", None)):
        result = core.loads(text % timeout, script_env=None)
        (vs,) = desired_servers(result.config, {}).servers.values()
        assert vs.persistence == want


# ---- virtual_server_group: a service per entry ------------------------------------------------

GROUP_TEXT = """
virtual_server_group G {
    198.51.100.80-81 80
    198.51.100.90 443
    fwmark 7
}
virtual_server group G {
    lb_algo wrr
    lb_kind %s
    protocol TCP
    persistence_timeout 60
    persistence_granularity 255.255.255.0
    ops
    real_server 203.0.113.10 8080 {
        weight 3
    }
    real_server 203.0.113.11 8080 {
    }
}
"""
GROUP_SERVICES = (f"6/{VIP}/80", "6/198.51.100.81/80", "6/198.51.100.90/443", "fwm7")


def _group(method: str = "NAT") -> VirtualServer:
    """The group's virtual server as netd's driver gets it (core parses, core.vsgroups expands
    the range as checkd does, netd.lvs.fromconfig builds the model)."""
    result = core.loads(GROUP_TEXT % method, script_env=None)
    assert not [p for p in result.problems if p.severity in ("fatal", "error")], result.problems
    (vs,) = desired_servers(result.config, {}).servers.values()
    return vs


def test_a_group_is_one_service_per_address_and_port_and_per_fwmark() -> None:
    vs = _group()
    specs = service_specs(vs)
    assert [str(s.key) for s in specs] == [
        f"tcp {VIP}:80",
        "tcp 198.51.100.81:80",  # the range, one service per address
        "tcp 198.51.100.90:443",
        "fwmark 7",
    ]
    for spec in specs:  # each with the virtual server's scheduler, flags and persistence
        _, attrs = _bytes(request("new_service", spec))
        svc = attrs["SERVICE"]
        assert svc["SCHED_NAME"] == b"wrr\0" and svc["TIMEOUT"] == u32(60)
        # IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_ONEPACKET, every bit in the mask
        assert svc["FLAGS"] == struct.pack("=II", 0x0001 | 0x0004, 0xFFFFFFFF)
        assert svc["NETMASK"] == socket.inet_aton("255.255.255.0")
    _, fwm = _bytes(request("new_service", specs[3]))
    assert fwm["SERVICE"]["FWMARK"] == u32(7) and "ADDR" not in fwm["SERVICE"]
    _, second = _bytes(request("new_service", specs[1]))
    assert second["SERVICE"]["ADDR"] == socket.inet_aton("198.51.100.81")
    assert second["SERVICE"]["PORT"] == struct.pack("!H", 80)


@pytest.mark.parametrize(
    ("method", "ports"),
    [
        # NAT: the real server's port on every service
        ("NAT", (8080, 8080, 8080, 8080)),
        # DR: each entry's own port (0 for the fwmark), as keepalived's ipvs_group_cmd
        ("DR", (80, 80, 443, 0)),
    ],
)
def test_every_service_of_a_group_gets_the_pool_with_its_entrys_port(
    method: str, ports: tuple[int, ...]
) -> None:
    vs = _group(method)
    for spec, port in zip(service_specs(vs), ports, strict=True):
        dests = dest_specs(vs, spec.key)
        assert [(d.address, d.port, d.weight) for d in dests] == [
            ("203.0.113.10", port, 3),
            ("203.0.113.11", port, 1),
        ]
        _, attrs = _bytes(request("new_dest", spec.key, dests[0]))
        assert attrs["DEST"]["PORT"] == struct.pack("!H", port)
        assert attrs["DEST"]["FWD_METHOD"] == u32(FWD_METHODS[vs.forwarding])


def test_the_backend_programs_a_group_and_changes_every_entry_alike() -> None:
    kernel = FakeIpvs()
    backend = _backend(kernel)
    vs = _group()
    backend.check(vs)  # not refused any more
    backend.apply([vs])
    pool = {"203.0.113.10:8080": (0, 3), "203.0.113.11:8080": (0, 1)}
    assert kernel.table() == {name: ("wrr", 0x5, 60, pool) for name in GROUP_SERVICES}
    kernel.log.clear()
    assert backend.apply([vs]).ops == () and kernel.log == []
    # a real server inhibited: one SET_DEST per service of the group, nothing else
    down = replace(vs, members=(vs.members[0], replace(vs.members[1], weight=0)))
    backend.apply([down])
    assert kernel.log == ["SET_DEST"] * 4
    assert {t[3]["203.0.113.11:8080"] for t in kernel.table().values()} == {(0, 0)}
    # an entry leaves the group (a reload): its service alone goes
    kernel.log.clear()
    backend.apply([replace(down, aliases=down.aliases[:1] + down.aliases[2:])])
    assert kernel.log == ["DEL_SERVICE"]
    assert "6/198.51.100.90/443" not in kernel.table() and len(kernel.table()) == 3
    kernel.log.clear()
    backend.withdraw()
    assert kernel.table() == {} and kernel.log.count("DEL_SERVICE") == 3


def test_a_restarted_netd_adopts_a_groups_services_in_place() -> None:
    kernel = FakeIpvs()
    _backend(kernel).apply([_group()])
    kernel.log.clear()
    _backend(kernel).apply([_group()])
    assert [c for c in kernel.log if not c.startswith("GET")] == []


def test_a_group_refused_half_way_is_named_and_its_leftovers_go_with_it() -> None:
    kernel = FakeIpvs()
    kernel.refuse = lambda cmd, attrs: (
        errno.ENOMEM if attrs.get("SERVICE", {}).get("PORT") == struct.pack("!H", 443) else None
    )
    backend = _backend(kernel)
    group, plain = _group(), VirtualServer(Service("192.0.2.7", "udp", 53), "rr", members=(B,))
    with pytest.raises(LvsApplyError) as info:
        backend.apply([group, plain])
    assert set(info.value.failures) == {group.service}  # the group alone, by its first service
    assert "17/192.0.2.7/53" in kernel.table()
    assert f"6/{VIP}/80" in kernel.table()  # the entries before the refused one were made
    backend.apply([plain])  # the group leaves the configuration: what it left goes too
    assert list(kernel.table()) == ["17/192.0.2.7/53"]


def test_a_group_entry_that_is_another_virtual_servers_service_is_refused() -> None:
    with pytest.raises(KernelError, match=r"group G: tcp 198\.51\.100\.80:80 defined twice"):
        _backend(FakeIpvs()).apply([_vs(A), _group()])
