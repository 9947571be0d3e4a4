"""The envelope codec: round trips, and every kind of bad input is a named rejection."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus import MessageRejected, Stamper, decode, encode

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_bodies = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(
        lambda k: k not in {"v", "src", "pid", "boot", "seq", "ts"}
    ),
    _values,
    max_size=6,
)


@given(body=_bodies)
def test_round_trip_keeps_body_and_envelope(body: dict[str, object]) -> None:
    stamper = Stamper("checkd")
    stamp = stamper.next("health.web1")
    event = decode(encode("health.web1", body, stamp))
    assert event.topic == "health.web1"
    assert event.body == body
    assert (event.env.src, event.env.seq, event.env.boot) == ("checkd", 1, stamper.boot)


def test_sequence_is_counted_per_topic() -> None:
    stamper = Stamper("vrrpd")
    seqs = [stamper.next(t)["seq"] for t in ("a.x", "a.x", "b.y", "a.x", "b.y")]
    assert seqs == [1, 2, 1, 3, 2]


def test_body_may_not_shadow_envelope_fields() -> None:
    with pytest.raises(ValueError, match="reserved"):
        encode("health.x", {"seq": 3}, Stamper("t").next("health.x"))


def _payload(**fields: object) -> bytes:
    base: dict[str, object] = {"v": 1, "src": "x", "pid": 1, "boot": "b", "seq": 1, "ts": 1.0}
    base.update(fields)
    packed: bytes = msgpack.packb({k: v for k, v in base.items() if v is not ...})
    return packed


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"health.x"], "frames"),
        ([b"health.x", b"a", b"b"], "frames"),
        ([b"\xff\xfe", _payload()], "topic"),
        ([b"has space", _payload()], "topic"),
        ([b"health.x", b"\xc1"], "msgpack"),
        ([b"health.x", msgpack.packb([1, 2])], "payload"),
        ([b"health.x", _payload(boot=...)], "envelope"),
        ([b"health.x", _payload(seq="7")], "envelope"),
        ([b"health.x", _payload(v=99)], "version"),
        ([b"health.x", msgpack.packb({1: 2})], "msgpack"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(frames: list[bytes], reason: str) -> None:
    with pytest.raises(MessageRejected) as info:
        decode(frames)
    assert info.value.reason == reason


@given(st.lists(st.binary(max_size=64), min_size=0, max_size=3))
def test_random_frames_never_raise_anything_but_rejection(frames: list[bytes]) -> None:
    try:
        decode(frames)
    except MessageRejected:
        pass
