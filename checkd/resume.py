"""A restarted checkd starts its ``vrrp_script``s from the verdicts vrrpd still holds.

keepalived applies ``init_fail`` when the daemon starts: its scripts run in the same process
as its instances, so nothing restarts them alone. checkd is restarted alone (the watchdog,
``kill -9``, a crash) while vrrpd keeps running and keeps checkd's last verdicts. Starting an
``init_fail`` script failed then would drop the instance's priority, or put it in FAULT,
until ``rise`` successes later, for a script that was passing: a needless failover. And any
script would restart its rise/fall count, so a failing one would come back after a single
success and a passing one would fail on a single failure.

So at its start checkd asks vrrpd for what it holds: every ``vrrp.state.*`` (retained by
vrrpd, re-sent at once to a new subscriber) lists its trackers with their ``status``, and
``assumed`` when vrrpd did not hear that status from checkd (stale, never reported). A script
with a reported status starts from it, as a reload's changed script does (``checkd.supervisor``):
counted as passing or failing in full, published at once (``reason`` ``resumed``), then run.
A script vrrpd holds nothing fresh for starts as keepalived's does (failed with ``init_fail``).
A ``vrrp_track_file`` vrrpd holds a value for is restarted the same way, and so its
``init_file`` is not applied again: ``overwrite`` must not clobber a value an operator wrote
since checkd first started, as a reload does not (``checkd.files``).

On a first start of the whole node vrrpd holds nothing, for it only takes these checks'
verdicts from checkd (``vrrpd.verdicts``): ``init_fail`` keeps keepalived's meaning. checkd
waits for vrrpd's answer to a fence (docs/bus.md, "Delivery") at most :data:`WINDOW` after it
starts; when vrrpd does not answer (not running, restarting too) nothing is resumed.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping

import structlog

from bus import Component, MessageRejected, Subscriber, messages, topics
from checkd.files import judge
from checkd.plan import FileSpec, ScriptSpec, Spec
from checkd.verdict import Verdict

__all__ = ["REASON", "WINDOW", "held_by_vrrpd", "listen", "seed"]

log = structlog.get_logger(__name__)

#: how long after its start checkd waits for vrrpd's verdicts (vrrpd answers in milliseconds)
WINDOW = 1.0
#: the ``reason`` of a verdict resumed from vrrpd's, until the script's first run
REASON = "resumed"
#: how ``vrrp.state``'s ``trackers`` name a ``vrrp_script`` (docs/bus.md: ``track_script NAME``)
SCRIPT_TRACKER = "track_script "
#: ... and a ``vrrp_track_file`` (its status is the file's value)
FILE_TRACKER = "track_file "
VRRPD = "vrrpd"


def held_by_vrrpd(reports: Iterable[messages.StateReport]) -> dict[str, bool | int]:
    """Script name -> the status vrrpd counts for it as checkd last reported it; track_file
    name -> the file's value.

    Statuses vrrpd assumed (``assumed``: stale, never reported) are not checkd's word and are
    left out, as is a script whose instances disagree (a report caught mid-change).
    """
    held: dict[str, bool | int] = {}
    disagree: set[str] = set()
    for report in reports:
        for share in report.trackers:
            status = share.status
            if share.assumed is not None or status is None:
                continue  # not checkd's word, or no report yet
            if share.tracker.startswith(SCRIPT_TRACKER) and isinstance(status, bool):
                name = share.tracker.removeprefix(SCRIPT_TRACKER)
            elif share.tracker.startswith(FILE_TRACKER) and type(status) is int:
                name = share.tracker.removeprefix(FILE_TRACKER)
            else:
                continue
            if held.setdefault(name, status) != status:
                disagree.add(name)
    return {name: ok for name, ok in held.items() if name not in disagree}


def seed(spec: Spec, held: Mapping[str, bool | int]) -> Verdict | None:
    """The verdict a script or track_file starts from (as a reload's ``previous``), or None
    to start as configured."""
    status = held.get(spec.name)
    if isinstance(spec, ScriptSpec) and isinstance(status, bool):
        return Verdict(
            name=spec.name,
            kind="script",
            ok=status,
            reason=REASON,
            weight=spec.weight,
            reverse=spec.reverse,
        )
    if isinstance(spec, FileSpec) and type(status) is int:
        return Verdict(
            name=spec.name,
            kind="file",
            ok=judge(status, spec.weight, spec.reverse),
            reason=REASON,
            weight=spec.weight,
            reverse=spec.reverse,
            value=status,
        )
    return None


async def listen(comp: Component, window: float = WINDOW) -> dict[str, bool | int]:
    """What vrrpd holds (:func:`held_by_vrrpd`), once it has re-sent every ``vrrp.state``;
    nothing if it does not answer within ``window``."""
    fence = topics.fence(secrets.token_hex(8))
    answer = topics.synced(VRRPD)
    # The fence last: vrrpd answers it after re-sending what the subscriptions before it cover.
    sub = Subscriber(comp.ctx, comp.runtime, [answer, messages.StateReport.PATTERN, fence])
    sub.start()
    reports: dict[str, messages.StateReport] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + window
    try:
        while (left := deadline - loop.time()) > 0:
            try:
                batch = await asyncio.wait_for(sub.recv_batch(), left)
            except TimeoutError:
                break
            for event in batch:
                try:
                    if event.topic == answer:
                        if messages.Synced.decode(event.topic, event.body).fence == fence:
                            held = held_by_vrrpd(reports.values())
                            log.info("checkd.resume.held", checks=held)
                            return held
                    else:
                        reports[event.topic] = messages.StateReport.decode(event.topic, event.body)
                except MessageRejected as exc:
                    log.warning("checkd.resume.refused", topic=event.topic, error=str(exc))
    finally:
        sub.close()
    log.info("checkd.resume.unanswered", window=window, detail="vrrpd did not answer; no resume")
    return {}
