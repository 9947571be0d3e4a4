"""Publishing onto the bus, with retained (level-triggered) state.

The publisher connects an XPUB socket to the broker's XSUB. Using XPUB instead of PUB lets it
see subscriptions as they reach the broker: when a subscriber joins (or the broker restarts and
every subscriber re-subscribes, or a subscriber asks again with ``Subscriber.resync``), each
retained topic that the subscription covers is re-published at once. A late joiner therefore
gets current state without waiting for a change, and the broker stays a stateless switch.

Nothing is re-sent on a timer except state retained with ``repeat``: state whose re-send is
itself a liveness signal (checkd's verdicts, which vrrpd counts as failed once nobody has
re-sent them for a while), each topic at its own period (a 1 s script's verdict every second,
the others every 5 s). Re-sending everything every few seconds cost a node with 255
instances 765 messages per 5 s for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog
import zmq
import zmq.asyncio

from bus import envelope, messages, topics
from bus.runtime import RECONNECT_IVL_MAX_MS, RECONNECT_IVL_MS, RuntimeDir

log = structlog.get_logger(__name__)

SNDHWM = 100_000
REPEAT_INTERVAL = 5.0  # for state retained with repeat=True (a number chooses another period)


class Publisher:
    """Send events; keep the last value of state topics and re-send it to late joiners."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        runtime: RuntimeDir,
        src: str,
        *,
        repeat_interval: float = REPEAT_INTERVAL,
    ) -> None:
        self.runtime = runtime
        self.stamper = envelope.Stamper(src)
        self._async_sock = ctx.socket(zmq.XPUB)
        self._async_sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._async_sock.setsockopt(zmq.SNDHWM, SNDHWM)
        self._async_sock.setsockopt(zmq.LINGER, 500)
        self._async_sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        self._async_sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        # Sending never blocks on an XPUB, so a plain socket sharing the same handle lets
        # synchronous code (log processors, callbacks) publish without awaiting.
        self._sock: zmq.Socket[bytes] = zmq.Socket.shadow(self._async_sock.underlying)
        self._retained: dict[str, dict[str, Any]] = {}
        self._refresh: dict[str, Callable[[], Mapping[str, Any]]] = {}
        self._repeating: dict[str, float] = {}  # topic -> seconds between re-sends
        self._repeat_interval = repeat_interval
        # one timer per period in use, none once nothing repeats: an idle publisher never wakes
        self._repeat_timers: dict[float, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()  # set when a prefix is added to ``_prefixes``
        self._prefixes: set[bytes] = set()
        self.sent = 0
        self._send_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_due = False

    @property
    def src(self) -> str:
        return self.stamper.src

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._async_sock.connect(self.runtime.pub_endpoint)
        self._tasks.append(asyncio.create_task(self._watch_subscriptions(), name="bus.subs"))

    def publish(self, topic: str, body: Mapping[str, Any]) -> None:
        """Send one event now. Never blocks; a full queue drops (receivers see the seq gap)."""
        # Log records reach here from any thread (netd's netlink worker, say) and a zmq socket
        # is not thread-safe: unserialized, two sends interleave their frames on the wire.
        with self._send_lock:
            frames = envelope.encode(topic, body, self.stamper.next(topic))
            try:
                self._sock.send_multipart(frames, flags=zmq.NOBLOCK)
                self.sent += 1
                self._check_subscriptions()
                return
            except zmq.Again:
                pass
        log.warning("bus.publish.dropped", topic=topic, reason="high-water mark")

    def _check_subscriptions(self) -> None:
        """A send on the plain socket also takes in what the broker sent us, and with it the
        descriptor's edge the async socket waits on (zmq's descriptor is edge-triggered): a
        subscription arriving then sat unread, unanswered, until the next one came (a
        restarted vrrpd got no ``net.link`` from a busy netd: docs/bus.md, "Delivery"). So
        after each send, subscriptions waiting are taken from the loop (called with the send
        lock held, from any thread)."""
        if self._loop is None or self._drain_due:
            return
        events = self._sock.get(zmq.EVENTS)
        if not isinstance(events, int) or not events & zmq.POLLIN:
            return
        self._drain_due = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are stopping
            self._loop.call_soon_threadsafe(self._drain_subscriptions)

    def _drain_subscriptions(self) -> None:
        self._drain_due = False
        batch = self._waiting()
        if batch:
            self._answer(batch)

    def _waiting(self) -> list[list[bytes]]:
        """Every subscription already queued, without waiting."""
        batch = []
        with self._send_lock:
            while True:
                try:
                    batch.append(self._sock.recv_multipart(flags=zmq.NOBLOCK))
                except zmq.Again:
                    return batch

    def retain(
        self,
        topic: str,
        body: Mapping[str, Any],
        *,
        refresh: Callable[[], Mapping[str, Any]] | None = None,
        repeat: bool | float = False,
    ) -> None:
        """Publish state: remembered and re-sent to every subscriber that joins or asks again.

        ``refresh``, when given, builds the body again at each re-send: for state with
        fields that change too often to publish on every change (counters), so a re-send is
        current without costing anything between re-sends.

        ``repeat`` also re-sends it every ``repeat_interval`` seconds (True) or every ``repeat``
        seconds (a number), for state whose receivers take silence as "its owner is gone"
        (verdicts); everything else is sent only on change and on request.
        """
        self._retained[topic] = dict(body)
        if refresh is None:
            self._refresh.pop(topic, None)
        else:
            self._refresh[topic] = refresh
        if repeat is False:
            self._repeating.pop(topic, None)
        else:
            period = self._repeat_interval if repeat is True else float(repeat)
            if period <= 0:
                raise ValueError(f"repeat period {period!r} for {topic} is not above 0")
            self._repeating[topic] = period
            if period not in self._repeat_timers:
                self._arm_repeat(period)
        self.publish(topic, body)

    def forget(self, topic: str) -> None:
        self._retained.pop(topic, None)
        self._refresh.pop(topic, None)
        self._repeating.pop(topic, None)

    def retained(self) -> dict[str, dict[str, Any]]:
        return {topic: self._current(topic) for topic in list(self._retained)}

    async def wait_for_subscriber(self, topic: str, timeout: float) -> bool:
        """Wait until some subscriber's subscription covers ``topic`` (bounded by ``timeout``).

        A message published before the connection to the broker is complete is lost silently;
        this is how a one-shot publisher (the CLI) knows its message will be delivered.
        """
        wanted = topic.encode()

        def covered() -> bool:
            return any(wanted.startswith(p) for p in self._prefixes)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not covered():
            self._subscribed.clear()
            try:
                await asyncio.wait_for(self._subscribed.wait(), deadline - loop.time())
            except TimeoutError:
                return covered()
        return True

    async def close(self) -> None:
        for timer in self._repeat_timers.values():
            timer.cancel()
        self._repeat_timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._async_sock.close()

    async def _watch_subscriptions(self) -> None:
        while True:
            first = await self._async_sock.recv_multipart()
            # Take every subscription already queued: a (re)connection to the broker hands us
            # all of them at once, in the broker's order, not the subscribers'.
            self._answer([first, *self._waiting()])

    def _answer(self, batch: list[list[bytes]]) -> None:
        """Re-send what each subscription in ``batch`` covers, then answer its fences."""
        fences = []
        for frames in batch:
            msg = frames[0]
            if not msg or msg[0] != 1:
                continue  # not a subscription (an unsubscribe leaves retained state be)
            prefix = msg[1:]
            self._prefixes.add(prefix)
            self._subscribed.set()
            for topic in list(self._retained):
                if topic.encode().startswith(prefix):
                    self.publish(topic, self._current(topic))
            if prefix.startswith(topics.FENCE_ROOT.encode()):
                fences.append(prefix.decode("utf-8", "replace"))
        # A subscriber's fence, subscribed after everything else it wants: answering it once
        # the whole batch is re-sent tells it our state has all reached it.
        for fence in fences:
            marker = topics.synced(self.src)
            self.publish(marker, messages.Synced(self.src, fence).encode())

    def _arm_repeat(self, period: float) -> None:
        loop = asyncio.get_running_loop()
        self._repeat_timers[period] = loop.call_later(period, self._repeat, period)

    def _repeat(self, period: float) -> None:
        """One timer for the repeated topics of each period, and none at all once there is
        nothing to repeat at that period."""
        del self._repeat_timers[period]
        due = sorted(t for t, p in self._repeating.items() if p == period)
        if not due:
            return
        for topic in due:
            self.publish(topic, self._current(topic))
        self._arm_repeat(period)

    def _current(self, topic: str) -> dict[str, Any]:
        refresh = self._refresh.get(topic)
        if refresh is not None:
            self._retained[topic] = dict(refresh())
        return self._retained[topic]
