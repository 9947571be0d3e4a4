"""global_defs keywords of the LVS datapath: ``lvs_backend`` (pykeepalived only, and -t says
so), ``lvs_timeouts``, ``lvs_flush``, ``lvs_flush_on_stop``; and -t's datapath warnings, which
depend on the backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import core
from core.model import LvsTimeouts
from core.reference import keyword_reference
from ctl.cli import main as ctl_main
from tests.core.conftest import MINIMAL

Parse = Callable[..., core.LoadResult]


def _globals(*lines: str) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"global_defs {{\n{body}}}\n" + MINIMAL


def _codes(r: core.LoadResult) -> list[str]:
    return [p.code for p in r.problems]


@pytest.mark.parametrize("backend", ["auto", "nftables", "ipvs"])
def test_lvs_backend_is_read_and_reported_as_ours(parse: Parse, backend: str) -> None:
    r = parse(_globals(f"lvs_backend {backend}"))
    assert r.config.global_defs.lvs_backend == backend
    (p,) = r.problems
    assert p.code == "pykeepalived-only" and p.severity == "warning"
    assert "'lvs_backend' is a pykeepalived-only keyword" in p.message and p.line == 2
    assert r.exit_code == 0


def test_lvs_backend_defaults_to_auto_and_refuses_other_values(parse: Parse) -> None:
    assert parse(MINIMAL).config.global_defs.lvs_backend == "auto"
    r = parse(_globals("lvs_backend ipvsadm"))
    assert [p.code for p in r.problems if p.severity == "error"] == ["bad-value"]
    assert r.config.global_defs.lvs_backend == "auto"


def test_metrics_listen_is_ours_too_and_keepalived_keywords_are_not(parse: Parse) -> None:
    assert _codes(parse(_globals("metrics_listen 127.0.0.1:9650"))) == ["pykeepalived-only"]
    assert _codes(parse(_globals("router_id r1"))) == []
    ours = {(row["block"], row["keyword"]) for row in keyword_reference() if row["ours"]}
    assert ours == {("global_defs", "lvs_backend"), ("global_defs", "metrics_listen")}


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("lvs_timeouts tcp 900", LvsTimeouts(tcp=900)),
        ("lvs_timeouts tcp 900 tcpfin 120 udp 300", LvsTimeouts(900, 120, 300)),
        ("lvs_timeouts udp 0", LvsTimeouts(udp=0)),
    ],
)
def test_lvs_timeouts_parse_and_render_back(parse: Parse, line: str, want: LvsTimeouts) -> None:
    r = parse(_globals(line))
    assert not r.problems, r.problems
    assert r.config.global_defs.lvs_timeouts == want
    text = core.render(r.config)
    assert line in text
    assert parse(text).config == r.config


@pytest.mark.parametrize(
    "line", ["lvs_timeouts", "lvs_timeouts tcp", "lvs_timeouts tcp x", "lvs_timeouts sctp 5"]
)
def test_bad_lvs_timeouts_are_errors(parse: Parse, line: str) -> None:
    r = parse(_globals(line))
    assert "bad-value" in _codes(r) and r.config.global_defs.lvs_timeouts is None


def test_lvs_timeouts_over_31_days_are_refused(parse: Parse) -> None:
    assert "bad-value" in _codes(parse(_globals(f"lvs_timeouts tcp {86400 * 31 + 1}")))


@pytest.mark.parametrize(
    ("line", "full", "vs"),
    [("lvs_flush_on_stop", True, False), ("lvs_flush_on_stop VS", True, True)],
)
def test_lvs_flush_on_stop_and_its_vs_form(parse: Parse, line: str, full: bool, vs: bool) -> None:
    r = parse(_globals(line, "lvs_flush"))
    g = r.config.global_defs
    assert (g.lvs_flush_on_stop, g.lvs_flush_on_stop_vs, g.lvs_flush) == (full, vs, True)
    assert not r.problems  # acted on (by the IPVS backend): not "not implemented"
    assert parse(core.render(r.config)).config == r.config


def test_the_deprecated_spelling_still_works(parse: Parse) -> None:
    r = parse(_globals("lvs_flush_onstop"))
    assert r.config.global_defs.lvs_flush_on_stop
    assert _codes(r) == ["deprecated-synonym"]


_VS = (
    "virtual_server 192.0.2.9 80 {{\n    lvs_sched {sched}\n    lvs_method {method}\n"
    "    protocol TCP\n    real_server 192.0.2.2 80 {{\n        TCP_CHECK {{\n        }}\n"
    "    }}\n}}\n"
)


@pytest.mark.parametrize(
    ("backend", "sched", "method", "codes"),
    [
        # IPVS has connection counts and every forwarding method
        ("ipvs", "wlc", "DR", []),
        ("ipvs", "lc", "TUN", []),
        ("nftables", "wlc", "NAT", ["lvs-sched-fallback"]),
        ("nftables", "rr", "TUN", ["lvs-not-forwarded"]),
        ("nftables", "rr", "DR", []),  # the DR table
        ("auto", "wlc", "TUN", ["lvs-not-forwarded", "lvs-sched-fallback"]),
    ],
)
def test_datapath_warnings_depend_on_the_backend(
    parse: Parse, backend: str, sched: str, method: str, codes: list[str]
) -> None:
    r = parse(_globals(f"lvs_backend {backend}") + _VS.format(sched=sched, method=method))
    assert [c for c in _codes(r) if c.startswith("lvs-")] == codes
    if backend == "auto":
        assert all("on a kernel without IPVS" in p.message for p in r.problems if p.code in codes)
    assert r.exit_code == 0


@pytest.mark.parametrize(("backend", "codes"), [("ipvs", []), ("nftables", ["lvs-not-forwarded"])])
def test_a_port_0_service_is_forwarded_by_ipvs_only(
    parse: Parse, backend: str, codes: list[str]
) -> None:
    vs = _VS.format(sched="rr", method="NAT").replace("192.0.2.9 80", "192.0.2.9 0")
    vs = vs.replace("lvs_sched", "persistence_timeout 60\n    lvs_sched")
    r = parse(_globals(f"lvs_backend {backend}") + vs)
    assert [c for c in _codes(r) if c.startswith("lvs-")] == codes


def test_a_group_is_forwarded_by_both_backends(parse: Parse) -> None:
    group = (
        "virtual_server_group G {\n    192.0.2.9 80\n}\n"
        "virtual_server group G {\n    lvs_sched rr\n    protocol TCP\n"
        "    real_server 192.0.2.2 80 {\n        TCP_CHECK {\n        }\n    }\n}\n"
    )
    for backend in ("nftables", "ipvs", "auto"):
        r = parse(_globals(f"lvs_backend {backend}") + group)
        assert [c for c in _codes(r) if c.startswith("lvs-")] == [], backend


_FLAGS = (
    "virtual_server 192.0.2.9 5060 {{\n    lvs_sched sh\n    lvs_method NAT\n"
    "    protocol UDP\n    persistence_timeout 60\n    persistence_engine sip\n"
    "    ops\n    sh-port\n    sh-fallback\n    mh-port\n    flag-3\n    {hashed}"
    "    real_server 192.0.2.2 5060 {{\n        TCP_CHECK {{\n        }}\n    }}\n}}\n"
)
_FLAG_WORDS = ["persistence_engine", "ops", "sh-port", "sh-fallback", "mh-port", "flag-3"]


@pytest.mark.parametrize("backend", ["nftables", "auto"])
def test_ipvs_flags_are_ignored_by_nftables_each_with_its_reason(
    parse: Parse, backend: str
) -> None:
    text = _globals(f"lvs_backend {backend}") + _FLAGS.format(hashed="")
    r = parse(text)
    flagged = [p for p in r.problems if p.code == "lvs-flag-ignored"]
    assert [p.text for p in flagged] == _FLAG_WORDS  # each at its own line, in order
    assert not [p for p in r.problems if p.severity == "not-implemented"]
    first = text.splitlines().index("    persistence_engine sip") + 1
    assert [p.line for p in flagged] == list(range(first, first + len(flagged)))
    datapath = "the nftables datapath" + (
        " (lvs_backend auto, on a kernel without IPVS)" if backend == "auto" else ""
    )
    by_word = {p.text: p.message for p in flagged}
    assert by_word["ops"] == (
        "Virtual server 192.0.2.9 5060: 'ops' (one-packet scheduling: each UDP datagram is "
        f"scheduled on its own) is used by IPVS only; {datapath} ignores it: it schedules a "
        "flow's first packet and keeps the flow's other packets on that server"
    )
    assert "its sh hashes the client's address only" in by_word["sh-port"]
    assert "as if this were always set" in by_word["sh-fallback"]
    assert "keeps persistent clients by address only" in by_word["persistence_engine"]
    assert all(p.severity == "warning" for p in flagged) and r.exit_code == 0


def test_ipvs_flags_are_used_by_ipvs_and_hashed_by_neither(parse: Parse) -> None:
    r = parse(_globals("lvs_backend ipvs") + _FLAGS.format(hashed="hashed\n"))
    (p,) = [p for p in r.problems if p.code.startswith("lvs-") or p.severity == "not-implemented"]
    assert (p.code, p.text) == ("lvs-flag-ignored", "hashed")
    assert "'hashed' is ignored by both datapaths" in p.message


def test_a_persistence_engine_without_persistence_is_ignored_by_both(parse: Parse) -> None:
    vs = _FLAGS.format(hashed="").replace("    persistence_timeout 60\n", "")
    r = parse(_globals("lvs_backend ipvs") + vs)
    (p,) = [p for p in r.problems if p.code == "lvs-flag-ignored"]
    assert p.text == "persistence_engine" and "without persistence_timeout" in p.message


def test_the_flags_are_implemented_in_the_keyword_reference() -> None:
    rows = {r["keyword"]: r for r in keyword_reference() if r["block"] == "virtual_server"}
    assert all(rows[w]["implemented"] for w in _FLAG_WORDS)
    assert not rows["hashed"]["implemented"] and not rows["snmp_name"]["implemented"]


def test_check_json_reports_each_flag_per_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for backend, want in (("nftables", _FLAG_WORDS), ("ipvs", [])):
        conf = tmp_path / f"{backend}.conf"
        conf.write_text(_globals(f"lvs_backend {backend}") + _FLAGS.format(hashed=""))
        assert ctl_main(["check", "--json", "-i", "node1", str(conf)]) == 0
        out = json.loads(capsys.readouterr().out)
        flagged = [p for p in out["problems"] if p["code"] == "lvs-flag-ignored"]
        assert [p["text"] for p in flagged] == want, backend
        assert not [p for p in out["problems"] if p["severity"] == "not-implemented"]
        for p in flagged:
            assert p["severity"] == "warning" and p["file"] == str(conf) and p["line"] > 0
