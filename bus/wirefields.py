"""Type-driven encoding and validation of bus message bodies.

A bus message class (``bus.messages``) is a frozen dataclass whose type hints *are* its wire
schema: this module turns an instance into a plain msgpack-able dict and checks an untrusted
dict against the hints, naming the first bad field. Hand-written here rather than taken from a
validation library because the rules are few (scalars, optionals, literals, tuples, maps and
nested structs, each bounded) and must raise the bus's own ``MessageRejected("schema", ...)``.

Rules:

- ``str`` is at most ``MAX_TEXT`` characters (a field may raise it with ``wire(max_len=...)``);
  ``int`` is a 64-bit integer and never a bool; ``float`` takes any finite number; ``bool`` only
  a bool; ``Literal[...]`` one of its values.
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
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin

from bus.errors import MessageRejected

MAX_TEXT = 4096
MAX_ENTRIES = 65536
_INT_RANGE = 2**63


def wire(*, max_len: int | None = None, rest: bool = False) -> dict[str, Any]:
    """Field metadata: ``max_len`` bounds a string, list or map; ``rest`` marks the one map
    field that collects every other key of the body (log records' free-form fields)."""
    out: dict[str, Any] = {}
    if max_len is not None:
        out["max_len"] = max_len
    if rest:
        out["rest"] = True
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
    def from_map(cls, body: Any, path: str = "") -> Self:
        """Decode a map, raising ``Invalid`` naming the first bad field."""
        if not isinstance(body, Mapping):
            raise Invalid(path or cls.__name__, f"is {type(body).__name__}, expected a map")
        tps = hints(cls)
        kwargs: dict[str, Any] = {}
        rest_field: str | None = None
        for f in dataclasses.fields(cls):
            where = f"{path}.{f.name}" if path else f.name
            if f.metadata.get("rest"):
                rest_field = f.name
                continue
            if f.name not in body:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise Invalid(where, "missing")
                continue
            kwargs[f.name] = _decode(tps[f.name], body[f.name], where, f.metadata)
        if rest_field is not None:
            known = {f.name for f in dataclasses.fields(cls)}
            kwargs[rest_field] = {k: v for k, v in body.items() if k not in known}
        return cls(**kwargs)


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
    def decode(cls, topic: str, body: Mapping[str, Any]) -> Self:
        """The untrusted-input boundary: every field checked, MessageRejected("schema") naming
        the first bad one."""
        try:
            return cls.from_map(body)
        except Invalid as exc:
            raise MessageRejected("schema", f"{topic}: {exc}") from None


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
    meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == name)
    return _decode(tp, value, name, meta)


def _encode(value: Any) -> Any:
    if isinstance(value, Struct):
        return value.encode()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _decode_optional(tp, value, path, meta)
    if origin is Literal:
        if value not in get_args(tp) or isinstance(value, bool):
            raise Invalid(
                path, f"is {value!r}, expected one of {', '.join(map(str, get_args(tp)))}"
            )
        return value
    if origin is tuple:
        return _decode_tuple(tp, value, path, meta)
    if origin is Mapping:
        return _decode_map(tp, value, path, meta)
    if isinstance(tp, type) and issubclass(tp, Struct):
        return tp.from_map(value, path)
    return _decode_scalar(tp, value, path, meta)


def _decode_optional(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)]
    if value is None:
        if len(args) < len(get_args(tp)):
            return None
        raise Invalid(path, "is null")
    problems = []
    for a in args:
        try:
            return _decode(a, value, path, meta)
        except Invalid as exc:
            problems.append(exc.problem)
    raise Invalid(path, "; ".join(problems))


def _decode_tuple(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise Invalid(path, f"is {type(value).__name__}, expected list")
    args = get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        limit = meta.get("max_len", MAX_ENTRIES)
        if len(value) > limit:
            raise Invalid(path, f"has {len(value)} entries, at most {limit} allowed")
        return tuple(_decode(args[0], v, f"{path}[{i}]", {}) for i, v in enumerate(value))
    if len(value) != len(args):
        raise Invalid(path, f"has {len(value)} entries, expected {len(args)}")
    return tuple(
        _decode(a, v, f"{path}[{i}]", {}) for i, (a, v) in enumerate(zip(args, value, strict=True))
    )


def _decode_map(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(path, f"is {type(value).__name__}, expected map")
    limit = meta.get("max_len", MAX_ENTRIES)
    if len(value) > limit:
        raise Invalid(path, f"has {len(value)} entries, at most {limit} allowed")
    value_type = get_args(tp)[1]
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or len(k) > MAX_TEXT:
            raise Invalid(path, f"has a key {k!r:.40} that is not a short string")
        out[k] = _decode(value_type, v, f"{path}[{k!r}]", {})
    return out


def _decode_scalar(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise Invalid(path, f"is {type(value).__name__}, expected bool")
        return value
    if isinstance(value, bool):
        raise Invalid(path, f"is bool, expected {describe(tp)}")
    if tp is int:
        if not isinstance(value, int) or not -_INT_RANGE <= value < _INT_RANGE:
            raise Invalid(path, f"is {type(value).__name__}, expected a 64-bit int")
        return value
    if tp is float:
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise Invalid(path, f"is {type(value).__name__}, expected a finite number")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise Invalid(path, f"is {type(value).__name__}, expected str")
        limit = meta.get("max_len", MAX_TEXT)
        if len(value) > limit:
            raise Invalid(path, f"is {len(value)} characters long, at most {limit} allowed")
        return value
    raise TypeError(f"{path}: unsupported wire type {tp!r}")  # a bug in a message class
