"""Parsing ``key=value`` words typed on a command line into event fields."""

from __future__ import annotations

import json
from typing import Any


class FieldError(ValueError):
    """A ``key=value`` word that cannot be used as an event field."""


def parse_value(text: str) -> Any:
    """``true``/``false``/``null``, numbers and JSON arrays/maps are typed; the rest is a string."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "none"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise FieldError(f"{text!r} looks like JSON but is not: {exc}") from exc
    return text


def parse_fields(words: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise FieldError(f"expected key=value, got {word!r}")
        fields[key] = parse_value(value)
    return fields
