from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest

import core
from tests.core.conftest import MINIMAL

Parse = Callable[..., core.LoadResult]

SAMPLES = Path("/usr/share/doc/keepalived/samples")


def test_load_missing_file_is_fatal_exit_4(tmp_path: Path) -> None:
    r = core.load(tmp_path / "nope.conf")
    assert r.exit_code == 4
    assert r.problems[0].severity == "fatal"


def test_load_reads_file_with_includes(tmp_path: Path) -> None:
    (tmp_path / "vi.conf").write_text(MINIMAL)
    (tmp_path / "main.conf").write_text("include vi.conf\n")
    r = core.load(tmp_path / "main.conf", config_id="n")
    assert r.exit_code == 0 and r.config.instances[0].name == "VI_1"
    assert r.files == (str(tmp_path / "main.conf"), str(tmp_path / "vi.conf"))


def test_format_problem(parse: Parse) -> None:
    r = parse(
        MINIMAL.replace("interface eth0", "interface eth0\n    priorty 5"), path="/etc/k.conf"
    )
    (p,) = r.problems
    assert core.format_problem(p) == (
        "/etc/k.conf:4:5: error: Unknown keyword 'priorty' in vrrp_instance "
        "[did you mean 'priority'?]\n"
        "        priorty 5\n"
        "        ^~~~~~~"
    )


def test_wire_round_trip_is_plain_and_exact(parse: Parse) -> None:
    c = parse(MINIMAL).config
    w = core.to_wire(c)
    assert core.from_wire(msgpack.unpackb(msgpack.packb(w))) == c
    small = core.to_wire(c, omit_defaults=True)
    assert core.from_wire(small) == c
    assert len(msgpack.packb(small)) < len(msgpack.packb(w)) / 4
    assert "global_defs" not in small and small["instances"][0]["virtual_router_id"] == 51


def _plain(v: object) -> bool:
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_plain(x) for x in v)
    return v is None or isinstance(v, (str, int, float, bool))


@pytest.mark.skipif(not SAMPLES.exists(), reason="keepalived samples not installed")
def test_wire_and_render_round_trip_on_samples() -> None:
    for f in sorted(SAMPLES.glob("keepalived.conf.*")):
        c = core.load(f, script_env=None).config
        w = core.to_wire(c)
        assert _plain(w)
        assert core.from_wire(w) == c, f
        assert core.from_wire(core.to_wire(c, omit_defaults=True)) == c, f
        assert core.loads(core.render(c), script_env=None).config == c, f


def test_from_wire_rejects_bad_input() -> None:
    good = core.to_wire(core.Config())
    with pytest.raises(core.WireFormatError):
        core.from_wire({**good, "bogus": 1})
    with pytest.raises(core.WireFormatError):
        core.from_wire({**good, "child_wait_time": "5"})
    with pytest.raises(core.WireFormatError):
        core.from_wire({**good, "instances": [{"name": "x", "state": "LEADER"}]})
    with pytest.raises(core.WireFormatError):
        core.from_wire({**good, "use_pid_dir": 1})


def test_config_hash_is_stable_and_sensitive(parse: Parse) -> None:
    a = parse(MINIMAL).config
    b = parse("# different comments\n" + MINIMAL.replace("    ", "\t")).config
    assert core.config_hash(a) == core.config_hash(b)
    c = parse(MINIMAL.replace("51", "52")).config
    assert core.config_hash(a) != core.config_hash(c)
    assert len(core.config_hash(a)) == 64


def test_diff(parse: Parse) -> None:
    two = MINIMAL + MINIMAL.replace("VI_1", "VI_2").replace("51", "52")
    old = parse(
        two + "vrrp_script s {\n script /x\n}\nstatic_ipaddress {\n 192.0.2.9/24 dev eth0\n}\n"
    ).config
    new_text = (
        MINIMAL.replace("51", "61")
        + MINIMAL.replace("VI_1", "VI_3").replace("51", "53")
        + "static_ipaddress {\n 192.0.2.9/24 dev eth1\n 192.0.2.8/24\n}\n"
        + "global_defs {\n router_id x\n}\n"
    )
    new = parse(new_text).config
    d = core.diff(old, new)
    assert d.instances == core.SectionDiff(added=("VI_3",), removed=("VI_2",), changed=("VI_1",))
    assert d.scripts.removed == ("s",)
    assert d.static_ipaddress == core.SectionDiff(
        added=("192.0.2.8/24",), changed=("192.0.2.9/24",)
    )
    assert d.global_defs_changed and not d.root_changed and not d.empty
    assert core.diff(old, old).empty


def test_models_are_immutable(parse: Parse) -> None:
    i = parse(MINIMAL).config.instances[0]
    with pytest.raises(AttributeError):
        i.priority = 5  # type: ignore[misc]  # writing a frozen field is the point
    assert replace(i, priority=5).priority == 5


def test_format_problem_underlines_the_word_at_the_column() -> None:
    p = core.Problem("error", "x", "msg", "f", 3, 5, "51", source_line="    virtual_router_id 51")
    assert core.format_problem(p).splitlines()[-1] == "        ^" + "~" * 16
    q = core.Problem("warning", "x", "msg", "f", 0, 0, "t")
    assert core.format_problem(q) == "f: warning: msg"


def test_keyword_reference_and_problem_dict() -> None:
    rows = core.keyword_reference()
    by_key = {(r["block"], r["keyword"]): r for r in rows}
    assert by_key[("vrrp_instance", "priority")]["implemented"] is True
    assert by_key[("vrrp_instance", "auth_hmac")]["implemented"] is False
    assert by_key[("virtual_server", "lb_algo")]["alias"] is True
    assert (
        by_key[("vrrp_sync_group", "global_tracking")]["deprecated"] == "sync_group_tracking_weight"
    )
    p = core.Problem("error", "c", "m", "f", 1, 2, "t", "h")
    d = core.problem_to_dict(p)
    assert d["hint"] == "h" and core.Problem(**d) == p
