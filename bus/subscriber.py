"""Receiving from the bus: exact topic matching, validation, gap and restart detection.

Nothing a peer sends can crash a subscriber: every frame that fails validation is counted under
a reason code, logged (rate-limited per reason), and dropped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

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
        self._sock = ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, RCVHWM)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        self._sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        # Draining without awaiting doubles throughput (bus-and-style-anchors 6.1).
        self._drain: zmq.Socket[bytes] = zmq.Socket.shadow(self._sock.underlying)
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
        self._sock.close()

    async def recv_batch(self) -> list[Event]:
        """Wait for at least one message, then drain what is queued (up to BATCH)."""
        while True:
            raws = [await self._sock.recv_multipart()]
            while len(raws) < BATCH:
                try:
                    raws.append(self._drain.recv_multipart(flags=zmq.NOBLOCK))
                except zmq.Again:
                    break
            events = [ev for ev in map(self.accept, raws) if ev is not None]
            if events:
                return events

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
            schemas.check(event.topic, event.body)
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
