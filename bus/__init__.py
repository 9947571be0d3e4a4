"""The bus: a ZeroMQ XSUB/XPUB broker plus the helpers every component uses to talk on it.

Public surface:

- ``RuntimeDir``: where the sockets and locks live.
- ``Publisher`` / ``Subscriber``: asyncio helpers (retained state, exact topics, gap detection).
- ``Event``, ``Envelope``, ``encode``/``decode``: the wire format (see docs/bus.md).
- ``messages``: every public message as one typed class (``Intent``, ``Verdict``, ...).
- ``Component``, ``run_component``: the shared process skeleton (heartbeats, logs, signals).
"""

from bus import messages, topics
from bus.component import Component, add_common_arguments, run_component, start_component
from bus.envelope import VERSION, Envelope, Event, Stamper, decode, encode
from bus.errors import BusError, MessageRejected, RuntimeDirError, RuntimeDirLocked
from bus.publisher import Publisher
from bus.runtime import RuntimeDir
from bus.subscriber import Subscriber, SubscriberStats

__all__ = [
    "VERSION",
    "BusError",
    "Component",
    "Envelope",
    "Event",
    "MessageRejected",
    "Publisher",
    "RuntimeDir",
    "RuntimeDirError",
    "RuntimeDirLocked",
    "Stamper",
    "Subscriber",
    "SubscriberStats",
    "add_common_arguments",
    "decode",
    "encode",
    "messages",
    "run_component",
    "start_component",
    "topics",
]
