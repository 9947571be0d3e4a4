"""Fuzzing the bus's untrusted-input boundary: any frames are an event or ``MessageRejected``.

What a subscriber does with a message, from raw frames: ``Subscriber.accept`` (topic filter,
envelope, size bounds, schema, sequence), then the message class of the topic
(``message_for(topic).decode``), and for ``config.current`` the model through
``core.from_wire`` and checkd's ``plan_from_wire``: each either returns a value or raises the
package's own error (``MessageRejected``, ``WireFormatError``, ``PlanError``), never another
exception. Inputs are random bytes, random msgpack maps with a good or bad envelope, and valid
messages of every class with one field changed, dropped or added.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq.asyncio
from hypothesis import given
from hypothesis import strategies as st

import core
from bus import MessageRejected, RuntimeDir, Stamper, Subscriber, encode
from bus.messages import MESSAGES, ConfigCurrent, message_for
from bus.wirefields import Message
from checkd.errors import PlanError
from checkd.plan import normalize, plan_from_wire
from core.errors import WireFormatError
from tests.bus.test_messages import struct_strategy
from tests.fuzz.budget import fuzz

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TOPICS = [cls.PATTERN.replace("*", "x") for cls in MESSAGES]


@st.composite
def mutated_value(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with one thing somewhere inside it replaced, removed or added."""
    if isinstance(value, dict) and value and depth < 6:
        key = draw(st.sampled_from(sorted(value, key=str)))
        out = dict(value)
        op = draw(st.sampled_from(["replace", "drop", "add", "descend", "descend"]))
        if op == "replace":
            out[key] = draw(VALUES)
        elif op == "drop":
            del out[key]
        elif op == "add":
            out[draw(st.text(max_size=8))] = draw(VALUES)
        else:
            out[key] = draw(mutated_value(value[key], depth + 1))
        return out
    if isinstance(value, (list, tuple)) and value and depth < 6:
        i = draw(st.integers(0, len(value) - 1))
        items = list(value)
        items[i] = draw(st.one_of(VALUES, mutated_value(value[i], depth + 1)))
        return items
    return draw(VALUES)


@pytest.fixture(scope="module")
def subscriber() -> Iterator[Subscriber]:
    ctx = zmq.asyncio.Context()
    path = Path(tempfile.mkdtemp(prefix="pk-fz-"))
    sub = Subscriber(ctx, RuntimeDir(path), [cls.PATTERN for cls in MESSAGES])
    try:
        yield sub  # never started: accept() is the decoding half
    finally:
        sub.close()
        ctx.term()
        os.rmdir(path)


def consume(topic: str, body: dict[str, Any]) -> None:
    """What the components do with a delivered body: the typed decoders, for config the
    model codec and checkd's planner."""
    cls = message_for(topic)
    if cls is None:
        return
    try:
        msg = cls.decode(topic, body)
    except MessageRejected:
        return
    if isinstance(msg, ConfigCurrent):
        try:
            core.from_wire(dict(msg.model))
        except WireFormatError:
            pass
        try:
            plan_from_wire(normalize(msg.model))
        except PlanError:
            pass


@st.composite
def frames(draw: st.DrawFn) -> list[bytes]:
    topic = draw(st.one_of(st.sampled_from(TOPICS), st.text(max_size=20)))
    stamp = Stamper(draw(st.sampled_from(["core", "vrrpd", "x"]))).next(topic)
    cls = message_for(topic)
    body: Any
    if cls is not None and draw(st.booleans()):
        valid = draw(struct_strategy(cls)).encode()
        body = draw(st.one_of(st.just(valid), mutated_value(valid)))
    else:
        body = draw(st.dictionaries(st.text(max_size=8), VALUES, max_size=5))
    payload = {**body, **stamp} if isinstance(body, dict) else body
    if draw(st.booleans()):
        payload = draw(mutated_value(payload))
    packed = msgpack.packb(payload, use_bin_type=True)
    kind = draw(st.sampled_from(["packed", "packed", "bytes", "cut"]))
    if kind == "bytes":
        packed = draw(st.binary(max_size=64))
    elif kind == "cut":
        packed = packed[: draw(st.integers(0, len(packed)))]
    out = [topic.encode("utf-8", "surrogatepass"), packed]
    if draw(st.integers(0, 9)) == 0:
        out = out[: draw(st.integers(0, 1))] + draw(st.lists(st.binary(max_size=8), max_size=2))
    return out


@fuzz(ci=500)
@given(frames())
def test_any_frames_are_an_event_or_a_named_rejection(
    subscriber: Subscriber, raw: list[bytes]
) -> None:
    event = subscriber.accept(raw)
    if event is not None:
        consume(event.topic, dict(event.body))


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.PATTERN)
@fuzz(ci=100)
@given(data=st.data())
def test_each_message_decoder_takes_any_body(cls: type[Message], data: st.DataObject) -> None:
    topic = cls.PATTERN.replace("*", "x")
    valid = data.draw(struct_strategy(cls)).encode()
    body = data.draw(st.one_of(mutated_value(valid), st.dictionaries(st.text(), VALUES)))
    if not isinstance(body, dict):
        return
    # Through msgpack, as on the wire (tuples arrive as lists, bytes stay bytes).
    consume(topic, msgpack.unpackb(msgpack.packb(body, use_bin_type=True), raw=False))


def _sample_models() -> list[dict[str, Any]]:
    from tests.core.test_properties import SEEDS

    out = []
    for text in SEEDS:
        config = core.loads(text, config_id="n", script_env=None).config
        out.append(core.to_wire(config, omit_defaults=True))
    return out


MODELS = _sample_models()


@fuzz(ci=200)
@given(st.data())
def test_any_config_model_on_the_bus_is_a_config_or_a_wire_format_error(
    data: st.DataObject,
) -> None:
    model = data.draw(mutated_value(data.draw(st.sampled_from(MODELS))))
    if not isinstance(model, dict):
        return
    body = {**dataclasses.asdict(ConfigCurrent(1, "h", "/p", {}, {}, "r")), "model": model}
    consume("config.current", msgpack.unpackb(msgpack.packb(body), raw=False))


def test_encode_stays_the_inverse_of_accept(subscriber: Subscriber) -> None:
    # The harness itself: a valid message goes through accept untouched.
    stamp = Stamper("harness").next("vrrp.renew")
    event = subscriber.accept(encode("vrrp.renew", {"leases": {"VI_1": [3, 1.5]}}, stamp))
    assert event is not None and event.topic == "vrrp.renew"
    consume(event.topic, dict(event.body))
