"""What a :class:`vrrpd.runner.Runner` may use of its surroundings, and nothing more.

A Runner executes one instance's machine actions; every effect outside the instance goes
through a :class:`RunnerHost`: its timers in the shared heap, what it publishes on the bus,
notify scripts, the FIFO and mail, and the sync group it belongs to. vrrpd's own host is
:class:`vrrpd.outputs.Outputs`; tests use a fake that records what it is given
(``tests/vrrpd/fakes.py``), so the Runner is exercised without sockets, a loop or a bus.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from ipaddress import IPv4Address
from typing import Any, Protocol

from vrrpd.machine import Event
from vrrpd.notify import Job
from vrrpd.packet import IPAddress
from vrrpd.validate import DropReason

__all__ = ["AdvertSender", "AhAdvertSender", "Refresh", "RunnerHost"]

#: rebuilds a retained body when the bus re-sends it (receive counters change constantly)
Refresh = Callable[[], Mapping[str, Any]]


class AdvertSender(Protocol):
    """Puts an instance's prepared advert bytes on the wire (:class:`vrrpd.sockets.Sender`)."""

    def send(self, wire: bytes, dst: IPAddress) -> bool: ...


class AhAdvertSender(Protocol):
    """Sends whole AH-wrapped IPv4 datagrams (:class:`vrrpd.ah_sockets.AhSender`)."""

    def send(self, datagram: bytes, dst: IPv4Address) -> bool: ...


class RunnerHost(Protocol):
    """The effects of one instance's actions, outside the instance."""

    @property
    def stopping(self) -> bool:
        """vrrpd is shutting down: transitions now report STOP."""
        ...

    def set_timer(self, instance: str, timer: str, deadline: float) -> None: ...

    def cancel_timer(self, instance: str, timer: str) -> None: ...

    def cancel_timers(self, instance: str) -> None:
        """Every timer of ``instance`` (it stopped)."""
        ...

    def publish_state(self, instance: str, body: Mapping[str, Any], refresh: Refresh) -> None:
        """Retain ``vrrp.state.<instance>``; ``refresh`` rebuilds it for re-sends."""
        ...

    def publish_intent(self, instance: str, body: Mapping[str, Any]) -> None:
        """Retain ``vrrp.intent.<instance>``: what netd must install for it."""
        ...

    def publish_event(self, instance: str, body: Mapping[str, Any]) -> None:
        """Publish ``vrrp.event.<instance>`` (a notice such as split brain)."""
        ...

    def run_notify(self, jobs: list[Job]) -> None:
        """Queue notify scripts (in order, per owner)."""
        ...

    def fifo_write(self, line: str) -> None: ...

    def mail_alert(self, scope: str, name: str, state: str) -> None:
        """``smtp_alert``: a mail about ``name`` (an INSTANCE or GROUP) now in ``state``."""
        ...

    def unclaimed(self, family: int, interface: str) -> Mapping[DropReason, int]:
        """Datagrams the receive socket of ``family`` on ``interface`` got that no instance
        took (an unknown VRID, too short to name one): counted under every instance there."""
        ...

    def route(self, member: str, event: Event, now: float) -> None:
        """Feed ``event`` to sync group member ``member`` through its group, which decides
        for every member (see :class:`vrrpd.groups.Groups`)."""
        ...

    def wall_time(self) -> float:
        """Seconds since the epoch, for the dumps' last-transition times."""
        ...
