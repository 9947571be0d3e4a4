"""One human-readable line per log event: ``vrrp.state instance=VI_1 state=MASTER``.

The event's dotted name comes first, then its fields as ``key=value`` in the order they were
logged. A value is written bare when it reads back unambiguously (no spaces, quotes, ``=`` or
line breaks), otherwise as a JSON string; lists and mappings as compact JSON. The JSON form
(``--log-format=json``) carries the same names and fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

# Shown in the console prefix (or carried by syslog itself), not repeated among the fields.
PREFIX_KEYS: Final = frozenset({"event", "timestamp", "level", "component"})
# Levels that syslog conveys as a priority and the console line spells out.
QUIET_LEVELS: Final = frozenset({"debug", "info"})

_BARE = re.compile(r"[^\s\"'=\\]+")


def value_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value if _BARE.fullmatch(value) else json.dumps(value)
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return value_text(str(value))


def body(event_dict: Mapping[str, Any]) -> str:
    """``event k=v ...``; a traceback (``exception``) follows on its own lines."""
    fields = [
        f"{key}={value_text(value)}"
        for key, value in event_dict.items()
        if key not in PREFIX_KEYS and key != "exception"
    ]
    line = " ".join([str(event_dict.get("event", "")), *fields])
    exception = event_dict.get("exception")
    return f"{line}\n{exception}" if exception else line


def console_prefix(event_dict: Mapping[str, Any]) -> str:
    """``2026-12-05T06:53:18.123456Z vrrpd: `` plus ``warning: `` etc. above info."""
    level = str(event_dict.get("level", "info"))
    shown = "" if level in QUIET_LEVELS else f"{level}: "
    return f"{event_dict.get('timestamp', '')} {event_dict.get('component', '')}: {shown}"
