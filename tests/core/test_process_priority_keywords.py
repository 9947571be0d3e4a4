"""global_defs keywords for how vrrpd and checkd run (docs/operations.md, "Process
priorities"): typed, range-checked as keepalived checks them, acted on (so -t no longer calls
them not implemented), and carried to the components in config.current's wire form."""

from __future__ import annotations

import os
from collections.abc import Callable

import core
from bus.priorities import ProcessPriorities
from core.wire import to_wire
from tests.core.conftest import MINIMAL

Parse = Callable[..., core.LoadResult]


def _globals(*lines: str) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"global_defs {{\n{body}}}\n" + MINIMAL


def test_each_keyword_reaches_its_field_without_a_not_implemented_report(parse: Parse) -> None:
    r = parse(
        _globals(
            "vrrp_priority -5",
            "checker_priority 7",
            "vrrp_rt_priority 20",
            "checker_rt_priority 10",
            "vrrp_rlimit_rttime 30000",
            "checker_rlimit_rttime 1",
            "vrrp_no_swap",
            "checker_no_swap",
            "vrrp_cpu_affinity 0",
            "checker_cpu_affinity 0 0",
        )
    )
    assert r.problems == () and r.exit_code == 0
    g = r.config.global_defs
    assert (g.vrrp_priority, g.checker_priority) == (-5, 7)
    assert (g.vrrp_rt_priority, g.checker_rt_priority) == (20, 10)
    assert (g.vrrp_rlimit_rttime, g.checker_rlimit_rttime) == (30000, 2)  # keepalived: 1 -> 2
    assert g.vrrp_no_swap and g.checker_no_swap
    assert (g.vrrp_cpu_affinity, g.checker_cpu_affinity) == ((0,), (0,))
    wire = to_wire(r.config, omit_defaults=True)["global_defs"]
    assert ProcessPriorities.from_global_defs(wire, "vrrp") == ProcessPriorities(
        nice=-5, realtime=20, rlimit_rttime=30000, no_swap=True, cpus=(0,)
    )


def test_values_out_of_keepalived_ranges_are_errors_on_their_line(parse: Parse) -> None:
    online = os.cpu_count() or 1
    r = parse(
        _globals(
            "vrrp_priority 20",
            "checker_rt_priority 0",
            f"vrrp_cpu_affinity 0 {online}",
            "checker_rlimit_rttime -3",
        )
    )
    errors = [(p.line, p.code) for p in r.problems if p.severity == "error"]
    assert [line for line, _ in errors] == [2, 3, 4, 5]
    assert r.exit_code != 0
    g = r.config.global_defs
    assert (g.vrrp_priority, g.checker_rt_priority, g.vrrp_cpu_affinity) == (None, None, ())


def test_the_deprecated_rtime_spelling_still_sets_the_limit(parse: Parse) -> None:
    r = parse(_globals("checker_rlimit_rtime 5000"))
    assert r.config.global_defs.checker_rlimit_rttime == 5000
    assert [p.code for p in r.problems] == ["deprecated-synonym"]
    assert r.exit_code == 0


def test_bfd_twins_are_still_accepted_and_reported_as_not_implemented(parse: Parse) -> None:
    r = parse(_globals("bfd_priority 3"))
    assert [p.code for p in r.problems] == ["not-implemented"]
