"""Config models in the wire form of ``core.to_wire`` (dataclass fields by name), built by hand.

Partial maps are valid wire input: ``core.from_wire`` fills every missing field with the
model's default, and checkd's planner applies the same defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def script(name: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "script": {"command": command, "user": None, "group": None}, **fields}


def instance(name: str, **tracks: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        **{
            key: [{"name": n, "weight": None, "reverse": False} for n in names]
            for key, names in tracks.items()
        },
    }


def model(
    *,
    scripts: Sequence[dict[str, Any]] = (),
    files: Sequence[dict[str, Any]] = (),
    processes: Sequence[dict[str, Any]] = (),
    instances: Sequence[dict[str, Any]] = (),
    global_defs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "vrrp_scripts": list(scripts),
        "track_files": list(files),
        "track_processes": list(processes),
        "instances": list(instances),
    }
    if global_defs is not None:
        out["global_defs"] = global_defs
    return out


def tracking_all(
    scripts: Sequence[dict[str, Any]] = (),
    files: Sequence[dict[str, Any]] = (),
    processes: Sequence[dict[str, Any]] = (),
    global_defs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A model with one instance tracking every check given."""
    vi = instance(
        "VI_1",
        track_script=[s["name"] for s in scripts],
        track_file=[f["name"] for f in files],
        track_process=[p["name"] for p in processes],
    )
    return model(
        scripts=scripts, files=files, processes=processes, instances=[vi], global_defs=global_defs
    )
