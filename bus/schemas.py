"""Required fields of every public topic, checked by every subscriber.

A message on a known topic that lacks a required field, or carries one of the wrong type, is
dropped with reason ``schema`` (and counted) before any component logic sees it. Extra fields
are allowed: schemas only grow, and a newer publisher must not break an older reader.
Some of those extra fields are documented with a type (``optional``): a message that carries
one with the wrong type is rejected like a mistyped required field, and one without it is not.
docs/bus.md documents the same table; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bus.errors import MessageRejected

_NUM = (int, float)


@dataclass(frozen=True, slots=True)
class Schema:
    pattern: str  # exact topic, or prefix ending in '*'
    required: Mapping[str, type | tuple[type, ...]]
    summary: str
    optional: Mapping[str, type | tuple[type, ...]] = field(default_factory=dict)

    def covers(self, topic: str) -> bool:
        if self.pattern.endswith("*"):
            return topic.startswith(self.pattern[:-1])
        return topic == self.pattern


SCHEMAS: tuple[Schema, ...] = (
    Schema(
        "config.current",
        {"generation": int, "hash": str, "path": str, "model": dict, "diff": dict, "reason": str},
        "the running configuration (retained)",
    ),
    Schema(
        "config.rejected",
        {"kept_generation": int, "path": str, "problems": list, "reason": str},
        "a reload that failed validation; the old config keeps running",
    ),
    Schema("config.reload", {}, "a request to reload (pykeepalivedctl reload)"),
    Schema("health.*", {"name": str, "ok": bool}, "a check verdict (retained by checkd)"),
    Schema(
        "vrrp.state.*",
        {"instance": str, "state": str, "priority": int},
        "an instance's state (retained); transitions carry old/new/cause",
    ),
    Schema(
        "vrrp.intent.*",
        {"instance": str, "generation": int, "items": list, "lease": _NUM},
        "desired addresses/routes/rules of one instance for netd (retained)",
    ),
    Schema(
        "vrrp.renew",
        {"leases": dict},
        "renews held intents by generation: instance -> [generation, lease]",
    ),
    Schema("vrrp.event.*", {"instance": str, "kind": str}, "split brain and other notices"),
    Schema(
        "net.applied.*",
        {"owner": str, "generation": int, "failures": list},
        "what netd applied for one owner (retained)",
    ),
    Schema(
        "net.link.*",
        {"ifindex": int, "name": str, "up": bool},
        "one link (retained)",
        # primary: IPv4 primaries in kernel order; tentative: IPv6 addresses in DAD
        optional={"addresses": list, "primary": list, "tentative": list},
    ),
    Schema(
        "net.addr",
        {"ifindex": int, "address": str, "present": bool},
        "an address appeared or vanished",
    ),
    Schema("hb.*", {"name": str, "uptime": _NUM}, "heartbeat from a component's event loop"),
    Schema("log.*", {"event": str, "level": str}, "a component's structured log record"),
)


def schema_for(topic: str) -> Schema | None:
    for schema in SCHEMAS:
        if schema.covers(topic):
            return schema
    return None


def check(topic: str, body: Mapping[str, Any]) -> None:
    """Raise MessageRejected("schema", ...) naming the first bad field."""
    schema = schema_for(topic)
    if schema is None:
        return
    for name, typ in schema.required.items():
        if name not in body:
            raise MessageRejected("schema", f"{topic}: required field {name!r} missing")
        _check_type(topic, name, body[name], typ)
    for name, typ in schema.optional.items():
        if name in body:
            _check_type(topic, name, body[name], typ)


def _check_type(topic: str, name: str, value: Any, typ: type | tuple[type, ...]) -> None:
    if not isinstance(value, typ) or (
        isinstance(value, bool) and typ is not bool and typ != (bool,)
    ):
        raise MessageRejected(
            "schema",
            f"{topic}: field {name!r} is {type(value).__name__}, expected {_type_name(typ)}",
        )


def _type_name(typ: type | tuple[type, ...]) -> str:
    if isinstance(typ, tuple):
        return " or ".join(t.__name__ for t in typ)
    return typ.__name__
