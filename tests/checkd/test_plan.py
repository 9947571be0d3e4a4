"""From config.current's model (core's wire form) to check specs."""

from __future__ import annotations

import pytest

from checkd.errors import PlanError
from checkd.plan import FileSpec, ProcessSpec, ScriptSpec, normalize, plan_from_wire
from tests.checkd import wire


def test_specs_with_keepalived_defaults() -> None:
    plan = plan_from_wire(
        wire.tracking_all(
            scripts=[wire.script("chk", "/bin/true")],
            files=[{"name": "tf", "file": "/run/tf", "init_file": {"value": 5, "overwrite": True}}],
            processes=[{"name": "pr", "process": ["nginx", "-g"], "param_match": "initial"}],
        )
    )
    assert plan.checks == (
        ScriptSpec("chk", "/bin/true"),
        FileSpec("tf", "/run/tf", init_value=5, init_overwrite=True),
        ProcessSpec("pr", ("nginx", "-g"), param_match="initial"),
    )
    (script,) = [c for c in plan.checks if isinstance(c, ScriptSpec)]
    assert (script.interval, script.effective_timeout, script.rise, script.fall) == (1.0, 1.0, 1, 1)
    assert plan.unused == () and plan.problems == ()


def test_unused_checks_are_not_run_but_listed() -> None:
    m = wire.model(
        scripts=[wire.script("used", "/bin/true"), wire.script("spare", "/bin/true")],
        files=[{"name": "tf", "file": "/x"}],
        instances=[wire.instance("VI_1", track_script=["used"])],
    )
    plan = plan_from_wire(m)
    assert [c.name for c in plan.checks] == ["used"]
    assert plan.unused == ("script spare", "file tf")


def test_sync_groups_and_file_check_count_as_users() -> None:
    m = wire.model(files=[{"name": "a", "file": "/a"}, {"name": "b", "file": "/b"}])
    m["sync_groups"] = [{"name": "G", "track_file": [{"name": "a"}]}]
    m["virtual_servers"] = [
        {
            "name": "vs",
            "real_servers": [
                {"ip": "192.0.2.1", "checkers": [{"kind": "FILE_CHECK", "track_file": "b"}]}
            ],
        }
    ]
    assert sorted(c.name for c in plan_from_wire(m).checks) == ["a", "b"]


def test_script_user_precedence() -> None:
    gdefs = {"script_user": {"user": "nobody", "group": None}, "enable_script_security": True}
    m = wire.tracking_all(
        scripts=[
            wire.script("own", "/bin/true", user={"user": "daemon", "group": "adm"}),
            wire.script("global", "/bin/true"),
        ],
        global_defs=gdefs,
    )
    own, glob = plan_from_wire(m).checks
    assert isinstance(own, ScriptSpec) and isinstance(glob, ScriptSpec)
    assert (own.user, own.group, own.user_source, own.script_security) == (
        "daemon",
        "adm",
        "script",
        True,
    )
    assert (glob.user, glob.user_source) == ("nobody", "script_user")


def test_bad_checks_are_problems_not_crashes() -> None:
    m = wire.tracking_all(
        scripts=[
            wire.script("zero", "/bin/true", rise=0),
            wire.script("dup", "/bin/true"),
        ],
        files=[{"name": "dup", "file": "/x"}, {"name": "nofile"}],
        processes=[{"name": "q", "process": ["x"], "quorum": 3, "quorum_max": 2}],
    )
    plan = plan_from_wire(m)
    assert [c.name for c in plan.checks] == ["dup"]
    text = "\n".join(plan.problems)
    for needle in (
        "zero: rise and fall",
        "dup: name already used",
        "nofile: no file configured",
        "quorum_max 2 is below quorum 3",
    ):
        assert needle in text


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"vrrp_scripts": {"not": "a list"}},
        {"vrrp_scripts": [{"name": 5}], "instances": []},
        {"instances": [{"name": "VI", "track_script": [{"name": None}]}]},
    ],
)
def test_malformed_models_raise_plan_error(bad: object) -> None:
    with pytest.raises(PlanError):
        plan_from_wire(bad)  # type: ignore[arg-type]  # deliberately malformed


def test_wrong_types_inside_a_check_are_reported() -> None:
    m = wire.tracking_all(scripts=[wire.script("chk", "/bin/true", interval="fast")])
    assert "expected a number" in plan_from_wire(m).problems[0]


def test_normalize_is_identity_or_core_roundtrip() -> None:
    m = wire.tracking_all(scripts=[wire.script("chk", "/bin/true", interval=2.5)])
    assert plan_from_wire(normalize(m)).checks == plan_from_wire(m).checks


def test_script_without_command_is_left_to_an_external_checker() -> None:
    m = wire.tracking_all(
        scripts=[{"name": "ext", "script": None}, wire.script("ext2", "/bin/true")]
    )
    plan = plan_from_wire(m)
    assert plan.external == ("ext",) and [c.name for c in plan.checks] == ["ext2"]
    assert plan.problems == ()
    clash = wire.tracking_all(scripts=[{"name": "ext"}], files=[{"name": "ext", "file": "/x"}])
    assert "ext: name already used" in plan_from_wire(clash).problems[0]
