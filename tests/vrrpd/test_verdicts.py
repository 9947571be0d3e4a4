"""Which health verdicts vrrpd takes: checkd's own checks only from checkd (vrrpd.verdicts)."""

from __future__ import annotations

import pytest

from bus.messages import Verdict
from core import loads
from vrrpd.verdicts import VerdictGate, checkd_checks

CONFIG = """
vrrp_script chk_run {
    script "/bin/true"
}
vrrp_script chk_ext {
}
track_file tf {
    file /tmp/pk-none
}
"""


def gate() -> VerdictGate:
    return VerdictGate(checkd_checks(loads(CONFIG, script_env=None).config))


def test_the_checks_checkd_runs_are_known_from_the_config() -> None:
    assert gate().owned == {"chk_run", "tf"}


@pytest.mark.parametrize("name", ["chk_run", "tf", "vs:web"])
def test_checkds_checks_are_taken_from_checkd_only(name: str) -> None:
    verdict = Verdict(name=name, ok=False)
    assert gate().refusal(f"health.{name}", verdict, "checkd") is None
    refused = gate().refusal(f"health.{name}", verdict, "rogue")
    assert refused is not None and "only checkd" in refused


def test_an_external_check_is_taken_from_anyone() -> None:
    assert gate().refusal("health.chk_ext", Verdict(name="chk_ext", ok=True), "my-checker") is None


def test_a_verdict_named_unlike_its_topic_is_refused() -> None:
    refused = gate().refusal("health.chk_ext", Verdict(name="chk_run", ok=False), "checkd")
    assert refused is not None and "named 'chk_run'" in refused
