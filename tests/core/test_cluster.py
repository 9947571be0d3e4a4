"""Cluster lint: each mismatch between nodes' files is found, a correct pair passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import core
from ctl.cli import main as ctl_main
from tests.core.conftest import no_scripts_env

# One file for both nodes: @node1 / @node2 lines differ per node, as sites often write it.
PAIR = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
@node1    state MASTER
@node1    priority 150
@node2    state BACKUP
@node2    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""

UNICAST = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
@node1    priority 150
@node2    priority 100
@node1    unicast_src_ip 192.0.2.11
@node2    unicast_src_ip 192.0.2.12
    unicast_peer {
@node1        192.0.2.12
@node2        192.0.2.11
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


def nodes(text: str, node2_text: str | None = None) -> dict[str, core.LoadResult]:
    def load(t: str, node: str) -> core.LoadResult:
        return core.loads(t, path=f"/etc/{node}.conf", config_id=node, script_env=no_scripts_env())

    return {"node1": load(text, "node1"), "node2": load(node2_text or text, "node2")}


def codes(found: list[core.Problem]) -> list[str]:
    return sorted(p.code for p in found)


@pytest.mark.parametrize("text", [PAIR, UNICAST])
def test_a_correct_pair_has_no_problem(text: str) -> None:
    assert core.cluster_lint(nodes(text)) == []


def per_node(indent: str, keyword: str, one: str, two: str) -> str:
    """Lines that give node1 and node2 different values for one keyword."""
    return f"@node1{indent}{keyword} {one}\n@node2{indent}{keyword} {two}"


VIP = "        192.0.2.100/24"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("@node2    priority 100", "@node2    priority 150", "cluster-priority-tie"),
        (
            "    advert_int 1",
            per_node("    ", "advert_int", "1", "2"),
            "cluster-advert-int-differs",
        ),
        (
            "        auth_pass s3cret",
            per_node("        ", "auth_pass", "s3cret", "other"),
            "cluster-auth-differs",
        ),
        (VIP, f"{VIP}\n@node2        192.0.2.101/24", "cluster-vips-differ"),
        (
            VIP,
            per_node("        ", "", "192.0.2.100/24", "192.0.2.200/24"),
            "cluster-vrid-collision",
        ),
        (
            "    interface eth0",
            "    interface eth0\n@node2    version 3",
            "cluster-version-differs",
        ),
    ],
)
def test_each_mismatch_is_found_once(old: str, new: str, code: str) -> None:
    assert old in PAIR
    found = core.cluster_lint(nodes(PAIR.replace(old, new)))
    assert codes(found) == [code], found
    assert found[0].file in {"/etc/node1.conf", "/etc/node2.conf"}
    assert found[0].line > 0


def test_two_address_owners_are_an_error() -> None:
    text = PAIR.replace("priority 150", "priority 255").replace("priority 100", "priority 255")
    found = core.cluster_lint(nodes(text))
    assert [(p.code, p.severity) for p in found] == [("cluster-two-owners", "error")]


def test_the_password_never_appears_in_the_message() -> None:
    text = PAIR.replace(
        "        auth_pass s3cret", "@node1        auth_pass s3cret\n@node2        auth_pass other"
    )
    (found,) = core.cluster_lint(nodes(text))
    assert "s3cret" not in found.message and "other" not in found.message


def test_passwords_differing_after_eight_characters_match_as_keepalived() -> None:
    text = PAIR.replace(
        "        auth_pass s3cret",
        "@node1        auth_pass 12345678a\n@node2        auth_pass 12345678b",
    )
    assert core.cluster_lint(nodes(text)) == []


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        # node2 does not list node1's source address
        ("@node2        192.0.2.11", "@node2        192.0.2.13", ["cluster-unicast-peers"]),
        # node1 lists itself (and so not node2)
        ("@node1        192.0.2.12", "@node1        192.0.2.11", ["cluster-unicast-peers"] * 2),
        # node2 multicasts while node1 unicasts
        ("@node2        192.0.2.11", "", ["cluster-unicast-peers"]),
    ],
)
def test_unicast_peer_lists_must_point_at_each_other(old: str, new: str, expect: list[str]) -> None:
    assert old in UNICAST
    text = UNICAST.replace(old, new)
    if not new:
        text = text.replace("@node2    unicast_src_ip 192.0.2.12\n", "")
    assert codes(core.cluster_lint(nodes(text))) == expect


def test_two_nopreempt_masters_are_reported() -> None:
    text = PAIR.replace("@node2    state BACKUP", "@node2    state MASTER").replace(
        "    advert_int 1", "    advert_int 1\n    nopreempt"
    )
    found = core.cluster_lint(nodes(text))
    assert codes(found) == ["cluster-nopreempt-masters"]


def test_tracker_weights_from_the_election_lint_are_included() -> None:
    text = PAIR.replace(
        "    advert_int 1", "    advert_int 1\n    track_file {\n        f weight -2\n    }"
    )
    text = "track_file f {\n    file /tmp/f\n}\n" + text
    assert "weight-never-fails-over" in codes(core.cluster_lint(nodes(text)))


def test_cli_checks_files_against_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    a.write_text(PAIR.replace("@node2", "#").replace("@node1", ""))
    b.write_text(
        PAIR.replace("@node1", "#").replace("@node2", "").replace("advert_int 1", "advert_int 3")
    )
    assert ctl_main(["check", "--cluster", "--json", str(a), str(b)]) == core.EXIT_ERRORS
    out = json.loads(capsys.readouterr().out)
    assert [p["code"] for p in out["problems"]] == ["cluster-advert-int-differs"]
    b.write_text(PAIR.replace("@node1", "#").replace("@node2", ""))
    assert ctl_main(["check", "--cluster", str(a), str(b)]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_cli_refuses_several_files_without_cluster(tmp_path: Path) -> None:
    a = tmp_path / "a.conf"
    a.write_text(PAIR)
    assert ctl_main(["check", str(a), str(a)]) == 2
