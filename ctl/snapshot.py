"""Collect the daemon's current state from the bus: retained topics and heartbeats.

Owners re-send retained state to every new subscriber at once, and heartbeats come every
second. A listen of one heartbeat interval names the components; each then says when it has
re-sent what our subscriptions cover (``bus.synced.<publisher>``, docs/bus.md), so a loaded
machine gets a complete picture a little later rather than a partial one, and a component
that never finishes is named instead of silently missing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq.asyncio

from bus import MessageRejected, RuntimeDir, Subscriber, messages, topics

LISTEN = 1.2  # one heartbeat interval plus margin
SETTLE = 5.0  # how long to wait, at most, for components still re-sending their state

_TOPICS = (
    "config.current",
    "vrrp.state.*",
    "vrrp.intent.*",
    "health.*",
    "hb.*",
    "net.link.*",
    "net.applied.*",
    "check.pool.*",
    "check.rs.*",
)


@dataclass(slots=True)
class Snapshot:
    config: dict[str, Any] | None = None
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)  # by virtual server id
    real_servers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by real server id
    #: why messages were left out (a field failed its message class's check)
    rejected: list[str] = field(default_factory=list)
    #: components heard whose re-sent state did not all arrive in time
    unsynced: list[str] = field(default_factory=list)

    def add(self, topic: str, body: dict[str, Any], pid: int) -> None:
        """File one retained message under its key; each is checked whole by its message
        class first (MessageRejected names the bad field). The body is kept as sent, with
        fields newer publishers add."""
        root, _, rest = topic.partition(".")
        if topic == "config.current":
            messages.ConfigCurrent.decode(topic, body)
            self.config = body
        elif topic.startswith("vrrp.state."):
            self.instances[messages.StateReport.decode(topic, body).instance] = body
        elif topic.startswith("vrrp.intent."):
            self.intents[messages.Intent.decode(topic, body).instance] = body
        elif root == "health":
            self.health[messages.Verdict.decode(topic, body).name] = body
        elif root == "hb":
            messages.Heartbeat.decode(topic, body)
            self.components[rest] = {**body, "pid": pid}
        elif topic.startswith("net.link."):
            self.links[messages.LinkReport.decode(topic, body).name] = body
        elif topic.startswith("net.applied."):
            self.applied[messages.Applied.decode(topic, body).owner] = body
        elif topic.startswith("check.pool."):
            self.pools[messages.PoolReport.decode(topic, body).vs] = body
        elif topic.startswith("check.rs."):
            self.real_servers[messages.RealServerReport.decode(topic, body).rs] = body

    def to_json(self, *, with_model: bool = False) -> dict[str, Any]:
        config = dict(self.config or {})
        if not with_model:
            config.pop("model", None)
        elif "model" in config:
            config["model"] = redacted(config["model"])
        return {
            "config": config or None,
            "instances": self.instances,
            "health": self.health,
            "components": self.components,
            "links": self.links,
            "applied": self.applied,
            "intents": self.intents,
            "pools": self.pools,
            "real_servers": self.real_servers,
            "incomplete": self.unsynced,
        }


#: model fields never printed (docs/operations.md): the VRRPv2 PASS password
SECRETS = frozenset({"auth_pass"})


def redacted(value: Any) -> Any:
    """``value`` with every secret field's value replaced, however deep it sits."""
    if isinstance(value, dict):
        return {
            k: "<hidden>" if k in SECRETS and v is not None else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


class _Resends:
    """Which components have re-sent everything our subscriptions cover: each answers our
    fence, subscribed last, once it has re-sent what the subscriptions before it cover."""

    def __init__(self, fence: str) -> None:
        self.fence = fence
        self.heard: set[str] = set()
        self.done: set[str] = set()

    def note(self, topic: str, body: dict[str, Any]) -> bool:
        """Take one event; True if it was a marker (not state)."""
        if topic.startswith("bus.synced."):
            marker = messages.Synced.decode(topic, body)
            if marker.fence == self.fence:
                self.done.add(marker.publisher)
            return True
        if topic.startswith("hb."):
            self.heard.add(topic.removeprefix("hb."))
        return False

    def waiting(self) -> list[str]:
        return sorted(self.heard - self.done)


async def collect(runtime: RuntimeDir, listen: float = LISTEN, settle: float = SETTLE) -> Snapshot:
    """Listen ``listen`` seconds, then up to ``settle`` more for the components heard that
    have not finished re-sending their state (named in ``Snapshot.unsynced`` if any never do)."""
    ctx = zmq.asyncio.Context()
    fence = topics.fence(secrets.token_hex(8))
    sub = Subscriber(ctx, runtime, ["bus.synced.*", *_TOPICS, fence])
    sub.start()
    snap = Snapshot()
    resends = _Resends(fence)
    start = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            left = start + listen - now
            if left <= 0:
                if not resends.waiting():
                    break
                left = start + listen + settle - now
                if left <= 0:
                    break
            try:
                batch = await asyncio.wait_for(sub.recv_batch(), left)
            except TimeoutError:
                continue
            for ev in batch:
                try:
                    if not resends.note(ev.topic, ev.body):
                        snap.add(ev.topic, ev.body, ev.env.pid)
                except MessageRejected as exc:
                    snap.rejected.append(exc.detail)
    finally:
        sub.close()
        ctx.term()
    snap.unsynced = resends.waiting()
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
    faults = [(n, snap.instances[n].get("faults") or []) for n in sorted(snap.instances)]
    faults = [(n, f) for n, f in faults if snap.instances[n]["state"] == "FAULT" and f]
    if faults:
        lines.append("")
        rows = [("INSTANCE", "FAULT")]
        rows += [(name, str(reason)) for name, reasons in faults for reason in reasons]
        lines += _table(rows)
    if snap.health:
        lines.append("")
        rows = [("CHECK", "OK", "REASON")]
        for name in sorted(snap.health):
            h = snap.health[name]
            rows.append((name, "yes" if h["ok"] else "NO", str(h.get("reason", ""))))
        lines += _table(rows)
    lines += _pool_lines(snap)
    lines.append("")
    rows = [("COMPONENT", "PID", "UPTIME", "LOOP LAG")]
    for name in sorted(snap.components):
        c = snap.components[name]
        rows.append((name, str(c["pid"]), f"{c['uptime']:.0f}s", f"{c.get('lag', 0) * 1000:.1f}ms"))
    lines += _table(rows)
    if snap.unsynced:
        lines += [
            "",
            f"incomplete: {', '.join(snap.unsynced)} did not finish re-sending its state "
            f"within {SETTLE:g} s (a busy or stuck component); what it holds may be missing",
        ]
    if snap.rejected:
        lines += ["", f"left out {len(snap.rejected)} malformed message(s):"]
        lines += [f"  {why}" for why in snap.rejected]
    return "\n".join(lines)


def _pool_lines(snap: Snapshot) -> list[str]:
    """Each virtual server's pool, then its real servers with every checker's last result."""
    if not snap.pools:
        return []
    rows: list[tuple[str, ...]] = [
        ("VIRTUAL SERVER", "QUORUM", "WEIGHT", "SORRY SERVER", "DATAPATH", "NOTE")
    ]
    for vs_id in sorted(snap.pools):
        p = snap.pools[vs_id]
        sorry = p.get("sorry_server") or "-"
        if p.get("sorry_server") and p.get("sorry_active"):
            sorry += " (in use)"
        note = "ha_suspend: checks paused" if p.get("ha_suspended") else ""
        rows.append(
            (
                vs_id,
                f"{'up' if p['quorum_up'] else 'DOWN'} ({p.get('quorum', 0)})",
                str(p.get("live_weight", 0)),
                sorry,
                _datapath_cell(snap.applied.get(f"lvs:{p.get('key')}")),
                note,
            )
        )
    lines = ["", *_table(rows), ""]
    rows = [("REAL SERVER", "STATE", "WEIGHT", "CHECKER", "LAST RESULT")]
    for rs_id in sorted(snap.real_servers):
        r = snap.real_servers[rs_id]
        in_pool = r.get("pool_weight")
        state = ("up" if r["alive"] else "DOWN") + ("" if in_pool is not None else ", out of pool")
        weight = f"{r.get('effective_weight', 0)}/{r.get('weight', 0)}"
        checkers = r.get("checkers") or [{}]
        for n, c in enumerate(checkers):
            rows.append(
                (
                    rs_id if n == 0 else "",
                    state if n == 0 else "",
                    weight if n == 0 else "",
                    _checker_cell(c),
                    _result_cell(c),
                )
            )
    return lines + _table(rows)


def _datapath_cell(applied: dict[str, Any] | None) -> str:
    """What netd installed for a virtual server (``net.applied.lvs:<key>``, docs/lvs.md)."""
    if applied is None:
        return "-"
    failures = applied.get("failures") or []
    if failures:
        return f"FAILED: {failures[0].get('reason', '')}"
    return f"{applied.get('backend') or 'kernel'}, {applied.get('items', 0)} server(s)"


def _checker_cell(c: dict[str, Any]) -> str:
    if not c:
        return "-"
    verdict = "no result yet" if not c.get("has_run") else ("up" if c.get("up") else "DOWN")
    return f"{c.get('kind', '?')} {verdict}"


def _result_cell(c: dict[str, Any]) -> str:
    if c.get("ok") is None:
        return ""
    return f"{'ok' if c['ok'] else 'failed'}: {c.get('reason', '')}"


def _priority_breakdown(name: str, inst: dict[str, Any]) -> list[str]:
    """``VI_1 priority 130 = base 150, track_script chk_web -20 (failed)``."""
    trackers = inst.get("trackers") or []
    if not trackers:
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
        if t.get("assumed"):
            seen += f": {t['assumed']}"  # vrrpd assumed it: "failed: stale"
        effect = "FAULT" if t.get("fault") else f"{t.get('delta', 0):+d}"
        parts.append(f"{t['tracker']} {effect} ({seen})")
    # The FAULT reasons have their own table below.
    return [f"  {name}: priority {inst['priority']} = {', '.join(parts)}"]


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
