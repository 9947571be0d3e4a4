"""Bus hop latency and throughput through the real broker (issue #2's target: p99 < 1 ms at
10,000 msgs/s).

Three processes, as in production: the broker (``python -m bus``), one publisher (this
process, the project's asyncio ``Publisher``) and one subscriber (a child process running the
project's ``Subscriber``). Latency is one-way, publisher -> broker -> subscriber, measured with
CLOCK_MONOTONIC, which all processes on the host share.

    .venv/bin/python bench/bus_latency.py [--rate 10000] [--seconds 3] [--quick] [--json FILE]

keepalived has no bus, so there is nothing of keepalived's to run beside it; the figures are
printed as ratios to the target instead.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zmq.asyncio
from result_file import write_figures

from bus import Publisher, RuntimeDir, Subscriber
from tests.daemon import running_bus, runtime_dir

TARGET_P99_MS = 1.0


def _subscriber(path: str, expected: int, ready: Event, out: Queue[dict[str, Any]]) -> None:
    async def run() -> None:
        ctx = zmq.asyncio.Context()
        sub = Subscriber(ctx, RuntimeDir(Path(path)), ["bench.*"])
        sub.start()
        lat: list[float] = []
        got = 0
        first = last = 0.0
        ready.set()
        while got < expected:
            try:
                batch = await asyncio.wait_for(sub.recv_batch(), 5)
            except TimeoutError:
                break
            now = time.monotonic()
            for ev in batch:
                if ev.topic == "bench.end":
                    got = expected
                    break
                if not first:
                    first = now
                last = now
                got += 1
                lat.append(now - ev.body["t"])
        out.put(
            {"lat": lat, "received": len(lat), "missed": sub.stats.missed, "span": last - first}
        )
        sub.close()
        ctx.term()

    asyncio.run(run())


async def _publish(rt: RuntimeDir, count: int, rate: float | None) -> float:
    ctx = zmq.asyncio.Context()
    pub = Publisher(ctx, rt, "bench")
    pub.start()
    assert await pub.wait_for_subscriber("bench.x", 5), "subscriber never connected"
    start = time.monotonic()
    for i in range(count):
        if rate:
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
        pub.publish("bench.x", {"i": i, "t": time.monotonic()})
    elapsed = time.monotonic() - start
    await asyncio.sleep(0.2)
    pub.publish("bench.end", {"t": time.monotonic()})
    await pub.close()
    ctx.term()
    return elapsed


def run(rt: RuntimeDir, count: int, rate: float | None) -> dict[str, float]:
    ready = mp.Event()
    out: Queue[dict[str, Any]] = mp.Queue()
    proc = mp.Process(target=_subscriber, args=(str(rt.path), count, ready, out))
    proc.start()
    ready.wait(10)
    sent_for = asyncio.run(_publish(rt, count, rate))
    result = out.get(timeout=60)
    proc.join(10)
    lat = sorted(result["lat"])
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    return {
        "sent": count,
        "received": result["received"],
        "missed": result["missed"],
        "send_rate": count / sent_for,
        "recv_rate": result["received"] / max(result["span"], 1e-9),
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": lat[-1] * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--burst", type=int, default=100_000, help="messages for the throughput run")
    ap.add_argument("--quick", action="store_true", help="1 s paced, a burst of 20,000")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.burst = 1.0, 20_000
    mp.set_start_method("spawn")
    with runtime_dir() as rt, running_bus(rt):
        paced = run(rt, int(args.rate * args.seconds), args.rate)
        burst = run(rt, args.burst, None)
    print(
        f"paced at {args.rate:.0f} msg/s for {args.seconds:.0f} s: "
        f"p50 {paced['p50_ms']:.3f} ms, p99 {paced['p99_ms']:.3f} ms, max "
        f"{paced['max_ms']:.3f} ms, lost {paced['sent'] - paced['received']:.0f}"
    )
    print(f"  p99 / target ({TARGET_P99_MS} ms) = {paced['p99_ms'] / TARGET_P99_MS:.2f}")
    print(
        f"burst of {args.burst}: sent {burst['send_rate']:.0f} msg/s, received "
        f"{burst['recv_rate']:.0f} msg/s, lost {burst['sent'] - burst['received']:.0f} "
        f"(seq gaps counted {burst['missed']:.0f})"
    )
    write_figures(
        args.json,
        {"rate": args.rate, "seconds": args.seconds, "target_p99_ms": TARGET_P99_MS,
         "paced": paced, "burst": burst},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
