"""Collect the daemon's current state from the bus: retained topics and heartbeats.

Owners re-send retained state to every new subscriber at once, and heartbeats come every
second, so a short listen gives a complete picture without any extra protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq.asyncio

from bus import RuntimeDir, Subscriber

LISTEN = 1.2  # one heartbeat interval plus margin


@dataclass(slots=True)
class Snapshot:
    config: dict[str, Any] | None = None
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self, *, with_model: bool = False) -> dict[str, Any]:
        config = dict(self.config or {})
        if not with_model:
            config.pop("model", None)
        return {
            "config": config or None,
            "instances": self.instances,
            "health": self.health,
            "components": self.components,
            "links": self.links,
            "applied": self.applied,
            "intents": self.intents,
        }


async def collect(runtime: RuntimeDir, listen: float = LISTEN) -> Snapshot:
    ctx = zmq.asyncio.Context()
    sub = Subscriber(
        ctx,
        runtime,
        [
            "config.current",
            "vrrp.state.*",
            "vrrp.intent.*",
            "health.*",
            "hb.*",
            "net.link.*",
            "net.applied.*",
        ],
    )
    sub.start()
    snap = Snapshot()
    deadline = time.monotonic() + listen
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                batch = await asyncio.wait_for(sub.recv_batch(), left)
            except TimeoutError:
                break
            for ev in batch:
                root, _, rest = ev.topic.partition(".")
                body = ev.body
                if ev.topic == "config.current":
                    snap.config = body
                elif ev.topic.startswith("vrrp.state."):
                    snap.instances[body["instance"]] = body
                elif ev.topic.startswith("vrrp.intent."):
                    snap.intents[body["instance"]] = body
                elif root == "health":
                    snap.health[body["name"]] = body
                elif root == "hb":
                    snap.components[rest] = {**body, "pid": ev.env.pid}
                elif ev.topic.startswith("net.link."):
                    snap.links[body["name"]] = body
                elif ev.topic.startswith("net.applied."):
                    snap.applied[body["owner"]] = body
    finally:
        sub.close()
        ctx.term()
    return snap


def status_table(snap: Snapshot) -> str:
    lines = []
    cfg = snap.config
    if cfg:
        lines.append(
            f"config  generation {cfg['generation']}  hash {cfg['hash'][:12]}  {cfg['path']}"
        )
    else:
        lines.append("config  (core has not published a configuration)")
    lines.append("")
    rows: list[tuple[str, ...]] = [("INSTANCE", "STATE", "PRIO", "IFACE", "VRID", "MASTER", "VIPS")]
    for name in sorted(snap.instances):
        i = snap.instances[name]
        master = "self" if i["state"] == "MASTER" else (i.get("master") or "-")
        rows.append(
            (
                name,
                i["state"],
                str(i["priority"]),
                str(i.get("interface", "")),
                str(i.get("vrid", "")),
                master,
                ",".join(i.get("vips", [])),
            )
        )
    lines += _table(rows)
    for name in sorted(snap.instances):
        lines += _priority_breakdown(name, snap.instances[name])
    if snap.health:
        lines.append("")
        rows = [("CHECK", "OK", "REASON")]
        for name in sorted(snap.health):
            h = snap.health[name]
            rows.append((name, "yes" if h["ok"] else "NO", str(h.get("reason", ""))))
        lines += _table(rows)
    lines.append("")
    rows = [("COMPONENT", "PID", "UPTIME", "LOOP LAG")]
    for name in sorted(snap.components):
        c = snap.components[name]
        rows.append((name, str(c["pid"]), f"{c['uptime']:.0f}s", f"{c.get('lag', 0) * 1000:.1f}ms"))
    lines += _table(rows)
    return "\n".join(lines)


def _priority_breakdown(name: str, inst: dict[str, Any]) -> list[str]:
    """``VI_1 priority 130 = base 150, track_script chk_web -20 (failed)`` plus faults."""
    trackers = inst.get("trackers") or []
    faults = inst.get("faults") or []
    if not trackers and not faults:
        return []
    base = inst.get("base_priority", inst["priority"])
    parts = [f"base {base}"]
    for t in trackers:
        status = t.get("status")
        seen = (
            "no report yet"
            if status is None
            else ("ok" if status else "failed")
            if isinstance(status, bool)
            else f"value {status}"
        )
        effect = "FAULT" if t.get("fault") else f"{t.get('delta', 0):+d}"
        parts.append(f"{t['tracker']} {effect} ({seen})")
    lines = [f"  {name}: priority {inst['priority']} = {', '.join(parts)}"]
    lines += [f"  {name}: FAULT because of {fault}" for fault in faults]
    return lines


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
