"""checkd's LVS side in the daemon: from ``config.current`` and ``net.link.*`` to live pools.

Each new configuration is read with core's own validator (``core.from_wire``), planned
(``checkd.checkplan.build_plan``), armed (``checkd.attempts.arm``) and handed to the
``PoolRunner``, which keeps unchanged real servers' state across the reload. A model that
cannot be read or planned is logged and the running pools carry on untouched. ``dump_text``
is the SIGUSR1 ``keepalived_check.data`` (``checkd.dumps``), for which the service also
remembers what the last reload kept. ``external`` takes the ``health.rs:*`` verdicts of checkers
outside checkd (``checkd.external``): refused ones and ones for a real server the configuration
does not have are logged once per topic and counted, until the next configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

import scripts
from bus.envelope import Event
from checkd.attempts import Armed, arm
from checkd.checker_state import BOOTSTRAP_DELAY
from checkd.checkers import Pinger
from checkd.checkplan import build_plan
from checkd.dumps import DumpContext, Kept, PoolDump, data_text, kept_by_reload
from checkd.errors import CheckdError
from checkd.external import ExternalRefused, Noted, read_report
from checkd.helper_policy import DEFAULT_POLICY, HelperPolicy
from checkd.local_addresses import LocalAddresses
from checkd.lvs_runner import PoolRunner, Retainer
from checkd.pool_actions import ActionRunner
from checkd.pool_topics import LastResult
from core import WireFormatError, from_wire
from core.model import Config

log = structlog.get_logger(__name__)

# From this many checkers on, the configuration is moved out of the garbage collector's reach.
FREEZE_AT = 1000


class LvsService:
    def __init__(
        self,
        publisher: Retainer,
        *,
        actions: ActionRunner | None = None,
        helper: HelperPolicy = DEFAULT_POLICY,
    ) -> None:
        self.actions = actions or ActionRunner()
        self.runner = PoolRunner(publisher, self.actions, helper=helper)
        self.runner.on_first_round = self._first_round_done
        self.pinger = Pinger()
        self._local = LocalAddresses()
        self._task: asyncio.Task[None] | None = None
        self._refreeze: asyncio.TimerHandle | None = None
        # for the dump: the last applied configuration's context and what its reload kept
        self._context = DumpContext(ids=script_ids)
        self._kept = Kept()
        self.refused = Noted()  # external verdicts refused, by topic
        self.unknown = Noted()  # external verdicts for no configured real server, by topic

    def start(self) -> None:
        self._task = asyncio.create_task(self.runner.run(), name="checkd.lvs")

    def apply_model(self, model: Mapping[str, Any], generation: object) -> bool:
        """Apply a published model; False (and the old pools keep running) when it is bad."""
        try:
            config = from_wire(dict(model))
            plan = build_plan(config, hostname=socket.gethostname())
            armed = arm(config, plan, self.pinger)
        except (WireFormatError, CheckdError) as exc:
            log.error("checkd.lvs.rejected", generation=generation, error=str(exc))
            return False
        for warning in plan.warnings:
            log.warning("checkd.lvs.warning", detail=warning)
        for vs in plan.virtual_servers:
            for warning in vs.warnings:
                log.warning("checkd.lvs.warning", vs=vs.id, detail=warning)
        self.actions.configure(config)
        # what was unknown may exist now: say it again if it is still wrong
        self.refused.clear()
        self.unknown.clear()
        before = dict(self.runner.pools)
        self.runner.apply(plan, armed)
        self._kept = kept_by_reload(before, self.runner.pools)
        self._context = dump_context(config, plan.router_id, self.runner.last)
        del before
        if self._refreeze is not None:
            self._refreeze.cancel()
            self._refreeze = None
        if len(armed) >= FREEZE_AT:
            freeze_heap()
            self._refreeze = _after_first_round(armed.values())
        if plan.virtual_servers:
            log.info(
                "checkd.lvs.applied",
                generation=generation,
                virtual_servers=len(plan.virtual_servers),
                checkers=len(armed),
            )
        return True

    def _first_round_done(self) -> None:
        """Every checker of a big configuration has had its first result: freeze what that
        round built now, before a young collection walks it.

        Each first result replaces its member (and its status, retry state, mapping) with a
        new one and frees the old, frozen one; CPython counts a freed object against the
        allocations that trigger a young collection, so a round of replacements leaves the
        count near zero while tens of thousands of new objects pile up in the young
        generation, and the collection that finally comes walks them all (a 20-60 ms pause
        with 12,000 checkers, bench/checks.py --diagnose). The timer of
        ``_after_first_round`` stays the fallback for checkers that never run (``ha_suspend``)."""
        if self._refreeze is not None:
            self._refreeze.cancel()
            self._refreeze = None
            gc.freeze()

    def dump_text(self) -> str | None:
        """keepalived_check.data, or None without virtual servers (keepalived then runs no
        checker process, so it writes no such file)."""
        if not self.runner.pools:
            return None
        pools = [
            PoolDump(state, self.runner.suspended(vs_id), self._kept)
            for vs_id, state in self.runner.pools.items()
        ]
        return data_text(pools, self._context)

    def link(self, topic: str, body: Mapping[str, Any]) -> None:
        """One ``net.link.*`` report: the addresses this host has, for ``ha_suspend``."""
        held = self._local.update(topic, body)
        if held is not None:
            self.runner.set_held(held)

    def external(self, event: Event) -> None:
        """One ``health.rs:<vs>/<rs>`` verdict from a checker outside checkd."""
        try:
            report = read_report(event.topic, event.body)
        except ExternalRefused as exc:
            if self.refused.first(event.topic):
                log.warning(
                    "checkd.external.refused",
                    topic=event.topic,
                    src=event.env.src,
                    pid=event.env.pid,
                    reason=str(exc),
                )
            return
        if not self.runner.external(report, self.runner.clock()) and self.unknown.first(
            event.topic
        ):
            log.warning(
                "checkd.external.unknown",
                topic=event.topic,
                src=event.env.src,
                pid=event.env.pid,
                reason="no such real server in the configuration",
            )

    def snapshot(self) -> list[dict[str, Any]]:
        """Every pool as published (what SIGUSR1 logs)."""
        return [
            {"vs": vs_id, **state.snapshot().as_dict()}
            for vs_id, state in self.runner.pools.items()
        ]

    async def stop(self) -> None:
        if self._refreeze is not None:
            self._refreeze.cancel()
            self._refreeze = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.runner.stop()
        # the shared ICMP sockets and their readers on this loop (PING_CHECK), gone with it
        self.pinger.close()
        self.runner.stop_pools()
        await self.actions.stop()


def _after_first_round(armed: Iterable[Armed]) -> asyncio.TimerHandle | None:
    """``gc.freeze`` again once every checker must have had its first result by the clock,
    for a round the runner cannot see end (``_first_round_done``: a suspended virtual
    server's checkers never run). That round rebuilds each pool member and records each
    result, tens of thousands of objects that then live until the next change; left in the
    collector's reach they make each collection that walks them a pause of tens of
    milliseconds (bench/checks.py's drift). Garbage frozen with them is collected at the next
    reload (``freeze_heap``)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None  # applied outside the daemon's loop (tests): nothing runs the checkers
    first_round = max(
        (max(a.plan.settings.warmup, a.plan.settings.delay_loop) + a.bound for a in armed),
        default=0.0,
    )
    return loop.call_later(BOOTSTRAP_DELAY + first_round, gc.freeze)


def freeze_heap() -> None:
    """Take what a big configuration allocated (its model, plan, pools: hundreds of thousands
    of objects that live until the next reload) out of the cyclic collector's full passes,
    which would otherwise walk all of them every few hundred probes and delay every checker
    due meanwhile (bench/checks.py's drift). The previous configuration is unfrozen and
    collected first, so a reload leaks nothing."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def dump_context(config: Config, router_id: str, last: Mapping[str, LastResult]) -> DumpContext:
    su = config.global_defs.script_user
    return DumpContext(
        ids=script_ids,
        router_id=router_id,
        last=last,
        track_files={tf.name: tf for tf in config.track_files},
        script_user=(su.user, su.group) if su is not None else None,
        global_defs=config.global_defs,
        hostname=socket.gethostname(),
    )


def script_ids(user: str | None, group: str | None) -> tuple[int, int]:
    """The uid/gid a script runs as; a user that does not exist falls back to the default
    script user, as keepalived does (the script itself is refused and says so)."""
    try:
        who = scripts.resolve_identity(user, group)
    except scripts.ScriptRefused:
        who = scripts.resolve_identity(None, None)
    return who.uid, who.gid
