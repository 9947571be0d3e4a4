"""The message format on the bus.

Every message is two frames: ``[topic (utf-8), payload (msgpack map)]``. The payload map holds
the envelope fields next to the event's own fields, so an external checker can publish a flat
``{"v": 1, "src": ..., ..., "name": "web1", "ok": true}``:

===== ======= =========================================================================
key   type    meaning
===== ======= =========================================================================
v     int     schema version (``VERSION``)
src   str     component name of the publisher (``vrrpd``, ``checkd``, ``my-checker``)
pid   int     publisher's process id
boot  str     random id chosen at each process start; a new value means "restarted"
seq   int     counter per (publisher boot, topic), starting at 1; a jump means lost messages
ts    float   wall-clock seconds when published
===== ======= =========================================================================

The sequence is kept per topic rather than per publisher because subscribers filter by topic:
with one counter per publisher, a subscriber of ``health.web1`` would see gaps "by design".
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bus import topics
from bus.errors import MessageRejected
from bus.wirefields import Checked

VERSION = 1
ENVELOPE_KEYS = ("v", "src", "pid", "boot", "seq", "ts")
# Large enough for a 1,000-instance config model, small enough that a garbage publisher
# cannot make every subscriber allocate without bound.
MAX_PAYLOAD = 16 * 1024 * 1024
_MAX_STR = 1024 * 1024
_MAX_ITEMS = 1_000_000


@dataclass(frozen=True, slots=True)
class Envelope:
    v: int
    src: str
    pid: int
    boot: str
    seq: int
    ts: float


@dataclass(slots=True)
class Event:
    """A decoded bus message. ``missed``/``restarted`` are filled in by the subscriber, and
    ``checked``: the required fields its schema check decoded (``bus.schemas``), which the
    receiver's ``Message.decode(..., checked=event.checked)`` takes instead of checking them
    again."""

    topic: str
    env: Envelope
    body: dict[str, Any]
    missed: int = 0
    restarted: bool = False
    raw_size: int = field(default=0, repr=False)
    checked: Checked | None = field(default=None, repr=False)


class Stamper:
    """Creates envelopes for one publishing process: fixed src/pid/boot, seq per topic."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.pid = os.getpid()
        self.boot = secrets.token_hex(6)
        self._seq: dict[str, int] = {}

    def next(self, topic: str) -> dict[str, Any]:
        seq = self._seq.get(topic, 0) + 1
        self._seq[topic] = seq
        return {
            "v": VERSION,
            "src": self.src,
            "pid": self.pid,
            "boot": self.boot,
            "seq": seq,
            "ts": time.time(),
        }


def encode(topic: str, body: Mapping[str, Any], stamp: Mapping[str, Any]) -> list[bytes]:
    """Frames for one message. Body keys that collide with the envelope are refused."""
    if not topics.is_valid(topic):
        raise ValueError(f"invalid topic {topic!r}")
    clash = [k for k in ENVELOPE_KEYS if k in body]
    if clash:
        raise ValueError(f"event body for {topic} uses reserved envelope keys {clash}")
    payload = {**stamp, **body}
    return [topic.encode(), msgpack.packb(payload, use_bin_type=True)]


def decode_topic(frame: bytes) -> str:
    try:
        topic = frame.decode()
    except UnicodeDecodeError as exc:
        raise MessageRejected("topic", f"topic frame is not utf-8: {frame[:40]!r}") from exc
    if not topics.is_valid(topic):
        raise MessageRejected("topic", f"malformed topic {topic[:80]!r}")
    return topic


def decode(frames: list[bytes]) -> Event:
    """Validate and decode one message; raise MessageRejected with a reason code otherwise."""
    if len(frames) != 2:
        raise MessageRejected("frames", f"expected 2 frames (topic, payload), got {len(frames)}")
    topic = decode_topic(frames[0])
    raw = frames[1]
    if len(raw) > MAX_PAYLOAD:
        raise MessageRejected("size", f"{topic}: payload of {len(raw)} bytes > {MAX_PAYLOAD}")
    try:
        payload = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            max_str_len=_MAX_STR,
            max_bin_len=MAX_PAYLOAD,
            max_array_len=_MAX_ITEMS,
            max_map_len=_MAX_ITEMS,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise MessageRejected("msgpack", f"{topic}: undecodable payload ({exc})") from exc
    if not isinstance(payload, dict):
        raise MessageRejected("payload", f"{topic}: payload is {type(payload).__name__}, not a map")
    return Event(topic=topic, env=_envelope(topic, payload), body=payload, raw_size=len(raw))


def _envelope(topic: str, payload: dict[str, Any]) -> Envelope:
    missing = [k for k in ENVELOPE_KEYS if k not in payload]
    if missing:
        raise MessageRejected("envelope", f"{topic}: envelope fields missing: {', '.join(missing)}")
    v, src, pid, boot, seq, ts = (payload.pop(k) for k in ENVELOPE_KEYS)
    if v != VERSION:
        raise MessageRejected(
            "version", f"{topic}: schema version {v!r}, this reader speaks {VERSION}"
        )
    bad = [
        name
        for name, value, typ in (
            ("src", src, str),
            ("pid", pid, int),
            ("boot", boot, str),
            ("seq", seq, int),
            ("ts", ts, (int, float)),
        )
        if not isinstance(value, typ) or isinstance(value, bool)
    ]
    if bad:
        raise MessageRejected("envelope", f"{topic}: envelope fields of the wrong type: {bad}")
    return Envelope(v=v, src=src, pid=pid, boot=boot, seq=seq, ts=float(ts))
