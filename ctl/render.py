"""How ``pykeepalivedctl tail`` shows an event: one line, key fields first, coloured on a tty."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from bus.envelope import Event

# Fields worth reading first, per topic root; the rest follow in key order.
_KEY_FIELDS = {
    "vrrp": ("instance", "old", "new", "priority", "cause"),
    "health": ("name", "ok", "reason"),
    "log": ("event", "level"),
    "hb": ("uptime", "lag"),
    "config": ("generation", "hash"),
    "net": ("generation", "owner"),
}
_COLOURS = {"vrrp": 35, "health": 32, "log": 36, "hb": 90, "config": 33, "net": 34}
_MAX_FIELD = 120
_LEVEL_COLOURS = {"warning": 33, "error": 31, "critical": 31}


def as_json(event: Event) -> str:
    env = event.env
    record: dict[str, Any] = {
        "topic": event.topic,
        "v": env.v,
        "src": env.src,
        "pid": env.pid,
        "boot": env.boot,
        "seq": env.seq,
        "ts": env.ts,
    }
    if event.missed:
        record["missed"] = event.missed
    record.update(event.body)
    return json.dumps(record, default=str, sort_keys=False)


def pretty(event: Event, colour: bool) -> str:
    root = event.topic.split(".", 1)[0]
    when = dt.datetime.fromtimestamp(event.env.ts).strftime("%H:%M:%S.%f")[:-3]
    body = dict(event.body)
    keys = [k for k in _KEY_FIELDS.get(root, ()) if k in body]
    keys += sorted(k for k in body if k not in keys and k not in ("timestamp", "component"))
    parts = []
    for key in keys:
        value = body[key]
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > _MAX_FIELD and isinstance(value, (dict, list)):
            text = f"<{type(value).__name__} of {len(value)}>"  # e.g. the whole config model
        if root == "log" and key == "event":
            parts.append(str(text))
        else:
            parts.append(f"{key}={text}")
    topic = event.topic
    line_colour = _COLOURS.get(root)
    if root == "log":
        line_colour = _LEVEL_COLOURS.get(str(body.get("level")), line_colour)
    if colour and line_colour:
        topic = f"\x1b[{line_colour}m{topic}\x1b[0m"
    gap = f" (missed {event.missed})" if event.missed else ""
    return f"{when} {event.env.src:<8} {topic} {' '.join(parts)}{gap}"
