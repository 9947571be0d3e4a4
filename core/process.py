"""core's process: load the configuration, publish it, reload it on HUP.

core is the single writer of the configuration. It publishes ``config.current`` as retained
state (late joiners get it at once, everyone gets it again periodically) carrying a generation
number and a content hash, so a component can tell "new config" from "same config again".
A reload that fails validation keeps the running config and publishes ``config.rejected``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from pathlib import Path
from typing import Any

import structlog

from bus import Component, messages
from core import LoadResult, config_hash, diff, format_problem, load, render, to_wire
from core.generation import GenerationStore

log = structlog.get_logger(__name__)

CURRENT = "config.current"
REJECTED = "config.rejected"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--use-file", type=Path, required=True, help="keepalived.conf")
    parser.add_argument("-i", "--config-id", help="id for @conditional lines")
    parser.add_argument(
        "-d",
        "--dump-conf",
        action="store_true",
        help="log the configuration as parsed, at start and at each reload (keepalived's -d)",
    )
    parser.add_argument(
        "-e",
        "--all-config",
        action="store_true",
        help="a missing included file is an error, as with includet (keepalived's -e)",
    )


class ConfigOwner:
    """Holds the running config and decides what each (re)load publishes."""

    def __init__(
        self,
        comp: Component,
        path: Path,
        config_id: str | None,
        *,
        dump: bool = False,
        strict_includes: bool = False,
    ) -> None:
        self.comp = comp
        self.path = path
        self.config_id = config_id
        self.dump = dump
        self.strict_includes = strict_includes
        self.store = GenerationStore(comp.runtime.path / "core.generation")
        self.current: LoadResult | None = None
        self.hash: str | None = None

    def load(self, *, reason: str) -> bool:
        result = load(self.path, config_id=self.config_id, strict_includes=self.strict_includes)
        blocking = [p for p in result.problems if p.severity in ("fatal", "error")]
        for problem in result.problems:
            log.log(
                _level(problem.severity),
                "config.problem",
                detail=format_problem(problem),
                file=problem.file,
                line=problem.line,
                severity=problem.severity,
            )
        if self.current is not None and result.exit_code == 4:
            self._reject(result, reason)
            return False
        if self.current is not None and blocking:
            self._reject(result, reason)
            return False
        new_hash = config_hash(result.config)
        generation = self.store.next(new_hash)
        changes: dict[str, Any] = {}
        if self.current is not None:
            changes = _plain(dataclasses.asdict(diff(self.current.config, result.config)))
        self.current, self.hash = result, new_hash
        current = messages.ConfigCurrent(
            generation=generation,
            hash=new_hash,
            path=str(self.path),
            model=to_wire(result.config, omit_defaults=True),  # 5x smaller; from_wire fills in
            diff=changes,
            reason=reason,
        )
        self.comp.publisher.retain(CURRENT, current.encode())
        log.info(
            "config.current",
            generation=generation,
            hash=new_hash[:12],
            reason=reason,
            problems=len(result.problems),
        )
        if self.dump:
            _dump(result, generation)
        return True

    def _reject(self, result: LoadResult, reason: str) -> None:
        problems = [format_problem(p) for p in result.problems]
        gen = self.store.generation
        log.error("config.rejected", kept_generation=gen, reason=reason, problems=len(problems))
        self.comp.publisher.publish(
            REJECTED,
            messages.ConfigRejected(
                kept_generation=gen, path=str(self.path), problems=tuple(problems), reason=reason
            ).encode(),
        )


def _dump(result: LoadResult, generation: int) -> None:
    """keepalived's -d: the configuration as understood, one log line per line of it, in
    keepalived's syntax (``core.render``: includes, conditionals and ``$`` definitions
    resolved; values left at their defaults are not repeated)."""
    lines = render(result.config).splitlines()
    for number, line in enumerate(lines, 1):
        log.info("config.dump", generation=generation, line=number, of=len(lines), text=line)


def _plain(value: Any) -> Any:
    """Tuples from asdict() as lists, so the diff is plain msgpack data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _level(severity: str) -> int:
    return {"fatal": logging.ERROR, "error": logging.ERROR, "warning": logging.WARNING}.get(
        severity, logging.INFO
    )


async def serve(comp: Component) -> None:
    args = comp.args
    owner = ConfigOwner(
        comp,
        args.use_file,
        args.config_id,
        dump=args.dump_conf,
        strict_includes=args.all_config,
    )
    owner.load(reason="start")
    reloads: asyncio.Queue[str] = asyncio.Queue()
    comp.on_signal(signal.SIGHUP, lambda: reloads.put_nowait("SIGHUP"))
    requests = comp.subscribe("config.reload")
    reader = asyncio.create_task(_reload_requests(requests, reloads))
    try:
        while True:
            owner.load(reason=await reloads.get())
    finally:
        reader.cancel()


async def _reload_requests(sub: Any, reloads: asyncio.Queue[str]) -> None:
    """``pykeepalivedctl reload`` publishes ``config.reload``; treat it as a SIGHUP."""
    while True:
        for event in await sub.recv_batch():
            reloads.put_nowait(f"request from {event.env.src}")
