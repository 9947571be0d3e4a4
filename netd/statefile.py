"""netd's state file: the items it installed, so a restarted netd knows what is its own.

Items here may have been read back from the kernel and so have no configuration entry to be
named by; the file keeps every netd field instead (``{"kind": "addr"|"route"|"rule", <fields
that are not their default>}``, nexthops and encaps as nested maps, metrics as ``[name,
value]`` pairs). It is a private file format, never sent on the bus.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from netd.desired import Address, Encap, Item, Nexthop, Route, Rule
from netd.errors import InvalidItemError, WireFormatError

__all__ = ["item_from_state", "item_to_state"]


_KINDS: Final[Mapping[str, type[Address] | type[Route] | type[Rule]]] = {
    "addr": Address,
    "route": Route,
    "rule": Rule,
}


def _plain(value: Any) -> Any:
    if isinstance(value, Encap | Nexthop):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) != f.default
        }
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def item_to_state(item: Item) -> dict[str, Any]:
    """A plain dict: ``{"kind": "addr"|"route"|"rule", <non-default fields>...}``.

    Nexthops and encaps are nested maps, metrics ``[name, value]`` pairs.
    """
    kind = {Address: "addr", Route: "route", Rule: "rule"}[type(item)]
    out: dict[str, Any] = {"kind": kind}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if f.name == "origin":
            continue  # where a config entry came from is the bus's business, not the kernel's
        if f.default is dataclasses.MISSING or value != f.default:
            out[f.name] = _plain(value)
    return out


_SCALAR: Final = (str, int, bool, type(None))


def _encap_from_state(data: Any, where: str) -> Encap:
    if not isinstance(data, Mapping):
        raise WireFormatError(f"{where}: encap must be a map")
    kwargs = dict(data)
    labels = kwargs.get("labels", [])
    if not isinstance(labels, list | tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in labels
    ):
        raise WireFormatError(f"{where}: encap labels must be a list of integers")
    kwargs["labels"] = tuple(labels)
    if not all(isinstance(v, _SCALAR) for k, v in kwargs.items() if k != "labels"):
        raise WireFormatError(f"{where}: encap fields must be plain values")
    return Encap(**kwargs)


def _route_parts_from_state(kwargs: dict[str, Any]) -> None:
    """Nested route fields back into their value types (in place)."""
    if kwargs.get("encap") is not None:
        kwargs["encap"] = _encap_from_state(kwargs["encap"], "route")
    if "nexthops" in kwargs:
        hops = kwargs["nexthops"]
        if not isinstance(hops, list | tuple) or not all(isinstance(h, Mapping) for h in hops):
            raise WireFormatError("route: nexthops must be a list of maps")
        out = []
        for raw in hops:
            hop = dict(raw)
            if hop.get("encap") is not None:
                hop["encap"] = _encap_from_state(hop["encap"], "nexthop")
            if not all(isinstance(v, (*_SCALAR, Encap)) for v in hop.values()):
                raise WireFormatError("route: nexthop fields must be plain values")
            out.append(Nexthop(**hop))
        kwargs["nexthops"] = tuple(out)
    if "metrics" in kwargs:
        pairs = kwargs["metrics"]
        if not isinstance(pairs, list | tuple) or not all(
            isinstance(p, list | tuple)
            and len(p) == 2
            and isinstance(p[0], str)
            and isinstance(p[1], str | int)
            for p in pairs
        ):
            raise WireFormatError("route: metrics must be a list of [name, value] pairs")
        kwargs["metrics"] = tuple((p[0], p[1]) for p in pairs)


def item_from_state(data: Mapping[str, Any]) -> Item:
    if not isinstance(data, Mapping):
        raise WireFormatError(f"item must be a map, got {type(data).__name__}")
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireFormatError(f"unknown item kind {kind!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names) - {"kind", "origin"}
    if unknown:
        raise WireFormatError(f"{kind}: unknown field(s) {sorted(unknown)}")
    kwargs = {k: v for k, v in data.items() if k != "kind"}
    try:
        if cls is Route:
            _route_parts_from_state(kwargs)
        for k, v in kwargs.items():
            if not isinstance(v, (*_SCALAR, Encap, tuple)):
                raise WireFormatError(f"{kind}.{k}: unsupported value type {type(v).__name__}")
            if isinstance(v, Encap | tuple) and k not in ("encap", "nexthops", "metrics"):
                raise WireFormatError(f"{kind}.{k}: unsupported value type {type(v).__name__}")
        return cls(**kwargs)
    except TypeError as exc:
        raise WireFormatError(f"{kind}: {exc}") from exc
    except InvalidItemError as exc:
        raise WireFormatError(f"{kind}: {exc}") from exc
