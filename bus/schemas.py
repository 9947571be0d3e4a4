"""Required fields of every public topic, checked by every subscriber.

A message on a known topic that lacks a required field, or carries one of the wrong type, is
dropped with reason ``schema`` (and counted) before any component logic sees it. Extra fields
are allowed: schemas only grow, and a newer publisher must not break an older reader.

The table is derived from the message classes in ``bus.messages`` (their fields without a
default are the required ones); a component that uses a message decodes it whole with its
class, which checks the optional fields too. docs/bus.md documents the same classes; a test
keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bus import wirefields
from bus.errors import MessageRejected
from bus.messages import MESSAGES
from bus.wirefields import Checked, Invalid, Message


@dataclass(frozen=True, slots=True)
class Schema:
    pattern: str  # exact topic, or prefix ending in '*'
    #: required field -> type as docs/bus.md names it (str, int, number, bool, list, map)
    required: Mapping[str, str]
    summary: str
    message: type[Message]

    def covers(self, topic: str) -> bool:
        return self.message.covers(topic)


SCHEMAS: tuple[Schema, ...] = tuple(
    Schema(cls.PATTERN, wirefields.required_fields(cls), cls.SUMMARY, cls) for cls in MESSAGES
)


# Every subscriber looks up every message's schema: the scan of SCHEMAS was two thirds of
# checking a heartbeat (6.5 of 9 µs). Bounded, since topics come from untrusted publishers.
@functools.lru_cache(maxsize=1024)
def schema_for(topic: str) -> Schema | None:
    for schema in SCHEMAS:
        if schema.covers(topic):
            return schema
    return None


def check(topic: str, body: Mapping[str, Any]) -> Checked | None:
    """Raise MessageRejected("schema", ...) naming the first bad required field; the required
    fields decoded, for the receiver's decode to take (``Message.decode``'s ``checked``), or
    None for a topic without a schema."""
    schema = schema_for(topic)
    if schema is None:
        return None
    cls = schema.message
    hints = _required_hints(cls)
    fields: dict[str, Any] = {}
    for name, tp in hints.items():
        if name not in body:
            raise MessageRejected("schema", f"{topic}: required field {name!r} missing")
        try:
            fields[name] = wirefields.check_field(cls, name, tp, body[name])
        except Invalid as exc:
            raise MessageRejected("schema", f"{topic}: {exc}") from None
    return Checked(cls, fields)


_REQUIRED_HINTS: dict[type[Message], dict[str, Any]] = {}  # filled on first use, not at import


def _required_hints(cls: type[Message]) -> dict[str, Any]:
    found = _REQUIRED_HINTS.get(cls)
    if found is None:
        hints = wirefields.hints(cls)
        found = _REQUIRED_HINTS[cls] = {
            f.name: hints[f.name]
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
    return found
