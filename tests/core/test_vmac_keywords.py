"""garp_extra_if / vrrp_garp_extra_if (and their deprecated synonyms), vmac_prefix and
vmac_addr_prefix: parsed as keepalived's handlers read them, rendered back, inherited."""

from collections.abc import Callable

import pytest

import core
from tests.core.conftest import MINIMAL

Parse = Callable[..., core.LoadResult]


def with_instance_line(line: str) -> str:
    return MINIMAL.replace("interface eth0", f"interface eth0\n    {line}")


def problems(result: core.LoadResult, severity: str) -> list[str]:
    return [p.code for p in result.problems if p.severity == severity]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("garp_extra_if 10", core.GarpExtraIf(10, False)),
        ("garp_extra_if all 10", core.GarpExtraIf(10, True)),
        ("garp_extra_if 10 all", core.GarpExtraIf(10, True)),
        ("garp_extra_if 0", core.GarpExtraIf(0, False)),
        ("vmac_garp_intvl all 3", core.GarpExtraIf(3, True)),
    ],
)
def test_instance_garp_extra_if_forms(parse: Parse, line: str, expected: object) -> None:
    result = parse(with_instance_line(line))
    assert not problems(result, "error")
    inst = result.config.instances[0]
    assert inst.garp_extra_if == expected
    # The deprecated synonym says so, and renders as the current keyword.
    assert ("deprecated" in problems(result, "warning")) == line.startswith("vmac_garp_intvl")
    again = parse(core.render(result.config)).config
    assert again.instances[0].garp_extra_if == expected


@pytest.mark.parametrize("line", ["garp_extra_if all", "garp_extra_if 86401", "garp_extra_if x"])
def test_instance_garp_extra_if_errors(parse: Parse, line: str) -> None:
    result = parse(with_instance_line(line))
    assert "bad-value" in problems(result, "error")
    assert result.config.instances[0].garp_extra_if is None


def test_global_garp_extra_if_and_prefixes(parse: Parse) -> None:
    text = (
        "global_defs {\n vrrp_vmac_garp_intvl 12 all\n vmac_prefix vx\n vmac_addr_prefix va\n}\n"
        + MINIMAL
    )
    result = parse(text)
    g = result.config.global_defs
    assert g.vrrp_garp_extra_if == core.GarpExtraIf(12, True)
    assert (g.vmac_prefix, g.vmac_addr_prefix) == ("vx", "va")
    assert "deprecated-synonym" in problems(result, "warning")
    # No longer reported as accepted-but-not-implemented.
    assert "not-implemented" not in [p.code for p in result.problems]
    # keepalived's global form needs 1..86400
    bad = parse("global_defs {\n vrrp_garp_extra_if 0\n}\n" + MINIMAL)
    assert "bad-value" in problems(bad, "error")


def test_instance_value_wins_and_zero_turns_the_global_off(parse: Parse) -> None:
    head = "global_defs {\n vrrp_garp_extra_if all 30\n}\n"
    inherited = parse(head + MINIMAL).config
    assert core.vrrp_settings(inherited, inherited.instances[0]).garp_extra_if == core.GarpExtraIf(
        30, True
    )
    own = parse(head + with_instance_line("garp_extra_if 5")).config
    assert core.vrrp_settings(own, own.instances[0]).garp_extra_if == core.GarpExtraIf(5, False)
    off = parse(head + with_instance_line("garp_extra_if 0")).config
    assert core.vrrp_settings(off, off.instances[0]).garp_extra_if is None
    none = parse(MINIMAL).config
    assert core.vrrp_settings(none, none.instances[0]).garp_extra_if is None
