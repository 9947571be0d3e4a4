"""Benchmark: what watched FILE_CHECKs cost checkd while their files do not change.

Run from the repository root:

    PYTHONPATH=. python bench/file_checks.py [--servers 1000] [--shared] [--warm 65]
        [--seconds 20]

One virtual server with ``--servers`` real servers, each with a FILE_CHECK on a file of its
own (``--shared``: all on one file), ``delay_loop 60``, in checkd's ``LvsService`` with a
recording publisher. After ``--warm`` seconds (past a whole ``delay_loop``, so a runner that
reads the files once a round is measured in its steady state too) it prints the CPU the
process used per wall second over ``--seconds``, and the bus messages sent meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.checkd.support

import core
from checkd.lvs_service import LvsService
from checkd.pool_actions import ActionRunner
from tests.checkd.support import FakePublisher


def config(directory: Path, servers: int, shared: bool) -> str:
    files = 1 if shared else servers
    for i in range(files):
        (directory / f"f{i}").write_text("1\n")
    tracked = "".join(f'track_file t{i} {{\n file "{directory}/f{i}"\n}}\n' for i in range(files))
    real_servers = "".join(
        f"real_server 192.0.2.{1 + i // 250} {1000 + i % 250} {{\n weight 10\n"
        f" FILE_CHECK {{\n  track_file t{0 if shared else i}\n  weight 2\n }}\n}}\n"
        for i in range(servers)
    )
    return (
        f"{tracked}virtual_server 203.0.113.1 80 {{\n protocol TCP\n delay_loop 60\n"
        f"{real_servers}}}\n"
    )


async def measure(text: str, warm: float, seconds: float) -> tuple[float, int]:
    publisher = FakePublisher()
    service = LvsService(publisher, actions=ActionRunner())
    assert service.apply_model(core.to_wire(core.loads(text, script_env=None).config), 1)
    service.start()
    try:
        await asyncio.sleep(warm)
        sent = len(publisher.sent)
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    finally:
        await service.stop()
    return cpu / wall, len(publisher.sent) - sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--shared", action="store_true")
    parser.add_argument("--warm", type=float, default=65.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="bench-file-checks-") as directory:
        text = config(Path(directory), args.servers, args.shared)
        share, sent = asyncio.run(measure(text, args.warm, args.seconds))
    print(
        f"servers={args.servers} shared={args.shared} cpu={share * 100:.2f}% "
        f"bus_messages={sent} over {args.seconds:g} s"
    )


if __name__ == "__main__":
    main()
