"""The nftables LVS datapath with real traffic: a client, a director running only the backend
(driven directly, no daemon) and three real servers, each in a namespace (ctl/lvslab.py).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator

import pytest

from ctl.lvslab import PORT, RS_ADDRS, RS_ADDRS6, RS_PORT, VIP, VIP6, LvsLab
from netd.errors import NftError
from netd.lvs import Member, NftablesBackend, Persistence, Service, VirtualServer, ipvs_available
from netd.lvs.ipvs_backend import IpvsBackend
from netd.lvs.render import MARKER
from netd.nftbatch import NftRequest
from tests.lab import wait_until

pytestmark = pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian nftables)")

SVC = Service(VIP, "tcp", PORT)
TABLE = "pykeepalived_lvs"


def _rs(i: int, weight: int = 1) -> Member:
    return Member(RS_ADDRS[i], RS_PORT, weight)


@pytest.fixture(scope="module")
def lab() -> Iterator[LvsLab]:
    lab = LvsLab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def backend(lab: LvsLab) -> Iterator[NftablesBackend]:
    b = lab.in_director(NftablesBackend)
    lab.in_director(b.start)  # the socket lives in the director's namespace from here on
    try:
        yield b
    finally:
        b.withdraw()
        b.close()


def test_weights_spread_new_connections(lab: LvsLab, backend: NftablesBackend) -> None:
    backend.apply([VirtualServer(SVC, "wrr", members=(_rs(0, 3), _rs(1, 1)))])
    got = lab.spread(200)
    # wrr counts connections (numgen inc), so 3:1 is exact; allow 5% for anything else
    assert set(got) == {"rs0", "rs1"} and abs(got["rs0"] - 150) <= 10, got


def test_ipv6_service(lab: LvsLab, backend: NftablesBackend) -> None:
    members = tuple(Member(a, RS_PORT, w) for a, w in zip(RS_ADDRS6, (1, 1, 0), strict=True))
    backend.apply([VirtualServer(Service(VIP6, "tcp", PORT), "rr", members=members)])
    got = Counter(lab.get(VIP6) for _ in range(20))
    assert got == {"rs0": 10, "rs1": 10}


def test_fwmark_service(lab: LvsLab, backend: NftablesBackend) -> None:
    # Marks come from the operator's own rules before NAT; here one marks port 81 with 5.
    lab.nft("add", "table", "inet", "marker")
    lab.nft(
        "add",
        "chain",
        "inet",
        "marker",
        "pre",
        "{ type filter hook prerouting priority mangle; }",
    )
    lab.nft(
        "add", "rule", "inet", "marker", "pre", "tcp", "dport", "81", "meta", "mark", "set", "5"
    )
    try:
        backend.apply([VirtualServer(Service(fwmark=5), "rr", members=(_rs(1), _rs(2)))])
        got = Counter(lab.get(VIP, 81) for _ in range(10))
        assert got == {"rs1": 5, "rs2": 5}
    finally:
        lab.nft("delete", "table", "inet", "marker")


def test_a_groups_addresses_share_the_pool(lab: LvsLab, backend: NftablesBackend) -> None:
    # The client routes 192.0.2.0/24 through the director, which NATs it without holding it.
    also = (Service("192.0.2.81", "tcp", PORT),)
    backend.apply([VirtualServer(SVC, "rr", members=(_rs(0), _rs(1)), aliases=also)])
    got = Counter(lab.get(host) for host in (VIP, "192.0.2.81") * 4)
    assert got == {"rs0": 4, "rs1": 4}  # one rr over both addresses


def test_random_fallback_scheduler_follows_weights_roughly(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    backend.apply([VirtualServer(SVC, "wlc", members=(_rs(0, 3), _rs(1, 1)))])
    got = lab.spread(200)
    # random with p=3/4: 150 expected, sd ~6.1; ±30 is ~5 sd
    assert abs(got["rs0"] - 150) <= 30, got


def test_inhibited_server_keeps_its_established_connection(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    pool = (_rs(0), _rs(1), _rs(2))
    backend.apply([VirtualServer(SVC, "rr", members=pool)])
    held = lab.connect()
    name = lab.ask(held)
    i = int(name[2:])
    inhibited = tuple(Member(m.address, m.port, 0 if k == i else 1) for k, m in enumerate(pool))
    backend.apply([VirtualServer(SVC, "rr", members=inhibited)])
    assert name not in lab.spread(30)
    assert lab.ask(held) == name  # conntrack keeps the established flow on its server
    held.close()


def test_removed_server_gets_no_new_connections(lab: LvsLab, backend: NftablesBackend) -> None:
    backend.apply([VirtualServer(SVC, "rr", members=(_rs(0), _rs(1), _rs(2)))])
    assert set(lab.spread(30)) == {"rs0", "rs1", "rs2"}
    backend.apply([VirtualServer(SVC, "rr", members=(_rs(0), _rs(2)))])
    assert set(lab.spread(30)) == {"rs0", "rs2"}


def test_persistence_keeps_a_client_on_one_server(lab: LvsLab, backend: NftablesBackend) -> None:
    pool = (_rs(0), _rs(1), _rs(2))
    backend.apply([VirtualServer(SVC, "rr", persistence=Persistence(60, 24), members=pool)])
    got = lab.spread(30)
    assert len(got) == 1, got
    (name,) = got
    # the client's /24 is in that server's affinity set, with a timeout
    listing = lab.nft(
        "list", "set", "inet", TABLE, f"vs-tcp-{VIP}-80-rs-{RS_ADDRS[int(name[2:])]}-{RS_PORT}-aff"
    )
    assert "198.51.100.0 expires" in listing
    # inhibiting the server keeps the sticky client there (IPVS's quiescent template)
    quiesced = tuple(
        Member(m.address, m.port, 0 if f"rs{k}" == name else 1) for k, m in enumerate(pool)
    )
    backend.apply([VirtualServer(SVC, "rr", persistence=Persistence(60, 24), members=quiesced)])
    assert lab.spread(5) == {name: 5}


def test_sorry_server_replaces_the_pool_and_back(lab: LvsLab, backend: NftablesBackend) -> None:
    up = VirtualServer(SVC, "rr", members=(_rs(0), _rs(1)), sorry=_rs(2))
    down = VirtualServer(SVC, "rr", members=(_rs(0), _rs(1)), sorry=_rs(2), sorry_active=True)
    backend.apply([up])
    assert set(lab.spread(10)) == {"rs0", "rs1"}
    before = lab.in_director(backend.sock.generation)
    assert backend.apply([down]).generation == before + 1  # one transaction
    assert lab.spread(10) == {"rs2": 10}
    backend.apply([up])
    assert set(lab.spread(10)) == {"rs0", "rs1"}


def test_a_single_server_change_is_one_transaction_touching_only_it(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    per = Persistence(60)
    backend.apply(
        [VirtualServer(SVC, "wrr", persistence=per, members=(_rs(0, 2), _rs(1, 2), _rs(2, 1)))]
    )
    handles = backend.rule_handles()
    before = backend.sock.generation()
    done = backend.apply(
        [VirtualServer(SVC, "wrr", persistence=per, members=(_rs(0, 2), _rs(1, 2), _rs(2, 0)))]
    )
    assert done.generation == before + 1
    assert [str(op) for op in done.ops] == [
        f"del element vs-tcp-{VIP}-80-slots[4] -> goto vs-tcp-{VIP}-80-rs-{RS_ADDRS[2]}-{RS_PORT}",
        f"del rule vs-tcp-{VIP}-80/pick",
        f"add rule vs-tcp-{VIP}-80/pick",
    ]
    after = backend.rule_handles()
    # every rule but the pick keeps its handle: nothing else was rewritten
    changed = {k for k in handles if after.get(k) != handles[k]}
    assert changed == {(f"vs-tcp-{VIP}-80", "pick")}
    assert len(lab.spread(20).keys() & {"rs0", "rs1"}) == 1  # persistent: one of the two


def test_a_thousand_server_pool_is_one_transaction_and_changes_stay_local(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    # Over 200 KiB of batch: above the default netlink send buffer (EMSGSIZE before netd
    # forced a larger one).
    svc = Service(VIP, "tcp", 81)
    pool = tuple(Member(f"203.0.113.{10 + i % 200}", 10000 + i // 200) for i in range(1000))
    backend.apply([VirtualServer(svc, "wrr", members=pool)])
    before = backend.rule_handles()
    assert len(before) > 1000
    one = tuple(Member(m.address, m.port, 0) if i == 500 else m for i, m in enumerate(pool))
    done = backend.apply([VirtualServer(svc, "wrr", members=one)])
    after = backend.rule_handles()
    assert {k for k in before if after.get(k) != before[k]} == {(f"vs-tcp-{VIP}-81", "pick")}
    assert len(done.ops) <= 5  # its slot goes, the top slot fills the hole, the modulus
    assert backend.rule_handles([f"vs-tcp-{VIP}-81"]).keys() == {(f"vs-tcp-{VIP}-81", "pick")}


def test_a_failing_transaction_changes_nothing_and_says_why(
    lab: LvsLab, backend: NftablesBackend
) -> None:
    backend.apply([VirtualServer(SVC, "rr", members=(_rs(0),))])
    before = backend.sock.generation()
    good = NftRequest(
        3, 0x400, (("NFTA_CHAIN_TABLE", TABLE), ("NFTA_CHAIN_NAME", "extra")), "add chain extra"
    )
    bad = NftRequest(
        12,
        0x400,
        (
            ("NFTA_SET_ELEM_LIST_TABLE", TABLE),
            ("NFTA_SET_ELEM_LIST_SET", "no-such-map"),
            (
                "NFTA_SET_ELEM_LIST_ELEMENTS",
                [{"attrs": [("NFTA_SET_ELEM_KEY", {"attrs": [("NFTA_DATA_VALUE", b"\0\0\0\0")]})]}],
            ),
        ),
        "add element no-such-map[0]",
    )
    with pytest.raises(NftError) as err:
        backend.sock.transaction([good, bad])
    assert err.value.what == "add element no-such-map[0]" and err.value.errno_name == "ENOENT"
    assert backend.sock.generation() == before
    assert "chain extra" not in lab.nft("list", "table", "inet", TABLE)
    assert lab.get() == "rs0"


def test_drift_is_repaired_by_reconcile(lab: LvsLab, backend: NftablesBackend) -> None:
    desired = [VirtualServer(SVC, "rr", members=(_rs(0), _rs(1)))]
    backend.apply(desired)
    lab.nft("flush", "table", "inet", TABLE)  # someone flushes our rules
    assert backend.reconcile(desired).rebuilt
    assert set(lab.spread(10)) == {"rs0", "rs1"}
    lab.nft("delete", "element", "inet", TABLE, "svc4", f"{{ {VIP} . tcp . 80 }}")
    assert backend.reconcile(desired).rebuilt
    assert set(lab.spread(10)) == {"rs0", "rs1"}
    lab.nft("delete", "table", "inet", TABLE)
    assert backend.reconcile(desired).rebuilt
    assert not backend.reconcile(desired).rebuilt  # in sync: nothing to do
    assert set(lab.spread(10)) == {"rs0", "rs1"}


def test_leftovers_go_at_start_and_a_foreign_table_is_left_alone(lab: LvsLab) -> None:
    first = lab.in_director(NftablesBackend)
    second = lab.in_director(NftablesBackend)
    try:
        first.apply([VirtualServer(SVC, "rr", members=(_rs(0),))])  # then "killed"
        assert second.start() == [TABLE]
        assert TABLE not in lab.nft("list", "tables")
        lab.nft("add", "table", "inet", TABLE)  # someone else's table of that name
        with pytest.raises(NftError, match="exists and is not ours"):
            second.apply([VirtualServer(SVC, "rr", members=(_rs(0),))])
        assert second.start() == []
        lab.nft("delete", "table", "inet", TABLE)
    finally:
        first.close()
        second.close()


def test_withdraw_removes_the_table(lab: LvsLab, backend: NftablesBackend) -> None:
    backend.apply([VirtualServer(SVC, "rr", members=(_rs(0),))])
    assert MARKER in lab.nft("list", "table", "inet", TABLE)
    backend.withdraw()
    assert TABLE not in lab.nft("list", "tables")
    wait_until(lambda: not lab.nft("list", "ruleset").strip(), 2, message="empty ruleset")


def test_ipvs_backend_forwards_by_weight_and_withdraws(lab: LvsLab) -> None:
    """The IPVS backend in the kernel (only where it has IPVS; tests/netd/test_lvs_ipvs.py
    covers it everywhere against a fake kernel)."""
    if not lab.in_director(ipvs_available):
        pytest.skip("this kernel has no IPVS (CONFIG_IP_VS unset: no IPVS generic netlink family)")
    backend = lab.in_director(IpvsBackend)  # its socket lives in the director's namespace
    try:
        backend.start()
        backend.apply([VirtualServer(SVC, "wrr", members=(_rs(0, 3), _rs(1, 1)))])
        (held,) = backend.read().values()
        assert {d.address: d.weight for d in held[1].values()} == {RS_ADDRS[0]: 3, RS_ADDRS[1]: 1}
        got = lab.spread(200)
        assert set(got) == {"rs0", "rs1"} and abs(got["rs0"] - 150) <= 10, got
        backend.withdraw()
        assert SVC.address is not None and not [
            k for k in backend.read() if k.address == SVC.address
        ]
    finally:
        backend.withdraw()
        backend.close()


def test_ipvs_backend_forwards_a_group_on_each_of_its_services(lab: LvsLab) -> None:
    """A virtual_server_group in the kernel's IPVS: one service per entry, each with the pool
    (only where the kernel has IPVS; tests/netd/test_lvs_ipvs.py checks the messages)."""
    if not lab.in_director(ipvs_available):
        pytest.skip("this kernel has no IPVS (CONFIG_IP_VS unset: no IPVS generic netlink family)")
    backend = lab.in_director(IpvsBackend)
    other = Service(VIP, "tcp", RS_PORT)  # the group's second entry: the same VIP, another port
    group = VirtualServer(SVC, "rr", members=(_rs(0), _rs(1)), aliases=(other,))
    try:
        backend.start()
        backend.apply([group])
        held = backend.read()
        assert {str(k) for k in held if k.address == VIP} == {
            f"tcp {VIP}:{PORT}",
            f"tcp {VIP}:{RS_PORT}",
        }
        for _, dests in held.values():
            assert {d.address for d in dests.values()} == {RS_ADDRS[0], RS_ADDRS[1]}
        assert {lab.get(VIP, PORT) for _ in range(4)} == {"rs0", "rs1"}
        assert {lab.get(VIP, RS_PORT) for _ in range(4)} == {"rs0", "rs1"}
        backend.withdraw()
        assert not [k for k in backend.read() if k.address == VIP]
    finally:
        backend.withdraw()
        backend.close()
