"""What checkd publishes about virtual servers: topic names and bodies, pure.

keepalived's service ids (``[192.0.2.1]:tcp:80``, ``FWM 7``, ``[group]:0``) carry brackets and
spaces, which bus topics do not allow, so each becomes a *key* (docs/bus.md, "Real servers and
pools"):

======================  =====================================================
virtual server id       key
======================  =====================================================
``[192.0.2.1]:tcp:80``  ``192.0.2.1:tcp:80`` (``2001:db8::1:tcp:80`` for IPv6)
``FWM 7``               ``fwm:7``
``[web]:0``             ``group:web:0``
======================  =====================================================

and a real server's key is ``<vs key>/<address>:<proto>:<port>``. Topics:
``check.pool.<vs key>`` (the pool), ``check.rs.<vs key>/<rs key>`` (one real server and its
checkers) and ``health.vs:<vs key>`` (the quorum as a verdict a ``track_script`` can follow).
The ``check.`` root keeps them apart from ``health.*``, whose subscribers expect only verdicts.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from checkd.pool_messages import EXTERNAL, external_id
from checkd.pool_state import CheckerStatus, Member, PoolState, pool_weight, real_weight

# Keys are asked for on every probe result; a pool's ids change only with the configuration.
KEY_CACHE = 65536
_BAD = re.compile(r"[^A-Za-z0-9_.:@/+-]")
_SERVICE = re.compile(r"\[(?P<inner>[^\]]*)\]:(?P<rest>.*)")


@functools.lru_cache(maxsize=KEY_CACHE)
def vs_key(vs_id: str) -> str:
    """The topic-safe key of a virtual server id."""
    if vs_id.startswith("FWM "):
        return _safe(f"fwm:{vs_id[4:]}")
    m = _SERVICE.fullmatch(vs_id)
    if m is None:
        return _safe(vs_id)
    inner, rest = m["inner"], m["rest"]
    try:
        ipaddress.ip_address(inner)
    except ValueError:
        return _safe(f"group:{inner}:{rest}")
    return _safe(f"{inner}:{rest}")


@functools.lru_cache(maxsize=KEY_CACHE)
def rs_key(vs_id: str, rs_text: str) -> str:
    """``<vs key>/<address>:<proto>:<port>`` for a real server's ``[address]:proto:port``."""
    return f"{vs_key(vs_id)}/{_safe(rs_text.replace('[', '').replace(']', ''))}"


def _safe(text: str) -> str:
    return _BAD.sub("_", text)


def pool_topic(vs_id: str) -> str:
    return f"check.pool.{vs_key(vs_id)}"


def rs_topic(vs_id: str, rs_text: str) -> str:
    return f"check.rs.{rs_key(vs_id, rs_text)}"


def quorum_name(vs_id: str) -> str:
    """The ``vrrp_script`` name that follows this virtual server's quorum."""
    return f"vs:{vs_key(vs_id)}"


@dataclass(frozen=True, slots=True)
class LastResult:
    """A checker's latest attempt, for operators."""

    ok: bool
    reason: str
    at: float  # wall clock
    rc: int | None = None  # MISC_CHECK: the script's exit status (the SIGUSR1 dump shows it)


class LastResults(Mapping[str, LastResult]):
    """Every checker's latest attempt, kept as plain values in one dict per field and read as
    ``LastResult``.

    One is stored per result (12,000 a second in bench/checks.py). A dataclass instance per
    result would live a whole ``delay_loop``, be promoted to the oldest generation and bring
    full collections (tens of milliseconds each, schedule drift) round every few seconds. A
    tuple per result is untracked at its first young collection, but every tuple created is
    tracked until then, and each replaces one no longer tracked: its release takes the young
    generation's count down again, so the count stays put while the young generation fills
    with tuples, and young collections walked 18,000 of them at a time (5-14 ms of CPU each,
    bench/checks.py --diagnose). Here a result is four dict stores of a bool, a str, a float
    and an int or None, none of which the collector tracks: nothing new for it to walk.
    """

    def __init__(self) -> None:
        self._ok: dict[str, bool] = {}
        self._reason: dict[str, str] = {}
        self._at: dict[str, float] = {}
        self._rc: dict[str, int | None] = {}

    def set(self, cid: str, ok: bool, reason: str, at: float, rc: int | None = None) -> None:
        self._ok[cid] = ok
        self._reason[cid] = reason
        self._at[cid] = at
        self._rc[cid] = rc

    def ok_of(self, cid: str) -> bool | None:
        """The latest verdict alone, without building a ``LastResult``."""
        return self._ok.get(cid)

    def discard(self, cid: str) -> None:
        if self._ok.pop(cid, None) is not None:
            del self._reason[cid], self._at[cid], self._rc[cid]

    def __getitem__(self, cid: str) -> LastResult:
        return LastResult(self._ok[cid], self._reason[cid], self._at[cid], self._rc[cid])

    def __iter__(self) -> Iterator[str]:
        return iter(self._ok)

    def __len__(self) -> int:
        return len(self._ok)


def pool_body(state: PoolState, *, suspended: bool) -> dict[str, Any]:
    """``check.pool.<vs>``: the pool snapshot plus the virtual server's name and suspension."""
    return {
        **state.snapshot().as_dict(),
        "name": state.vs.name,
        "key": vs_key(state.vs.id),
        "ha_suspended": suspended,
    }


def rs_body(
    state: PoolState, member: Member, last: Mapping[str, LastResult], *, suspended: bool
) -> dict[str, Any]:
    """``check.rs.<vs>/<rs>``: one real server's verdict and its checkers' last results, the
    configured ones in their order, then its external checker once it has had a verdict."""
    checkers = [
        _checker_body(plan.id, plan.kind, member.checkers.get(plan.id), last)
        for plan in member.rs.checkers
    ]
    external = external_id(member.rs.id)
    status = member.checkers.get(external)
    if status is not None:
        checkers.append(_checker_body(external, EXTERNAL, status, last))
    return {
        "vs": state.vs.id,
        "rs": member.rs.id,
        "ip": member.rs.ip,
        "port": member.rs.port,
        "alive": member.alive,
        "weight": member.rs.weight,
        "effective_weight": real_weight(member.effective_weight),
        "pool_weight": pool_weight(member, state.sorry_active),
        "ha_suspended": suspended,
        "checkers": checkers,
    }


def _checker_body(
    cid: str, kind: str, status: CheckerStatus | None, last: Mapping[str, LastResult]
) -> dict[str, Any]:
    seen = last.get(cid)
    return {
        "id": cid,
        "kind": kind,
        "up": status.retry.is_up if status is not None else None,
        "has_run": status.retry.has_run if status is not None else False,
        "ok": None if seen is None else seen.ok,
        "reason": "" if seen is None else seen.reason,
        "at": None if seen is None else seen.at,
    }


def rs_change_key(body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an ``rs_body`` whose change is published at once; reasons and times ride
    along with it and with the periodic re-sends, so a server answering a little faster or
    slower each time does not cost a message per probe."""
    return {
        **{k: v for k, v in body.items() if k != "checkers"},
        "checkers": [
            {k: v for k, v in c.items() if k not in ("reason", "at")} for c in body["checkers"]
        ],
    }


def quorum_verdict(state: PoolState) -> dict[str, Any]:
    """``health.vs:<vs key>``: the quorum, in the shape of every other verdict."""
    vs = state.vs
    up = state.quorum_up
    live = state.live_weight
    if vs.quorum or vs.hysteresis:
        reason = f"quorum {'up' if up else 'down'}: weight {live}, quorum {vs.quorum}"
        if vs.hysteresis:
            reason += f" (hysteresis {vs.hysteresis})"
    else:
        reason = f"quorum {'up' if up else 'down'}: weight {live}"
    return {
        "name": quorum_name(vs.id),
        "ok": up,
        "kind": "pool",
        "reason": reason,
        "weight": 0,
        "reverse": False,
        "vs": vs.id,
    }
