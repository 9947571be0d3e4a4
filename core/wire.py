"""`Config` <-> plain msgpack-able dicts, and a stable hash of a config.

The wire form is derived from the dataclass type hints, so every model field travels and the
decoder validates types instead of trusting the sender.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

import msgpack

from core import model
from core.errors import WireFormatError
from core.model import Config

WIRE_VERSION = 1


_NO_DEFAULT = object()


@cache
def _defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out.append((f.name, f.default))
        elif f.default_factory is not dataclasses.MISSING:
            out.append((f.name, f.default_factory()))
        else:
            out.append((f.name, _NO_DEFAULT))
    return tuple(out)


def _encode(value: Any, omit: bool) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for name, default in _defaults(type(value)):
            v = getattr(value, name)
            if omit and v == default:
                continue
            out[name] = _encode(v, omit)
        return out
    if isinstance(value, tuple):
        return [_encode(v, omit) for v in value]
    return value


def to_wire(config: Config, *, omit_defaults: bool = False) -> dict[str, Any]:
    """A dict of dict/list/str/int/float/bool/None only; `from_wire` inverts it exactly.

    `omit_defaults=True` leaves out fields equal to their default (about ten times smaller for
    big configs); `from_wire` restores them. `config_hash` always uses the full form.
    """
    out = _encode(config, omit_defaults)
    assert isinstance(out, dict)
    return out


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(model))


def _decode(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _decode_union(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp):
            raise WireFormatError(f"{path}: {value!r} not one of {get_args(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise WireFormatError(f"{path}: expected a list")
        (item,) = get_args(tp)[:1]
        return tuple(_decode(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, path)
    return _decode_scalar(tp, value, path)


def _decode_union(tp: Any, value: Any, path: str) -> Any:
    args = get_args(tp)
    if value is None:
        if type(None) in args:
            return None
        raise WireFormatError(f"{path}: null not allowed")
    errors = []
    for a in args:
        if a is type(None):
            continue
        try:
            return _decode(a, value, path)
        except WireFormatError as exc:
            errors.append(str(exc))
    raise WireFormatError("; ".join(errors))


def _decode_dataclass(tp: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise WireFormatError(f"{path}: expected a map for {tp.__name__}")
    hints = _hints(tp)
    unknown = set(value) - set(hints)
    if unknown:
        raise WireFormatError(f"{path}: unknown field(s) {sorted(unknown)} for {tp.__name__}")
    kwargs = {k: _decode(hints[k], v, f"{path}.{k}") for k, v in value.items()}
    try:
        return tp(**kwargs)
    except TypeError as exc:
        raise WireFormatError(f"{path}: {exc}") from exc


#: scalar type -> (accepts, what the error says it expected)
_SCALARS: dict[type, tuple[Callable[[Any], bool], str]] = {
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    bool: (lambda v: isinstance(v, bool), "a boolean"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _decode_scalar(tp: Any, value: Any, path: str) -> Any:
    check = _SCALARS.get(tp)
    if check is None:
        raise WireFormatError(f"{path}: unsupported type {tp!r}")
    accepts, expected = check
    if not accepts(value):
        raise WireFormatError(f"{path}: expected {expected}")
    return float(value) if tp is float else value


def from_wire(d: dict[str, Any]) -> Config:
    """Exact inverse of `to_wire`; raises WireFormatError on anything else."""
    out = _decode(Config, d, "config")
    assert isinstance(out, Config)
    return out


def config_hash(config: Config) -> str:
    """sha256 (hex) of the canonical msgpack encoding of `to_wire(config)`."""
    packed = msgpack.packb(_canonical(to_wire(config)), use_bin_type=True)
    return hashlib.sha256(packed).hexdigest()


def _canonical(value: Any) -> Any:
    # Sorted keys make the bytes independent of dict insertion order.
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def part_to_wire(part: Any) -> Any:
    """One model object (an Address, a Route, a TrackRef...) as plain msgpack-able data."""
    return _encode(part, False)


def part_from_wire(cls: type[Any], value: Any) -> Any:
    """Inverse of ``part_to_wire`` for a model class, validating types like ``from_wire``."""
    return _decode(cls, value, cls.__name__)
