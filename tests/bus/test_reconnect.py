"""Bus sockets retry a refused connect soon: children are forked before the bus has bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import zmq
import zmq.asyncio

from bus import Publisher, RuntimeDir, Subscriber
from bus.runtime import RECONNECT_IVL_MAX_MS, RECONNECT_IVL_MS


def test_publisher_and_subscriber_retry_sooner_than_libzmq_default(tmp_path: Path) -> None:
    ctx = zmq.asyncio.Context()
    runtime = RuntimeDir(tmp_path)
    try:
        pub = Publisher(ctx, runtime, "test")
        sub = Subscriber(ctx, runtime, ["hb.*"])
        sockets = {"publisher": pub._sock, "subscriber": sub._sock}
        for name, sock in sockets.items():
            got = (sock.getsockopt(zmq.RECONNECT_IVL), sock.getsockopt(zmq.RECONNECT_IVL_MAX))
            assert got == (RECONNECT_IVL_MS, RECONNECT_IVL_MAX_MS), name
        # libzmq's own default is 100 ms (plus jitter): the point of setting it at all
        assert RECONNECT_IVL_MS < 100 and RECONNECT_IVL_MAX_MS <= 100
        asyncio.run(pub.close())
        sub.close()
    finally:
        ctx.term()
