"""Type-driven encoding and validation of bus message bodies.

A bus message class (``bus.messages``) is a frozen dataclass whose type hints *are* its wire
schema: this module turns an instance into a plain msgpack-able dict and checks an untrusted
dict against the hints, naming the first bad field. Hand-written here rather than taken from a
validation library because the rules are few (scalars, optionals, literals, tuples, maps and
nested structs, each bounded) and must raise the bus's own ``MessageRejected("schema", ...)``.

Rules:

- ``str`` is at most ``MAX_TEXT`` characters (a field may raise it with ``wire(max_len=...)``);
  ``int`` is a 64-bit integer and never a bool; ``float`` takes any finite number (only one
  above 0 with ``wire(positive=True)``: a duration); ``bool`` only a bool; ``Literal[...]`` one
  of its values.
- ``tuple[T, ...]`` travels as a list of at most ``MAX_ENTRIES`` (or ``wire(max_len=...)``);
  ``tuple[A, B]`` as a list of exactly that shape.
- ``Mapping[str, T]`` is a map with string keys, at most ``MAX_ENTRIES`` entries;
  ``Mapping[str, Any]`` leaves the values to the reader (the config model, core parts).
- A nested ``Struct`` is a map decoded the same way.
- A field without a default is required. An optional field whose default is ``None`` is left
  out of the encoded body while it is ``None``. Fields the class does not know are ignored:
  schemas only grow, and a newer publisher must not break an older reader.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any, ClassVar, Literal, Protocol, Self, Union, get_args, get_origin

from bus.errors import MessageRejected

MAX_TEXT = 4096
MAX_ENTRIES = 65536
_INT_RANGE = 2**63


def wire(
    *, max_len: int | None = None, rest: bool = False, positive: bool = False
) -> dict[str, Any]:
    """Field metadata: ``max_len`` bounds a string, list or map; ``rest`` marks the one map
    field that collects every other key of the body (log records' free-form fields);
    ``positive`` takes only numbers above 0."""
    out: dict[str, Any] = {}
    if max_len is not None:
        out["max_len"] = max_len
    if rest:
        out["rest"] = True
    if positive:
        out["positive"] = True
    return out


class Invalid(Exception):
    """One field failed; ``path`` names it (``items[3].kind``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"field '{path}' {problem}")
        self.path = path
        self.problem = problem


@dataclasses.dataclass(frozen=True, slots=True)
class Struct:
    """A map inside a message, or a whole message body: encoded and checked by its hints."""

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("rest"):
                out.update({k: v for k, v in value.items() if k not in out})
                continue
            if value is None and f.default is None:
                continue
            out[f.name] = _encode(value)
        return out

    @classmethod
    def from_map(cls, body: Any, path: str = "", *, done: Mapping[str, Any] | None = None) -> Self:
        """Decode a map, raising ``Invalid`` naming the first bad field; the fields in ``done``
        are taken as they are there (already decoded from this same map)."""
        try:
            decoded: Self = _struct_decoder(cls)(body, done)
        except Invalid as exc:
            raise (
                _rooted(exc, path) if path or exc.path else Invalid(cls.__name__, exc.problem)
            ) from None
        return decoded


@dataclasses.dataclass(frozen=True, slots=True)
class Message(Struct):
    """A public bus message: ``PATTERN`` is its topic (exact, or a prefix ending in ``*``)."""

    PATTERN: ClassVar[str]
    SUMMARY: ClassVar[str]

    @classmethod
    def covers(cls, topic: str) -> bool:
        if cls.PATTERN.endswith("*"):
            return topic.startswith(cls.PATTERN[:-1])
        return topic == cls.PATTERN

    @classmethod
    def decode(cls, topic: str, body: Mapping[str, Any], *, checked: Checked | None = None) -> Self:
        """The untrusted-input boundary: every field checked, MessageRejected("schema") naming
        the first bad one. ``checked``, the subscriber's schema check of this same body
        (``Event.checked``), spares checking its required fields a second time: a busy
        netd's ``vrrp.renew`` names every held instance, twice a second, all in a required
        field."""
        done = checked.fields if checked is not None and checked.message is cls else None
        try:
            return cls.from_map(body, done=done)
        except Invalid as exc:
            raise MessageRejected("schema", f"{topic}: {exc}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    """A body's required fields as ``bus.schemas`` decoded them under ``message``'s hints."""

    message: type[Message]
    fields: Mapping[str, Any]


def required_fields(cls: type[Struct]) -> dict[str, str]:
    """Required field -> a short type description (docs and ``bus.schemas``)."""
    tps = hints(cls)
    return {
        f.name: describe(tps[f.name])
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


def describe(tp: Any) -> str:
    """How docs/bus.md names a type: ``str``, ``int``, ``number``, ``list``, ``map``..."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in get_args(tp) if a is not type(None))
    if origin is Literal or tp is str:
        return "str"
    if tp is float:
        return "number"
    if origin is tuple:
        return "list"
    if origin is Mapping or (isinstance(tp, type) and issubclass(tp, Struct)):
        return "map"
    return getattr(tp, "__name__", str(tp))


def hints(cls: type) -> dict[str, Any]:
    """A class's resolved type hints (cached: every decode needs them)."""
    return _hints(cls)


@cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_field(cls: type[Struct], name: str, tp: Any, value: Any) -> Any:
    """Decode one field of ``cls`` on its own (``bus.schemas`` checks required fields so)."""
    # Found once per field: every subscriber checks every message's required fields.
    dec = _FIELD_DECODERS.get((cls, name))
    if dec is None:
        meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == name)
        dec = _FIELD_DECODERS[cls, name] = _field_decoder(tp, meta)
    try:
        return dec(value)
    except Invalid as exc:
        raise _rooted(exc, name) from None


def _encode(value: Any) -> Any:
    if isinstance(value, Struct):
        return value.encode()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    return value


# ---- decoding ------------------------------------------------------------------------------
#
# Each type is compiled once into a closure that checks and converts one value: walking the
# hints with get_origin/get_args for every value cost more than the rest of a busy netd's
# work (a vrrp.renew names every held instance, twice a second). A closure raises ``Invalid``
# with the path *below* it (``""`` for the value itself, ``[3].kind`` for a part); each level
# prefixes its own step, and only on the error path, so a valid value never formats a path.

Decoder = Callable[[Any], Any]

_FIELD_DECODERS: dict[tuple[type[Struct], str], Decoder] = {}  # check_field's, by field


def _identity(value: Any) -> Any:
    return value


def _decoder(tp: Any, max_len: int | None) -> Decoder:
    return _compile(tp, max_len)


def _field_decoder(tp: Any, meta: Mapping[str, Any]) -> Decoder:
    """A field's decoder with its metadata's limits."""
    dec = _decoder(tp, meta.get("max_len"))
    if not meta.get("positive"):
        return dec

    def positive(value: Any) -> Any:
        out = dec(value)
        if out is not None and out <= 0:
            raise Invalid("", f"is {out!r}, expected a number above 0")
        return out

    return positive


@cache
def _compile(tp: Any, max_len: int | None) -> Decoder:
    if tp is Any:
        return _identity
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _optional_decoder(get_args(tp), max_len)
    if origin is Literal:
        return _literal_decoder(get_args(tp))
    if origin is tuple:
        return _tuple_decoder(get_args(tp), max_len)
    if origin is Mapping:
        return _map_decoder(get_args(tp)[1], max_len)
    if isinstance(tp, type) and issubclass(tp, Struct):
        struct: type[Struct] = tp

        def decode_struct(value: Any) -> Any:
            return _struct_decoder(struct)(value)  # looked up late: a struct may name itself

        return decode_struct
    return _scalar_decoder(tp, max_len)


def _rooted(exc: Invalid, root: str) -> Invalid:
    """``exc`` (a path below some value) as raised from the value at ``root``."""
    path = root + exc.path if root else exc.path.lstrip(".")
    return Invalid(path, exc.problem)


class StructDecoder(Protocol):
    def __call__(self, body: Any, done: Mapping[str, Any] | None = None, /) -> Any: ...


_STRUCT_DECODERS: dict[type[Struct], StructDecoder] = {}


def _struct_decoder(cls: type[Struct]) -> StructDecoder:
    decoder = _STRUCT_DECODERS.get(cls)
    if decoder is None:
        decoder = _STRUCT_DECODERS[cls] = _compile_struct(cls)
    return decoder


def _compile_struct(cls: type[Struct]) -> StructDecoder:
    tps = hints(cls)
    fields: list[tuple[str, str, Decoder, bool]] = []
    rest: str | None = None
    for f in dataclasses.fields(cls):
        if f.metadata.get("rest"):
            rest = f.name
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        fields.append((f.name, f".{f.name}", _field_decoder(tps[f.name], f.metadata), required))
    known = frozenset(f.name for f in dataclasses.fields(cls))

    def decode(body: Any, done: Mapping[str, Any] | None = None, /) -> Any:
        if not isinstance(body, Mapping):
            raise Invalid("", f"is {type(body).__name__}, expected a map")
        kwargs: dict[str, Any] = {}
        for name, step, dec, required in fields:
            if done is not None and name in done:
                kwargs[name] = done[name]
                continue
            if name not in body:
                if required:
                    raise Invalid(step, "missing")
                continue
            try:
                kwargs[name] = dec(body[name])
            except Invalid as exc:
                raise Invalid(step + exc.path, exc.problem) from None
        if rest is not None:
            kwargs[rest] = {k: v for k, v in body.items() if k not in known}
        return cls(**kwargs)

    return decode


def _optional_decoder(args: tuple[Any, ...], max_len: int | None) -> Decoder:
    alternatives = [_decoder(a, max_len) for a in args if a is not type(None)]
    nullable = len(alternatives) < len(args)

    def decode(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise Invalid("", "is null")
        problems = []
        for dec in alternatives:
            try:
                return dec(value)
            except Invalid as exc:
                problems.append(exc.problem)
        raise Invalid("", "; ".join(problems))

    return decode


def _literal_decoder(allowed: tuple[Any, ...]) -> Decoder:
    def decode(value: Any) -> Any:
        if value not in allowed or isinstance(value, bool):
            raise Invalid("", f"is {value!r}, expected one of {', '.join(map(str, allowed))}")
        return value

    return decode


def _located(items: Iterable[tuple[str, Decoder, Any]]) -> Invalid:
    """The first failing part's error, re-found on the slow path after a fast one failed."""
    for step, dec, value in items:
        try:
            dec(value)
        except Invalid as exc:
            return Invalid(step + exc.path, exc.problem)
    raise AssertionError("a decoder failed once and not again")  # decoders are pure


def _list_check(value: Any) -> None:
    if not isinstance(value, list | tuple):
        raise Invalid("", f"is {type(value).__name__}, expected list")


def _tuple_decoder(args: tuple[Any, ...], max_len: int | None) -> Decoder:
    if len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0], None)
        limit = MAX_ENTRIES if max_len is None else max_len

        def decode_many(value: Any) -> tuple[Any, ...]:
            _list_check(value)
            if len(value) > limit:
                raise Invalid("", f"has {len(value)} entries, at most {limit} allowed")
            try:
                return tuple(map(item, value))
            except Invalid:
                raise _located((f"[{i}]", item, v) for i, v in enumerate(value)) from None

        return decode_many
    parts = tuple(_decoder(a, None) for a in args)

    def decode_fixed(value: Any) -> tuple[Any, ...]:
        _list_check(value)
        if len(value) != len(parts):
            raise Invalid("", f"has {len(value)} entries, expected {len(parts)}")
        try:
            return tuple([dec(v) for dec, v in zip(parts, value, strict=True)])
        except Invalid:
            raise _located(
                (f"[{i}]", dec, v) for i, (dec, v) in enumerate(zip(parts, value, strict=True))
            ) from None

    return decode_fixed


def _map_decoder(value_tp: Any, max_len: int | None) -> Decoder:
    item = _decoder(value_tp, None)
    limit = MAX_ENTRIES if max_len is None else max_len

    def decode(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise Invalid("", f"is {type(value).__name__}, expected map")
        if len(value) > limit:
            raise Invalid("", f"has {len(value)} entries, at most {limit} allowed")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or len(k) > MAX_TEXT:
                raise Invalid("", f"has a key {k!r:.40} that is not a short string")
            try:
                out[k] = item(v)
            except Invalid as exc:
                raise Invalid(f"[{k!r}]{exc.path}", exc.problem) from None
        return out

    return decode


def _scalar_decoder(tp: Any, max_len: int | None) -> Decoder:
    if tp is bool:
        return _bool
    expected = describe(tp)

    def no_bool(value: Any) -> None:
        if isinstance(value, bool):
            raise Invalid("", f"is bool, expected {expected}")

    if tp is int:

        def decode_int(value: Any) -> Any:
            no_bool(value)
            if not isinstance(value, int) or not -_INT_RANGE <= value < _INT_RANGE:
                raise Invalid("", f"is {type(value).__name__}, expected a 64-bit int")
            return value

        return decode_int
    if tp is float:

        def decode_float(value: Any) -> Any:
            no_bool(value)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise Invalid("", f"is {type(value).__name__}, expected a finite number")
            return value

        return decode_float
    if tp is str:
        limit = MAX_TEXT if max_len is None else max_len

        def decode_str(value: Any) -> Any:
            if not isinstance(value, str):
                no_bool(value)
                raise Invalid("", f"is {type(value).__name__}, expected str")
            if len(value) > limit:
                raise Invalid("", f"is {len(value)} characters long, at most {limit} allowed")
            return value

        return decode_str
    raise TypeError(f"unsupported wire type {tp!r}")  # a bug in a message class


def _bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise Invalid("", f"is {type(value).__name__}, expected bool")
    return value
