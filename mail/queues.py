"""Ordered background work, one FIFO per key (an instance, a sync group, a real server...).

SMTP alerts (``mail.mailer``) and vrrpd's notify scripts (``vrrpd.notify``) share the rule
keepalived lacks: for one owner, never out of order and never two at once, while different
owners never wait for each other. A queue and its worker task appear on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class KeyedQueues(Generic[T]):
    def __init__(self, name: str, work: Callable[[T], Awaitable[None]]) -> None:
        self._name = name
        self._work = work
        self._queues: dict[str, asyncio.Queue[T]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def put(self, key: str, item: T, *, backlog: int | None = None) -> T | None:
        """Queue ``item``; with ``backlog``, a full queue drops (and returns) its oldest item."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._workers[key] = asyncio.create_task(self._run(queue), name=f"{self._name}.{key}")
        dropped = None
        if backlog is not None and queue.qsize() >= backlog:
            dropped = queue.get_nowait()
            queue.task_done()
        queue.put_nowait(item)
        return dropped

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for everything queued, e.g. the STOP notifications at shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(q.join() for q in self._queues.values())), timeout
            )

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def _run(self, queue: asyncio.Queue[T]) -> None:
        while True:
            item = await queue.get()
            try:
                await self._work(item)
            finally:
                queue.task_done()
