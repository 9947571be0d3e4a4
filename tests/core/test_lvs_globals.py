"""global_defs keywords of the LVS datapath: ``lvs_backend`` (pykeepalived only, and -t says
so), ``lvs_timeouts``, ``lvs_flush``, ``lvs_flush_on_stop``; and -t's datapath warnings, which
depend on the backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import core
from core.model import LvsTimeouts
from core.reference import keyword_reference
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
