from __future__ import annotations

from bus import topics


def test_exact_pattern_does_not_match_longer_topic() -> None:
    pat = topics.Pattern("health.web1")
    assert pat.matches("health.web1")
    assert not pat.matches("health.web10")
    assert pat.zmq_prefix == b"health.web1"


def test_prefix_pattern() -> None:
    pat = topics.Pattern("vrrp.state.*")
    assert pat.matches("vrrp.state.VI_1")
    assert not pat.matches("vrrp.stats.VI_1")
    assert pat.zmq_prefix == b"vrrp.state."


def test_no_pattern_means_everything() -> None:
    (pat,) = topics.patterns(())
    assert pat.matches("anything.at.all") and pat.zmq_prefix == b""


def test_topic_validity() -> None:
    assert topics.is_valid("health.chk-web_1")
    assert not topics.is_valid("")
    assert not topics.is_valid("with space")
    assert not topics.is_valid("x" * 300)
