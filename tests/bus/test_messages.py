"""The typed bus messages: every class survives encode -> msgpack -> decode unchanged, every field
refuses a wrong type, a missing value and an oversized one by name, and docs/bus.md documents
every field of every message."""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus import MessageRejected
from bus.messages import MESSAGES, Intent, LogRecord, Renew, message_for
from bus.wirefields import MAX_ENTRIES, MAX_TEXT, Message, Struct, hints

_SCALARS = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)


def strategy(tp: Any) -> st.SearchStrategy[Any]:
    origin = get_origin(tp)
    if tp is Any:
        return _SCALARS
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy(a) if a is not type(None) else st.none() for a in get_args(tp)))
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy(args[0]), max_size=3).map(tuple)
        return st.tuples(*(strategy(a) for a in args))
    if origin is Mapping:
        return st.dictionaries(st.text(max_size=8), strategy(get_args(tp)[1]), max_size=3)
    if isinstance(tp, type) and issubclass(tp, Struct):
        return struct_strategy(tp)
    return {
        str: st.text(max_size=12),
        int: st.integers(-(2**63), 2**63 - 1),
        float: st.floats(allow_nan=False, allow_infinity=False) | st.integers(0, 10**6),
        bool: st.booleans(),
    }[tp]


def struct_strategy(cls: type[Struct]) -> st.SearchStrategy[Any]:
    tps = hints(cls)
    fields = {f.name: strategy(tps[f.name]) for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        if f.metadata.get("positive"):  # a duration: only numbers above 0 are valid
            fields[f.name] = fields[f.name].filter(lambda v: v is None or v > 0)
    if cls is LogRecord:
        reserved = {f.name for f in dataclasses.fields(cls)}
        fields["fields"] = st.dictionaries(
            st.text(max_size=8).filter(lambda k: k not in reserved), _SCALARS, max_size=3
        )
    return st.builds(cls, **fields)


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.PATTERN)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(cls: type[Message], data: st.DataObject) -> None:
    msg = data.draw(struct_strategy(cls))
    wire = msgpack.unpackb(msgpack.packb(msg.encode(), use_bin_type=True), raw=False)
    assert cls.decode(cls.PATTERN.replace("*", "x"), wire) == msg


def _minimal(cls: type[Message]) -> dict[str, Any]:
    """A valid body with every field set to a small value of its type."""
    tps = hints(cls)
    return {f.name: _sample(tps[f.name]) for f in dataclasses.fields(cls) if f.name != "fields"}


def _sample(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _sample(next(a for a in get_args(tp) if a is not type(None)))
    if origin is Literal:
        return get_args(tp)[0]
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return [_sample(args[0])]
        return [_sample(a) for a in args]
    if origin is Mapping:
        return {"k": _sample(get_args(tp)[1])}
    if isinstance(tp, type) and issubclass(tp, Struct):
        tps = hints(tp)
        return {f.name: _sample(tps[f.name]) for f in dataclasses.fields(tp)}
    return {str: "x", int: 1, float: 1.5, bool: True}.get(tp, 1)


def _cases() -> list[tuple[type[Message], str]]:
    return [
        (cls, f.name)
        for cls in MESSAGES
        for f in dataclasses.fields(cls)
        if not f.metadata.get("rest")
    ]


@pytest.mark.parametrize("cls,name", _cases(), ids=lambda v: getattr(v, "PATTERN", v))
def test_each_field_is_checked(cls: type[Message], name: str) -> None:
    topic = cls.PATTERN.replace("*", "x")
    body = _minimal(cls)
    assert cls.decode(topic, body).encode() is not None
    tp = hints(cls)[name]
    wrong: Any = 12345 if isinstance(_sample(tp), str) else "x"
    with pytest.raises(MessageRejected, match=f"'{re.escape(name)}") as exc:
        cls.decode(topic, {**body, name: wrong})
    assert exc.value.reason == "schema"
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    if required:
        with pytest.raises(MessageRejected, match=f"'{re.escape(name)}' missing"):
            cls.decode(topic, {k: v for k, v in body.items() if k != name})
    oversized = _oversized(tp, field.metadata.get("max_len"))
    if oversized is not None:
        with pytest.raises(MessageRejected, match=f"'{re.escape(name)}"):
            cls.decode(topic, {**body, name: oversized})


def _oversized(tp: Any, max_len: int | None) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _oversized(next(a for a in get_args(tp) if a is not type(None)), max_len)
    if (max_len or 0) > MAX_ENTRIES:
        return None  # the config model: only the payload limit bounds it
    if tp is str:
        return "x" * ((max_len or MAX_TEXT) + 1)
    if origin is tuple and get_args(tp)[1:] == (Ellipsis,):
        return [_sample(get_args(tp)[0])] * ((max_len or MAX_ENTRIES) + 1)
    if origin is Mapping:
        return {str(i): _sample(get_args(tp)[1]) for i in range((max_len or MAX_ENTRIES) + 1)}
    return None


def test_nested_fields_are_named_by_path() -> None:
    body = {"instance": "VI_1", "generation": 1, "lease": 3, "items": [{"kind": "vap", "spec": {}}]}
    with pytest.raises(MessageRejected, match=r"'items\[0\]\.kind' is 'vap'"):
        Intent.decode("vrrp.intent.VI_1", body)


@pytest.mark.parametrize(
    "leases,path,problem",
    [
        (
            {"VI_1": [3, 2.5], "VI_7": [3, "x"]},
            r"leases\['VI_7'\]\[1\]",
            "is str, expected a finite",
        ),
        ({"VI_1": [3]}, r"leases\['VI_1'\]", "has 1 entries, expected 2"),
        ({"VI_1": [True, 2.5]}, r"leases\['VI_1'\]\[0\]", "is bool, expected int"),
        ({7: [1, 2.5]}, "leases", "has a key 7 that is not a short string"),
        ([], "leases", "is list, expected map"),
    ],
)
def test_the_first_bad_part_of_a_busy_message_is_named(
    leases: Any, path: str, problem: str
) -> None:
    # Decoders are compiled per type and format a path only once a value fails: the path
    # must still lead to the part that failed, however deep.
    with pytest.raises(MessageRejected, match=f"'{path}' {problem}"):
        Renew.decode("vrrp.renew", {"leases": leases})
    ok = {f"VI_{i}": [i, 2.5] for i in range(300)}
    assert Renew.decode("vrrp.renew", {"leases": ok}).leases["VI_299"] == (299, 2.5)


def test_bool_is_not_a_number_and_unknown_fields_pass() -> None:
    cls = message_for("hb.vrrpd")
    assert cls is not None
    with pytest.raises(MessageRejected, match="'uptime' is bool"):
        cls.decode("hb.vrrpd", {"name": "vrrpd", "uptime": True})
    assert cls.decode("hb.vrrpd", {"name": "vrrpd", "uptime": 1, "new_thing": [1]}).encode() == {
        "name": "vrrpd",
        "uptime": 1,
    }


def _doc_rows() -> dict[str, str]:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "bus.md").read_text()
    rows = {}
    for line in doc.splitlines():
        m = re.match(r"\| `([^`]+)`", line)
        if m:
            rows[m.group(1)] = line
    return rows


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.PATTERN)
def test_docs_document_every_field(cls: type[Message]) -> None:
    rows = _doc_rows()
    written = cls.PATTERN[:-1] if cls.PATTERN.endswith("*") else cls.PATTERN
    row = next((r for topic, r in rows.items() if topic.split("<")[0] == written), None)
    assert row is not None, f"docs/bus.md has no row for {cls.PATTERN}"
    for f in dataclasses.fields(cls):
        if f.metadata.get("rest"):
            continue
        assert f"`{f.name}`" in row, f"docs/bus.md: {cls.PATTERN} does not document {f.name}"
    for struct in _structs(cls):
        for f in dataclasses.fields(struct):
            assert f"`{f.name}`" in row, f"docs/bus.md: {cls.PATTERN} does not document {f.name}"


def _structs(cls: type[Struct]) -> list[type[Struct]]:
    out = []
    for tp in hints(cls).values():
        stack = [tp]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, Struct):
                out.append(t)
                out += _structs(t)
            else:
                stack += [a for a in get_args(t) if a is not Ellipsis]
    return out
