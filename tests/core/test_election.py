import core
from core.election import election_lint
from tests.core.conftest import no_scripts_env

CLUSTER = """
vrrp_script chk {
    script "/bin/check"
    weight -2
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
@node1    priority 150
@node2    priority 100
    virtual_ipaddress {
        192.0.2.1/24
    }
    track_script {
        chk
    }
    track_interface {
        eth1 weight -60
        eth2
    }
}
"""


def load(text: str, node: str) -> core.LoadResult:
    return core.loads(text, path="/etc/k.conf", config_id=node, script_env=no_scripts_env())


def test_small_weight_never_moves_the_vip() -> None:
    nodes = {n: load(CLUSTER, n) for n in ("node1", "node2")}
    problems = election_lint(nodes)
    assert [(p.code, p.text, p.line) for p in problems] == [("weight-never-fails-over", "chk", 14)]
    assert "150 -> 148, still above node2's 100" in problems[0].message


def test_enough_weight_is_fine_and_ties_are_reported() -> None:
    ok = CLUSTER.replace("weight -2", "weight -51")
    assert election_lint({n: load(ok, n) for n in ("node1", "node2")}) == []
    tie = CLUSTER.replace("weight -2", "weight -50")
    (p,) = election_lint({n: load(tie, n) for n in ("node1", "node2")})
    assert p.code == "weight-tie"


def test_positive_weights_count_on_both_sides() -> None:
    text = CLUSTER.replace("weight -2", "weight 20").replace("priority 150", "priority 101")
    # Healthy: 121 vs 120. chk failing on node1 gives 101 < 120: fine. eth1 -60 is fine too.
    assert election_lint({n: load(text, n) for n in ("node1", "node2")}) == []


def test_single_node_or_unrelated_vrids_are_ignored() -> None:
    assert election_lint({"node1": load(CLUSTER, "node1")}) == []
    other = CLUSTER.replace("virtual_router_id 51", "virtual_router_id 52")
    assert election_lint({"node1": load(CLUSTER, "node1"), "node2": load(other, "node2")}) == []
