"""Routing table names from rt_tables, as iproute2 and keepalived read them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import core
from netd import InvalidItemError, rtnames
from netd.fromconfig import route as route_from_config
from netd.fromconfig import rule as rule_from_config

NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,14}", fullmatch=True)


@given(st.dictionaries(NAME, st.integers(0, 0xFFFFFFFF), max_size=8), st.booleans())
def test_parse_reads_every_number_name_line(table: dict[str, int], hexa: bool) -> None:
    text = "# comment\n\n" + "".join(
        f"{hex(n) if hexa else n}\t{name}  # trailing\n" for name, n in table.items()
    )
    assert rtnames.parse_table_names(text + "garbage\nnotanumber x\n") == table


@pytest.fixture
def rt_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "rt_tables"
    base.write_text("255\tlocal\n254\tmain\n100\tweb\n")
    drop_in = tmp_path / "rt_tables.d"
    drop_in.mkdir()
    (drop_in / "vpn.conf").write_text("0x2a vpn\n200 web\n")  # a later file wins
    (drop_in / "ignored.txt").write_text("7 ignored\n")
    monkeypatch.setattr(rtnames, "SOURCES", (str(base), str(drop_in)))
    return base


def _parts(text: str) -> core.Config:
    return core.loads(text, config_id="n", script_env=None).config


def test_route_and_rule_tables_by_name(rt_tables: Path) -> None:
    config = _parts(
        "static_routes {\n  198.51.100.0/24 dev eth0 table vpn\n}\n"
        "static_rules {\n  from 192.0.2.5 table web preference 5\n}\n"
    )
    (route,) = config.static_routes
    (rule,) = config.static_rules
    assert route_from_config(route, None).table == 42
    assert rule_from_config(rule, 0).table == 200


def test_a_name_added_later_is_seen_without_a_restart(rt_tables: Path) -> None:
    (route,) = _parts("static_routes {\n  198.51.100.0/24 dev eth0 table late\n}\n").static_routes
    with pytest.raises(InvalidItemError, match=r"'late'.*rt_tables"):
        route_from_config(route, None)
    rt_tables.write_text(rt_tables.read_text() + "77 late\n")
    assert route_from_config(route, None).table == 77
