"""Notify scripts, one ordered queue per instance, and the notify FIFO's line format.

keepalived forks notify scripts and never waits, so a slow ``notify_backup`` can still be
running when ``notify_master`` starts, and their order is not guaranteed. Here each instance
has one queue: its scripts run strictly in transition order, never two at once, each bounded
by a timeout (its process group is killed after it) and each outcome is logged.

Scripts go through the ground-floor script runner (``scripts``), as checkd's vrrp_scripts do:
split like keepalived, as ``script_user`` or the script's own user, refused under
``enable_script_security`` when their path is unsafe, stdin on /dev/null, in their own process
group. The runner logs under vrrpd's name (``vrrpd.script.timeout``, ``vrrpd.script.kill``).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from mail.queues import KeyedQueues
from scripts import ScriptRefused, ScriptSpec, prepare, run_once, split_command

log = structlog.get_logger(__name__)

COMPONENT = "vrrpd"

NOTIFY_TIMEOUT = 30.0
STOP_TIMEOUT = 1.0  # keepalived gives STOP-time scripts one second

Scripts = Mapping[str, ScriptSpec]


@dataclass(frozen=True, slots=True)
class Job:
    instance: str
    kind: str  # notify_master, notify, ...
    spec: ScriptSpec
    timeout: float

    @property
    def argv(self) -> tuple[str, ...]:
        return tuple(split_command(self.spec.command))


def _with_args(spec: ScriptSpec, *args: str) -> ScriptSpec:
    return dataclasses.replace(spec, command=" ".join([spec.command, *map(shlex.quote, args)]))


def jobs_for(
    instance: str, scripts: Scripts, state: str, priority: int, scope: str = "INSTANCE"
) -> list[Job]:
    """The per-state script, then the generic one with keepalived's four extra arguments.

    ``scope`` is ``INSTANCE`` or, for a sync group's own scripts, ``GROUP`` (priority 0).
    """
    jobs: list[Job] = []
    timeout = STOP_TIMEOUT if state == "STOP" else NOTIFY_TIMEOUT
    specific = scripts.get(f"notify_{state.lower()}")
    if specific:
        jobs.append(Job(instance, f"notify_{state.lower()}", specific, timeout))
    generic = scripts.get("notify")
    if generic:
        spec = _with_args(generic, scope, instance, state, str(priority))
        jobs.append(Job(instance, "notify", spec, timeout))
    return jobs


def rx_lower_jobs(instance: str, scripts: Scripts) -> list[Job]:
    """``notify_master_rx_lower_pri``: a MASTER heard a lower-priority advert (no extra args)."""
    spec = scripts.get("notify_master_rx_lower_pri")
    if not spec:
        return []
    return [Job(instance, "notify_master_rx_lower_pri", spec, NOTIFY_TIMEOUT)]


def fifo_line(instance: str, state: str, priority: int) -> str:
    return f'INSTANCE "{instance}" {state} {priority}\n'


class NotifyQueues(KeyedQueues[Job]):
    """One ordered queue of notify scripts per instance (or sync group)."""

    def __init__(self) -> None:
        super().__init__("notify", run_job)

    def submit(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.put(job.instance, job)


async def run_job(job: Job) -> None:
    command = job.spec.command
    try:
        prepared = prepare(job.spec)
    except (ScriptRefused, OSError) as exc:
        log.error(
            "vrrpd.notify.refused",
            instance=job.instance,
            script=job.kind,
            command=command,
            reason=str(exc),
        )
        return
    for warning in prepared.warnings:
        log.warning("vrrpd.notify.insecure", instance=job.instance, script=job.kind, detail=warning)
    result = await run_once(
        prepared, job.timeout, component=COMPONENT, name=f"{job.instance}:{job.kind}"
    )
    if result.timed_out:
        log.error(
            "vrrpd.notify.timeout",
            instance=job.instance,
            script=job.kind,
            command=command,
            timeout=job.timeout,
        )
        return
    log.info(
        "vrrpd.notify.done",
        instance=job.instance,
        script=job.kind,
        rc=result.rc,
        duration=round(result.duration, 3),
        command=command,
        user=prepared.identity.user,
    )
