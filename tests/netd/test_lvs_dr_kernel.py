"""lvs_method DR on nftables with real traffic: the director (the backend driven directly, no
daemon) takes the client's packets at ingress and forwards them, still addressed to the VIP,
to real servers that hold the VIP on ``lo`` (ctl/lvslab.py, ``LvsLab.prepare_dr``).
"""

from __future__ import annotations

import errno
import ipaddress
import shutil
from collections import Counter
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from ctl.lab import enter_netns
from ctl.lvslab import RS_ADDRS, RS_ADDRS6, RS_PORT, VIP, VIP6, LvsLab
from netd.errors import NftError
from netd.lvs import Forwarding, Member, NftablesBackend, Persistence, Service, VirtualServer
from netd.lvs.driver import WATCHED
from netd.lvs.layout import Chain, service_chain
from netd.lvs.render import DR_MARKER
from netd.nftwatch import NftWatch
from tests.daemon import daemon_group
from tests.lab import wait_until

pytestmark = pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian nftables)")

# DR cannot change the port: the service is the real servers' own.
SVC = Service(VIP, "tcp", RS_PORT)
DR_TABLE = "pykeepalived_lvs_dr"
CLIENT = "198.51.100.10"


def _rs(i: int, weight: int = 1) -> Member:
    return Member(RS_ADDRS[i], None, weight)


def _dr(*members: Member, sched: str = "rr", svc: Service = SVC, **kw: object) -> VirtualServer:
    # the tests pass VirtualServer's own keywords; **kw: object cannot say which type each has
    return VirtualServer(svc, sched, Forwarding.DR, members=members, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lab() -> Iterator[LvsLab]:
    lab = LvsLab()
    try:
        lab.prepare_dr()
        yield lab
    finally:
        lab.close()


@pytest.fixture
def backend(lab: LvsLab) -> Iterator[NftablesBackend]:
    b = lab.in_director(NftablesBackend)
    b.start()
    try:
        yield b
    finally:
        b.withdraw()
        b.close()


def _spread(lab: LvsLab, n: int, host: str = VIP) -> Counter[str]:
    return Counter(lab.get(host, RS_PORT) for _ in range(n))


def _ip(lab: LvsLab, obj: str, *args: str) -> None:
    """``ip <obj> <args>`` in the director, with pyroute2."""
    with enter_netns(lab.director), IPRoute() as ipr:
        if obj == "route":
            ipr.route(args[0], dst=args[1], gateway=args[2])
        elif args[0] == "add":
            ipr.link("add", ifname=args[1], kind="veth", peer=f"{args[1]}p")
        else:
            ipr.link("del", index=ipr.link_lookup(ifname=args[1])[0])


def test_requests_reach_the_real_servers_still_addressed_to_the_vip(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    applied = backend.apply([_dr(_rs(0, 3), _rs(1, 1), sched="wrr")])
    assert applied.ops
    listing = lab.nft("list", "table", "netdev", DR_TABLE)
    assert f"fwd ip to {RS_ADDRS[0]}" in listing and DR_MARKER in listing
    # the NAT table forwards nothing: no service in it
    assert "198.51.100.80" not in lab.nft("list", "table", "inet", "pykeepalived_lvs")
    got = _spread(lab, 80)
    # wrr picks each new connection by numgen inc: 3:1 is exact, allow a little for anything
    assert set(got) == {"rs0", "rs1"} and abs(got["rs0"] - 60) <= 4, got


def test_the_real_server_sees_the_vip_and_the_client(lab: LvsLab, backend: NftablesBackend) -> None:
    backend.apply([_dr(_rs(2))])
    held = lab.connect(VIP, RS_PORT)
    try:
        assert lab.ask(held) == "rs2"
        with enter_netns(lab.servers[2]), open("/proc/net/tcp6", encoding="ascii") as fh:
            table = fh.read()
        # an established socket from VIP:8080 to the client 198.51.100.10 (as ::ffff:a.b.c.d)
        # /proc/net/tcp6 prints an address as 32-bit words in host order
        vip, client = (ipaddress.ip_address(a).packed[::-1].hex().upper() for a in (VIP, CLIENT))
        assert f"{vip}:{RS_PORT:04X}" in table and client in table, table
    finally:
        held.close()


def test_ipv6_service(lab: LvsLab, backend: NftablesBackend) -> None:
    members = tuple(Member(a, None, w) for a, w in zip(RS_ADDRS6, (1, 1, 0), strict=True))
    backend.apply([_dr(*members, svc=Service(VIP6, "tcp", RS_PORT))])
    assert _spread(lab, 20, VIP6) == {"rs0": 10, "rs1": 10}


def test_an_inhibited_server_keeps_its_established_connection(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    pool = (_rs(0), _rs(1), _rs(2))
    backend.apply([_dr(*pool)])
    held = lab.connect(VIP, RS_PORT)
    name = lab.ask(held)
    i = int(name[2:])
    inhibited = tuple(Member(m.address, None, 0 if k == i else 1) for k, m in enumerate(pool))
    backend.apply([_dr(*inhibited)])
    assert name not in _spread(lab, 20)
    # no conntrack at ingress: the flow's entry in its server's set keeps it there
    assert lab.ask(held) == name
    held.close()


def test_a_removed_server_gets_no_new_connections(lab: LvsLab, backend: NftablesBackend) -> None:
    backend.apply([_dr(_rs(0), _rs(1), _rs(2))])
    assert set(_spread(lab, 15)) == {"rs0", "rs1", "rs2"}
    backend.apply([_dr(_rs(0), _rs(2))])
    assert set(_spread(lab, 15)) == {"rs0", "rs2"}


def test_persistence_keeps_a_client_on_one_server(lab: LvsLab, backend: NftablesBackend) -> None:
    backend.apply([_dr(_rs(0), _rs(1), _rs(2), persistence=Persistence(60))])
    assert len(_spread(lab, 15)) == 1


def test_nat_and_dr_virtual_servers_side_by_side(lab: LvsLab, backend: NftablesBackend) -> None:
    nat = VirtualServer(Service(VIP, "tcp", 80), "rr", members=(Member(RS_ADDRS[1], RS_PORT),))
    backend.apply([nat, _dr(_rs(0))])
    assert lab.get(VIP, 80) == "rs1" and lab.get(VIP, RS_PORT) == "rs0"
    backend.apply([nat])  # the last DR virtual server goes: so does the DR table
    assert DR_TABLE not in lab.nft("list", "tables", "netdev")
    assert lab.get(VIP, 80) == "rs1"


def _nat(*members: int) -> VirtualServer:
    return VirtualServer(
        Service(VIP, "tcp", 80), "rr", members=tuple(Member(RS_ADDRS[i], RS_PORT) for i in members)
    )


def _transactions(backend: NftablesBackend) -> int:
    return backend.nat.sock.transactions + backend.dr.sock.transactions


def test_a_reload_changing_nat_and_dr_services_is_one_transaction(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    backend.apply([_nat(1), _dr(_rs(0))])
    sent, before = _transactions(backend), backend.sock.generation()
    done = backend.apply([_nat(1, 2), _dr(_rs(0), _rs(1))])  # a server more in each table
    assert _transactions(backend) == sent + 1
    assert done.generation == before + 1 == backend.sock.generation()  # committed once
    changed = {op.obj.name for op in done.ops if op.verb == "add" and isinstance(op.obj, Chain)}
    assert changed == {
        f"vs-tcp-{VIP}-80-rs-{RS_ADDRS[2]}-{RS_PORT}",  # the NAT table's
        f"vs-tcp-{VIP}-{RS_PORT}-rs-{RS_ADDRS[1]}-any",  # the DR table's
    }
    assert set(Counter(lab.get(VIP, 80) for _ in range(6))) == {"rs1", "rs2"}
    assert set(_spread(lab, 6)) == {"rs0", "rs1"}
    sent = _transactions(backend)
    backend.withdraw()  # both tables go in one transaction too
    assert _transactions(backend) == sent + 1
    assert "pykeepalived_lvs" not in lab.nft("list", "tables")


def test_a_refused_dr_change_leaves_the_nat_table_unchanged_too(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    backend.apply([_nat(1), _dr(_rs(0))])
    nat_table = lab.nft("list", "table", "inet", "pykeepalived_lvs")
    # Someone else's chain where the new DR service's goes: the kernel refuses that message
    # (EEXIST), after the NAT table's messages of the same batch.
    new_dr = _dr(_rs(1), svc=Service(VIP, "tcp", RS_PORT + 1))
    lab.nft("add", "chain", "netdev", DR_TABLE, service_chain(new_dr))
    before = backend.sock.generation()
    try:
        with pytest.raises(NftError) as err:
            backend.apply([_nat(1, 2), _dr(_rs(0)), new_dr])
        assert err.value.errno_name == "EEXIST" and service_chain(new_dr) in err.value.what
        assert backend.sock.generation() == before  # nothing committed
        assert lab.nft("list", "table", "inet", "pykeepalived_lvs") == nat_table
        assert set(Counter(lab.get(VIP, 80) for _ in range(4))) == {"rs1"}
    finally:
        lab.nft("delete", "chain", "netdev", DR_TABLE, service_chain(new_dr))
    # netd remembers what the kernel holds: the same change now goes through, whole
    done = backend.apply([_nat(1, 2), _dr(_rs(0)), new_dr])
    assert done.generation == backend.sock.generation()
    assert set(Counter(lab.get(VIP, 80) for _ in range(6))) == {"rs1", "rs2"}


def test_a_real_server_behind_a_gateway_is_refused(lab: LvsLab, backend: NftablesBackend) -> None:
    far = "192.0.2.50"
    _ip(lab, "route", "add", "192.0.2.0/24", RS_ADDRS[0])
    try:
        with pytest.raises(NftError) as err:
            backend.apply([_dr(Member(far))])
        assert err.value.code == errno.EINVAL
        assert f"real server {far} is reached through the gateway {RS_ADDRS[0]}" in str(err.value)
        assert DR_TABLE not in lab.nft("list", "tables", "netdev")
    finally:
        _ip(lab, "route", "del", "192.0.2.0/24", RS_ADDRS[0])


def test_an_address_of_the_director_is_no_real_server(backend: NftablesBackend) -> None:
    with pytest.raises(NftError, match=r"real server 203\.0\.113\.1 is an address of the director"):
        backend.apply([_dr(Member("203.0.113.1"))])


def test_tun_is_refused_with_eopnotsupp(backend: NftablesBackend) -> None:
    tun = VirtualServer(SVC, "rr", Forwarding.TUN, members=(_rs(0),), name="virtual_server x")
    with pytest.raises(NftError) as err:
        backend.apply([tun])
    assert err.value.errno_name == "EOPNOTSUPP"
    assert "lvs_method TUN" in err.value.reason and "virtual_server x" in err.value.reason


def test_a_deleted_table_comes_back_on_reconcile(lab: LvsLab, backend: NftablesBackend) -> None:
    vs = _dr(_rs(0), _rs(1))
    backend.apply([vs])
    lab.nft("delete", "table", "netdev", DR_TABLE)
    assert backend.dr.drifted()
    applied = backend.reconcile([vs])
    assert applied.rebuilt
    assert not backend.dr.drifted()
    assert set(_spread(lab, 10)) == {"rs0", "rs1"}


def test_an_interface_added_later_gets_its_ingress_chain(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    vs = _dr(_rs(0))
    backend.apply([vs])
    _ip(lab, "link", "add", "pk-x")
    try:
        backend.apply([vs])
        assert 'device "pk-x"' in lab.nft("list", "table", "netdev", DR_TABLE)
    finally:
        _ip(lab, "link", "del", "pk-x")
    assert backend.apply([vs]).rebuilt  # the interface went: the table is rebuilt without it
    assert "pk-x" not in lab.nft("list", "table", "netdev", DR_TABLE)
    assert not backend.dr.drifted()
    assert lab.get(VIP, RS_PORT) == "rs0"


def _daemon_config(servers: range) -> str:
    real_servers = "".join(
        f"""
    real_server {RS_ADDRS[i]} {RS_PORT} {{
        HTTP_GET {{
            url {{
                path /
                status_code 200
            }}
            connect_timeout 1
            retry 0
            delay_before_retry 0.5
        }}
    }}"""
        for i in servers
    )
    return f"""
global_defs {{
    router_id director
}}
virtual_server {VIP} {RS_PORT} {{
    delay_loop 0.5
    lb_algo rr
    lb_kind DR
    protocol TCP
    {real_servers}
}}
"""


def _answering(lab: LvsLab, n: int = 6) -> set[str]:
    seen = set()
    for _ in range(n):
        try:
            seen.add(lab.get(VIP, RS_PORT, timeout=1))
        except OSError as exc:  # nothing forwards yet, or a stopped server still in the pool
            seen.add(type(exc).__name__)
    return seen


@pytest.mark.netns
def test_the_daemon_forwards_dr_and_its_checkers_move_a_server_out(lab: LvsLab) -> None:
    with daemon_group(lab.director_node, _daemon_config(range(2))) as group:
        group.wait_started(("bus", "core", "netd", "checkd"))
        want = {"rs0", "rs1"}
        wait_until(lambda: _answering(lab) == want, 20, 0.1, "both real servers, by DR")
        assert DR_TABLE in lab.nft("list", "tables", "netdev")
        lab.stop_server(1)
        try:
            wait_until(lambda: _answering(lab) == {"rs0"}, 20, 0.1, "rs1 checked down and out")
        finally:
            lab.start_server(1)
        wait_until(lambda: _answering(lab) == want, 20, 0.1, "rs1 back")
    assert DR_TABLE not in lab.nft("list", "tables", "netdev"), "stop did not withdraw it"


def test_the_driver_watches_others_commits_to_the_dr_table(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    backend.apply([_dr(_rs(0))])
    watch = lab.in_director(lambda: NftWatch(WATCHED))
    try:
        lab.nft("add", "table", "netdev", "pk-other")  # another table: not ours
        lab.nft("delete", "table", "netdev", "pk-other")
        assert not watch.read()  # nft returns once its commit is notified
        lab.nft("delete", "table", "netdev", DR_TABLE)
        wait_until(watch.read, 5, 0.05, "the commit deleting the DR table noticed")
    finally:
        watch.close()
