"""One-shot bus access for the CLI: tail a stream, publish one event."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import zmq
import zmq.asyncio

from bus import Publisher, RuntimeDir, Subscriber
from bus.envelope import Event

# How long a one-shot publisher waits for the broker to hand it a matching subscription.
CONNECT_TIMEOUT = 1.0


class NoBusError(RuntimeError):
    """No broker is running in the runtime directory."""


def require_bus(runtime: RuntimeDir) -> None:
    if not runtime.is_locked("bus"):
        raise NoBusError(
            f"no bus is running in {runtime.path} (start pykeepalived, or `python -m bus "
            f"--runtime-dir {runtime.path}`)"
        )


async def tail(
    runtime: RuntimeDir,
    patterns: Sequence[str],
    emit: Callable[[Event], None],
    *,
    count: int | None = None,
) -> None:
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, runtime, patterns)
    sub.start()
    seen = 0
    try:
        while count is None or seen < count:
            for event in await sub.recv_batch():
                emit(event)
                seen += 1
                if count is not None and seen >= count:
                    break
    finally:
        sub.close()
        ctx.term()


async def publish(
    runtime: RuntimeDir, topic: str, body: dict[str, Any], *, src: str, err: TextIO = sys.stderr
) -> bool:
    """Publish one event; True when a subscriber for it was connected."""
    ctx = zmq.asyncio.Context()
    pub = Publisher(ctx, runtime, src)
    pub.start()
    try:
        delivered = await pub.wait_for_subscriber(topic, CONNECT_TIMEOUT)
        pub.publish(topic, body)
        if not delivered:
            print(f"note: nobody is subscribed to {topic}; the event was sent to no one", file=err)
        return delivered
    finally:
        await pub.close()
        ctx.term()


async def reload(runtime: RuntimeDir, *, src: str, timeout: float = 10.0) -> Event | None:
    """Ask core to reload; the ``config.current`` or ``config.rejected`` that answers us."""
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, runtime, ["config.current", "config.rejected"])
    sub.start()
    pub = Publisher(ctx, runtime, src)
    pub.start()
    mine = f"request from {src}"
    try:
        if not await pub.wait_for_subscriber("config.reload", CONNECT_TIMEOUT * 3):
            return None  # core is not listening
        pub.publish("config.reload", {})
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                batch = await asyncio.wait_for(sub.recv_batch(), left)
            except TimeoutError:
                return None
            for event in batch:
                if event.body.get("reason") == mine:
                    return event
        return None
    finally:
        sub.close()
        await pub.close()
        ctx.term()
