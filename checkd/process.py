"""checkd's process: follows ``config.current`` and publishes verdicts and pools.

A new config hash is planned twice: the tracked checks (``checkd.plan``) are reconciled with
the running ones (``checkd.supervisor``), and the virtual servers (``checkd.lvs_service``)
with the running pools. A model that cannot be read is logged and the last good checks and
pools keep running. ``net.link.*`` tells ``ha_suspend`` which addresses this host has
(``checkd.local_addresses``); ``health.rs:*`` brings real-server verdicts from checkers outside
checkd (``checkd.external``). The first configuration's scripts start from the verdicts vrrpd
still holds, if it holds any: checkd was restarted alone (``checkd.resume``).
SIGUSR1 logs every check with its last verdict (``checkd.dump``) and every pool
(``checkd.dump.pool``), and writes keepalived's ``keepalived_check.data`` when there are
virtual servers (``checkd.dumps``, in ``$TMPDIR`` or ``/tmp`` like vrrpd's dump files).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import structlog

from bus import Component, MessageRejected, dumpfiles, messages
from bus.envelope import Event
from bus.priorities import PriorityKeeper, ProcessPriorities
from checkd.dumps import FILE_NAME
from checkd.errors import PlanError
from checkd.external import PATTERN as EXTERNAL_VERDICTS
from checkd.external import PREFIX as EXTERNAL_PREFIX
from checkd.helper_policy import POLICIES
from checkd.lvs_service import LvsService
from checkd.plan import normalize, plan_from_wire
from checkd.pool_actions import ActionRunner
from checkd.resume import listen
from checkd.supervisor import CheckSet

log = structlog.get_logger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-vrrpd",
        action="store_true",
        help="no vrrpd runs beside this checkd (pykeepalived -C): start the readers of the "
        "notify FIFOs vrrpd would otherwise start (docs/operations.md, Notify FIFOs)",
    )
    parser.add_argument(
        "--connect-helper",
        choices=sorted(POLICIES),
        default="auto",
        help="the TCP_CHECK connect helper process: forked when the schedule slips (auto), "
        "from the start (on) or never (off) (docs/checkers.md, Scheduling)",
    )


async def serve(comp: Component) -> None:
    events = comp.subscribe("config.current", "net.link.*", EXTERNAL_VERDICTS)
    # Verdicts are re-sent on a timer: vrrpd counts one nobody re-sends as failed.
    checks = CheckSet(comp.publisher.retain, comp.publisher.forget)
    lvs = LvsService(
        comp.publisher,
        actions=ActionRunner(with_vrrpd=not comp.args.no_vrrpd),
        helper=POLICIES[comp.args.connect_helper],
    )

    def dump() -> None:
        for entry in checks.snapshot():
            log.info("checkd.dump", **entry)
        for pool in lvs.snapshot():
            log.info("checkd.dump.pool", **pool)
        if lvs.refused.counts or lvs.unknown.counts:
            log.info(
                "checkd.dump.external",
                refused=lvs.refused.summary(),
                unknown=lvs.unknown.summary(),
            )
        text = lvs.dump_text()
        if text is None:
            return
        try:
            path = dumpfiles.write(FILE_NAME, text)
        except OSError as exc:
            log.error("checkd.dump.failed", file=FILE_NAME, reason=str(exc))
            return
        log.info("checkd.dump.written", file=str(path), virtual_servers=len(lvs.runner.pools))

    comp.on_signal(signal.SIGUSR1, dump)
    seen: str | None = None
    priorities = PriorityKeeper("checkd")
    # Listened for while the configuration comes: a cold start does not sit out the window.
    held = None if comp.args.no_vrrpd else asyncio.create_task(listen(comp), name="checkd.resume")
    lvs.start()
    try:
        while True:
            for event in await events.recv_batch():
                if event.topic.startswith(EXTERNAL_PREFIX):
                    lvs.external(event)
                elif event.topic != "config.current":
                    lvs.link(event.topic, event.body)
                elif event.body.get("hash") != seen:
                    if held is not None:
                        checks.resume(await held)
                        held = None
                    seen = await _config(event, checks, lvs, priorities) or seen
    finally:
        if held is not None:
            held.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await held
        await lvs.stop()
        await checks.stop_all()


async def _config(
    event: Event, checks: CheckSet, lvs: LvsService, priorities: PriorityKeeper
) -> str | None:
    """Apply one new configuration; the hash it applied, or None when it was rejected."""
    try:
        config = messages.ConfigCurrent.decode(event.topic, event.body)
    except MessageRejected as exc:
        log.error("checkd.config.rejected", error=str(exc))
        return None
    generation = config.generation
    try:
        plan = plan_from_wire(normalize(config.model))
        wanted = ProcessPriorities.from_global_defs(
            config.model.get("global_defs") or {}, "checker"
        )
    except (PlanError, ValueError) as exc:
        # Keep running the last good checks: a bad publish must not stop them.
        log.error("checkd.config.rejected", generation=generation, error=str(exc))
        return None
    seen: str | None = config.hash
    for name in plan.unused:
        log.warning("checkd.config.unused", check=name)
    for name in plan.external:
        log.info("checkd.config.external", check=name, topic=f"health.{name}")
    for problem in plan.problems:
        log.error("checkd.config.problem", problem=problem)
    priorities.apply(wanted)
    await checks.apply(plan)
    lvs.apply_model(dict(config.model), generation)
    log.info("checkd.config.applied", generation=generation, hash=seen, checks=checks.names)
    return seen
