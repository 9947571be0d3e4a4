"""Receiving from the bus: exact topic matching, validation, gap and restart detection.

Nothing a peer sends can crash a subscriber: every frame that fails validation is counted under
a reason code, logged (rate-limited per reason), and dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import structlog
import zmq
import zmq.asyncio

from bus import envelope, schemas, topics
from bus.envelope import Event
from bus.errors import MessageRejected
from bus.runtime import RECONNECT_IVL_MAX_MS, RECONNECT_IVL_MS, RuntimeDir

log = structlog.get_logger(__name__)

RCVHWM = 100_000
BATCH = 256
_LOG_EVERY = 1.0  # seconds between drop logs for one reason


@dataclass(slots=True)
class SubscriberStats:
    received: int = 0
    delivered: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    gaps: int = 0
    missed: int = 0
    restarts: int = 0


class Subscriber:
    """Subscribe to topic patterns (exact, or prefix with a trailing ``*``)."""

    def __init__(
        self, ctx: zmq.asyncio.Context, runtime: RuntimeDir, patterns: Sequence[str] = ()
    ) -> None:
        self.runtime = runtime
        self.patterns = topics.patterns(tuple(patterns))
        self.stats = SubscriberStats()
        # A plain socket whose descriptor we watch ourselves, not pyzmq's asyncio socket: its
        # awaitable recv costs a future, a done-callback and half a dozen EVENTS look-ups per
        # message, which on an idle node (every wake-up runs on cold caches) was about a fifth
        # of what receiving a heartbeat costs (docs/benchmarks.md, "idle node").
        self._sock: zmq.Socket[bytes] = zmq.Socket(ctx, zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, RCVHWM)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        self._sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        self._fd = self._sock.fileno()
        # the loop whose selector watches _fd, and what it calls
        self._watching: tuple[asyncio.AbstractEventLoop, Callable[[], None]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._last: dict[tuple[str, str], tuple[str, int]] = {}
        self._last_drop_log: dict[str, float] = {}

    def start(self) -> None:
        self._sock.connect(self.runtime.sub_endpoint)
        # In the order given: a subscription travels to the publishers behind the ones before
        # it, so hearing the last one's topic proves the earlier ones arrived too.
        for prefix in dict.fromkeys(p.zmq_prefix for p in self.patterns):
            self._sock.setsockopt(zmq.SUBSCRIBE, prefix)

    def resync(self, *patterns: str) -> None:
        """Ask the owners of retained state under ``patterns`` to send it again, now.

        Subscribing again sends the subscription up to every publisher (the broker's XPUB is
        verbose), and a publisher re-sends the retained topics a new subscription covers;
        the matching unsubscribe leaves this socket's filter as it was. For a receiver that
        knows it missed the last word on a topic (a renewal naming a generation it never
        got, counters it wants current): nothing else re-sends it.
        """
        for prefix in {p.zmq_prefix for p in topics.patterns(patterns)}:
            self._sock.setsockopt(zmq.SUBSCRIBE, prefix)
            self._sock.setsockopt(zmq.UNSUBSCRIBE, prefix)

    def close(self) -> None:
        self._unwatch()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()
        self._sock.close()

    async def recv_batch(self) -> list[Event]:
        """Wait for at least one message, then take what is queued (up to BATCH)."""
        while True:
            raws = self._take()
            if not raws:
                await self._readable()
                continue
            events = [ev for ev in map(self.accept, raws) if ev is not None]
            if events:
                return events

    async def serve(self, handle: Callable[[list[Event]], None]) -> None:
        """Hand every batch to ``handle`` from the loop's readiness callback, until cancelled;
        what ``handle`` raises is raised here.

        For a receiver whose handling never awaits (netd's inputs, the watchdog's
        heartbeats): no task is woken for each message, which saves a turn of the loop per
        message (docs/benchmarks.md, "idle node")."""
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            try:
                raws = self._take()
                events = [ev for ev in map(self.accept, raws) if ev is not None]
                if events:
                    handle(events)
            except Exception as exc:
                if not failed.done():
                    failed.set_exception(exc)
                return
            if len(raws) == BATCH:
                loop.call_soon(ready)  # more may be queued, and libzmq signals only the first

        self._watch(ready)
        ready()  # what came before we watched
        try:
            await failed
        finally:
            self._unwatch()

    def _take(self) -> list[list[bytes]]:
        """What is queued, up to BATCH, without waiting (draining without awaiting doubles
        throughput, bus-and-style-anchors 6.1). Stopping short of BATCH means libzmq said
        EAGAIN, having handled its pending commands: its descriptor is quiet until the next
        message arrives."""
        raws: list[list[bytes]] = []
        recv = self._sock.recv_multipart
        while len(raws) < BATCH:
            try:
                raws.append(recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        return raws

    async def _readable(self) -> None:
        """Sleep until libzmq says a message is waiting. Called only after ``_take`` found
        the queue empty: libzmq signals its descriptor when a message arrives at an empty
        queue, so one taken (or looked at, ``_signalled``) since is never waited for."""
        if self._watching != (asyncio.get_running_loop(), self._signalled):
            self._watch(self._signalled)
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _signalled(self) -> None:
        # The descriptor stays readable until libzmq handles its pending commands, which
        # reading EVENTS does (else every turn of the loop would call us again); it may hold
        # no message (a peer connected), and then nobody is woken.
        if cast(int, self._sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:  # an int option
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _watch(self, callback: Callable[[], None]) -> None:
        self._unwatch()
        loop = asyncio.get_running_loop()
        loop.add_reader(self._fd, callback)
        self._watching = (loop, callback)

    def _unwatch(self) -> None:
        if self._watching is not None and not self._watching[0].is_closed():
            self._watching[0].remove_reader(self._fd)
        self._watching = None

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            for event in await self.recv_batch():
                yield event

    def accept(self, frames: list[bytes]) -> Event | None:
        """Decode, filter and sequence-check one raw message; None if it is not delivered."""
        self.stats.received += 1
        try:
            if frames and not topics.matches_any(self.patterns, envelope.decode_topic(frames[0])):
                return None  # a longer topic that only shares our prefix (health.web10 vs web1)
            event = envelope.decode(frames)
            event.checked = schemas.check(event.topic, event.body)
        except MessageRejected as exc:
            self._drop(exc)
            return None
        if not self._sequence(event):
            return None
        self.stats.delivered += 1
        return event

    def _sequence(self, event: Event) -> bool:
        env = event.env
        key = (env.src, event.topic)
        last = self._last.get(key)
        if last is not None:
            boot, seq = last
            if boot != env.boot:
                event.restarted = True
                self.stats.restarts += 1
                log.info("bus.restart", src=env.src, topic=event.topic, process_id=env.pid)
            elif env.seq <= seq:
                self._drop(
                    MessageRejected(
                        "seq", f"{event.topic} from {env.src}: seq {env.seq} not after {seq}"
                    )
                )
                return False
            elif env.seq > seq + 1:
                event.missed = env.seq - seq - 1
                self.stats.gaps += 1
                self.stats.missed += event.missed
                log.warning(
                    "bus.gap", src=env.src, topic=event.topic, missed=event.missed, after_seq=seq
                )
        self._last[key] = (env.boot, env.seq)
        return True

    def _drop(self, exc: MessageRejected) -> None:
        self.stats.dropped[exc.reason] += 1
        now = time.monotonic()
        if now - self._last_drop_log.get(exc.reason, -_LOG_EVERY) >= _LOG_EVERY:
            self._last_drop_log[exc.reason] = now
            log.warning(
                "bus.dropped",
                reason=exc.reason,
                detail=exc.detail,
                count=self.stats.dropped[exc.reason],
            )
