"""One test per public topic schema: a valid example passes, each missing or mistyped required
field is rejected, and docs/bus.md documents every schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bus import MessageRejected
from bus.messages import Intent
from bus.schemas import SCHEMAS, check, schema_for

EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "config.current": (
        "config.current",
        {
            "generation": 3,
            "hash": "ab12",
            "path": "/k.conf",
            "model": {},
            "diff": {},
            "reason": "SIGHUP",
        },
    ),
    "config.rejected": (
        "config.rejected",
        {
            "kept_generation": 2,
            "path": "/k.conf",
            "problems": ["k.conf:3:5: error: ..."],
            "reason": "SIGHUP",
        },
    ),
    "config.reload": ("config.reload", {}),
    "health.*": ("health.chk_web", {"name": "chk_web", "ok": False, "reason": "HTTP 503"}),
    "check.pool.*": (
        "check.pool.192.0.2.1:tcp:80",
        {"vs": "192.0.2.1:tcp:80", "quorum_up": True, "members": []},
    ),
    "check.rs.*": (
        "check.rs.192.0.2.1:tcp:80/198.51.100.1:tcp:80",
        {"vs": "192.0.2.1:tcp:80", "rs": "198.51.100.1:tcp:80", "alive": True, "checkers": []},
    ),
    "vrrp.state.*": ("vrrp.state.VI_1", {"instance": "VI_1", "state": "MASTER", "priority": 150}),
    "vrrp.intent.*": (
        "vrrp.intent.VI_1",
        {"instance": "VI_1", "generation": 4, "items": [], "lease": 3.6},
    ),
    "vrrp.renew": ("vrrp.renew", {"leases": {"VI_1": [4, 3.6], "VI_2": [7, 1.0]}}),
    "vrrp.event.*": ("vrrp.event.VI_1", {"instance": "VI_1", "kind": "split_brain"}),
    "net.applied.*": (
        "net.applied.vrrp:VI_1",
        {"owner": "vrrp:VI_1", "generation": 4, "failures": []},
    ),
    "net.held": ("net.held", {"owners": ["vrrp:VI_1"]}),
    "net.link.*": (
        "net.link.eth0",
        {
            "ifindex": 2,
            "name": "eth0",
            "up": True,
            "addresses": ["192.0.2.10/24", "192.0.2.11/24", "fe80::1/64"],
            "primary": ["192.0.2.11/24"],
            "tentative": ["fe80::1/64"],
        },
    ),
    "net.addr": ("net.addr", {"ifindex": 2, "address": "192.0.2.1/24", "present": True}),
    "hb.*": ("hb.vrrpd", {"name": "vrrpd", "uptime": 12.5}),
    "bus.synced.*": ("bus.synced.vrrpd", {"publisher": "vrrpd", "fence": "bus.fence.1f"}),
    "log.*": ("log.core", {"event": "config.current", "level": "info"}),
}


def test_every_schema_has_an_example() -> None:
    assert {s.pattern for s in SCHEMAS} == set(EXAMPLES)


@pytest.mark.parametrize("pattern", sorted(EXAMPLES))
def test_schema_accepts_example_and_rejects_each_broken_field(pattern: str) -> None:
    topic, body = EXAMPLES[pattern]
    schema = schema_for(topic)
    assert schema is not None and schema.pattern == pattern
    check(topic, body)
    for field, typ in schema.required.items():
        missing = {k: v for k, v in body.items() if k != field}
        with pytest.raises(MessageRejected, match=f"'{field}' missing"):
            check(topic, missing)
        wrong = object() if typ != "str" else 12345
        with pytest.raises(MessageRejected, match=f"'{field}' is"):
            check(topic, {**body, field: wrong})


def test_net_link_from_an_older_netd_is_still_valid() -> None:
    """Before primary/tentative existed: readers must accept the old report."""
    check("net.link.eth0", {"ifindex": 2, "name": "eth0", "up": True, "addresses": []})


def test_bool_is_not_accepted_as_a_number() -> None:
    with pytest.raises(MessageRejected):
        check("vrrp.state.X", {"instance": "X", "state": "BACKUP", "priority": True})


def test_unknown_topics_are_not_checked() -> None:
    check("custom.thing", {"anything": 1})


def test_docs_document_every_schema() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "bus.md").read_text()
    for schema in SCHEMAS:
        # Prefix patterns are documented as `health.<check>`, exact ones as they are.
        written = (
            f"`{schema.pattern[:-1]}<" if schema.pattern.endswith("*") else f"`{schema.pattern}`"
        )
        assert written in doc, f"docs/bus.md does not document {schema.pattern}"
        for field in schema.required:
            assert f"`{field}`" in doc, f"docs/bus.md does not mention field {field}"


def test_a_receiver_takes_the_required_fields_the_schema_check_decoded() -> None:
    """docs/bus.md, "Topics": the subscriber's check decodes the required fields once; the
    receiver's decode takes them and checks only the optional ones."""
    topic = "vrrp.intent.VI_1"
    body = {"instance": "VI_1", "generation": 4, "items": [], "lease": 3.6, "held": True}
    checked = check(topic, body)
    assert checked is not None and checked.message is Intent
    intent = Intent.decode(topic, body, checked=checked)
    assert intent == Intent.decode(topic, body) and intent.held is True
    assert intent.items is checked.fields["items"]  # taken, not decoded again
    # an optional field is still the receiver's to refuse, naming it
    with pytest.raises(MessageRejected, match="'held' is str"):
        Intent.decode(topic, {**body, "held": "yes"}, checked=check(topic, body))
    # another class's check is not taken for this one's
    renew = check("vrrp.renew", {"leases": {}})
    with pytest.raises(MessageRejected, match="'instance' missing"):
        Intent.decode(topic, {"leases": {}}, checked=renew)
    assert check("no.schema", {}) is None
