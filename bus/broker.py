"""The broker: an XSUB/XPUB switch that every publisher and subscriber connects to.

The forwarding itself is libzmq's steerable proxy on its own thread (C code, no GIL, no Python
per message); the asyncio side only supervises it. The broker keeps no state: late joiners
are served by the publishers themselves (see ``bus.publisher``), which is why the XPUB runs
verbose — every subscription, not just the first per topic, must reach the publishers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

import structlog
import zmq

from bus.component import Component
from bus.runtime import RuntimeDir, restrictive_umask

log = structlog.get_logger(__name__)

HWM = 100_000
# A publisher that sends a message this big is disconnected by libzmq; subscribers never see it.
MAX_MESSAGE = 32 * 1024 * 1024


class Broker:
    """Owns the two bound sockets and the proxy thread."""

    def __init__(self, runtime: RuntimeDir, on_exit: Callable[[], None] | None = None) -> None:
        self.runtime = runtime
        self._on_exit = on_exit  # called from the proxy thread when it ends
        self.ctx = zmq.Context()
        self._thread: threading.Thread | None = None
        self._control_endpoint = f"inproc://bus-control-{id(self)}"

    def start(self) -> None:
        xsub = self.ctx.socket(zmq.XSUB)
        xpub = self.ctx.socket(zmq.XPUB)
        xsub.setsockopt(zmq.RCVHWM, HWM)
        xsub.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        xpub.setsockopt(zmq.SNDHWM, HWM)
        xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        for sock in (xsub, xpub):
            sock.setsockopt(zmq.LINGER, 0)
        with restrictive_umask():
            xsub.bind(self.runtime.pub_endpoint)
            xpub.bind(self.runtime.sub_endpoint)
        control = self.ctx.socket(zmq.PAIR)
        control.bind(self._control_endpoint)
        self._thread = threading.Thread(
            target=self._proxy, args=(xsub, xpub, control), name="bus-proxy", daemon=True
        )
        self._thread.start()

    def _proxy(
        self, xsub: zmq.Socket[bytes], xpub: zmq.Socket[bytes], control: zmq.Socket[bytes]
    ) -> None:
        try:
            zmq.proxy_steerable(xsub, xpub, None, control)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (xsub, xpub, control):
                sock.close()
            if self._on_exit is not None:
                self._on_exit()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._thread is None:
            return
        ctl = self.ctx.socket(zmq.PAIR)
        ctl.connect(self._control_endpoint)
        ctl.send(b"TERMINATE")
        self._thread.join(timeout=2)
        ctl.close(linger=0)
        self.ctx.term()
        self._thread = None


async def serve(comp: Component) -> None:
    """Component body of ``python -m bus``."""
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()

    def proxy_ended() -> None:
        # Told by the thread rather than polled every second: an idle broker does not wake.
        with contextlib.suppress(RuntimeError):  # the loop is already closed: we are stopping
            loop.call_soon_threadsafe(ended.set)

    with comp.runtime.exclusive("bus"):
        broker = Broker(comp.runtime, on_exit=proxy_ended)
        broker.start()
        log.info("bus.listening", pub=comp.runtime.pub_endpoint, sub=comp.runtime.sub_endpoint)
        try:
            await ended.wait()
            raise RuntimeError("bus proxy thread ended unexpectedly")
        finally:
            broker.stop()
