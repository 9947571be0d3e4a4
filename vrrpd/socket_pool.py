"""The raw sockets vrrpd's instances share, and reading them.

One receive socket per (family, interface) and one send socket per (family, interface,
source, TTL), shared by every instance there; AH sockets (IP protocol 51) per interface
(:class:`vrrpd.ah_sockets.AhSockets`). Datagrams go to the instance listening for their
(interface, family, VRID). A busy receive socket is read every :data:`RX_COALESCE` rather
than on every wake-up (see :meth:`SocketPool._readable`). An interface deleted and created
again under a new index gets new sockets in place (:meth:`SocketPool.follow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import structlog

from vrrpd.ah import AhSession
from vrrpd.ah_sockets import AhReceiver, AhSender, AhSockets, vrid_of
from vrrpd.host import AdvertSender
from vrrpd.links import Link
from vrrpd.machine import TimerName
from vrrpd.packet import IPAddress
from vrrpd.plan import InstancePlan
from vrrpd.runner import Runner
from vrrpd.sockets import Datagram, Receiver, Sender, SocketError
from vrrpd.timers import TimerHeap
from vrrpd.validate import DropReason

__all__ = ["RX_COALESCE", "Listener", "SocketPool"]

log = structlog.get_logger(__name__)

# A receive socket woken again within this long is left to queue for this long before it is
# read (see SocketPool._readable).
RX_COALESCE = 0.005
_REPEATS_MAX = 1024  # keys remembered per receive socket (one per VRID and master in practice)
_MASTER_DOWN = TimerName.MASTER_DOWN.value

VridKey = tuple[str, int, int]  # (interface adverts arrive on, family, VRID)


class Listener(Protocol):
    """What receives an instance's datagrams (a :class:`vrrpd.runner.Runner`)."""

    def receive(self, dgram: Datagram, now: float) -> None: ...

    def receive_repeat(self, key: bytes, now: float) -> bool:
        """Take the datagram of ``key`` if it repeats what was last received, in full, and
        needs nothing but what that did again; False (having done nothing) otherwise."""
        ...

    def receive_ah(self, raw: bytes, now: float) -> None: ...


class SocketPool:
    """The shared sockets; ``stopping`` says the daemon is shutting down (no more pacing)."""

    def __init__(self, stopping: Callable[[], bool]) -> None:
        self._stopping = stopping
        self.receivers: dict[tuple[int, str], Receiver] = {}
        self.senders: dict[tuple[int, str, IPAddress, int], Sender] = {}
        self.ah_sockets = AhSockets()
        self.listeners: dict[VridKey, Listener] = {}
        self._rx_last: dict[Receiver, float] = {}
        self._rx_paused: dict[Receiver, asyncio.TimerHandle] = {}
        #: per receive socket, the listener a datagram's key went to (see _read); forgotten
        #: whenever the listeners change
        self._repeats: dict[Receiver, dict[bytes, Listener]] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    # ---- opening -----------------------------------------------------------------------------

    def open(self, p: InstancePlan, on: Link, primary: IPAddress) -> Sender:
        """Listen for ``p``'s adverts on ``on`` (its advert interface); the socket to send
        them from ``primary``. Raises :class:`SocketError`."""
        key = (p.family, on.name)
        receiver = self.receivers.get(key)
        if (
            receiver is not None
            and receiver.ifindex != on.ifindex
            and not any(k[:2] == (on.name, p.family) for k in self.listeners)
        ):
            # Left by a start that failed before the interface was re-created: it is deaf.
            self._close_receiver(self.receivers.pop(key))
            receiver = None
        if receiver is None:
            receiver = Receiver(p.family, on.name, on.ifindex)
            self.watch(receiver)
        if not p.unicast:
            receiver.join(p.mcast_group)
        return self.sender_for(p, on, primary)

    def sender_for(self, p: InstancePlan, on: Link, primary: IPAddress) -> Sender:
        """The send socket of ``p`` on ``on`` (its advert interface) bound to ``primary``,
        shared with every instance sending from there. Raises :class:`SocketError`."""
        skey = (p.family, on.name, primary, p.unicast_ttl)
        sender = self.senders.get(skey)
        if sender is None:
            sender = self.senders[skey] = Sender(
                p.family,
                on.name,
                on.ifindex,
                primary,
                unicast_ttl=p.unicast_ttl,
                freebind=p.track_src_ip,
            )
        return sender

    def release(self, sender: AdvertSender, runners: Iterable[Runner]) -> None:
        """Close ``sender`` unless one of ``runners`` still sends through it."""
        if any(r.sender is sender for r in runners):
            return
        for key in [k for k, v in self.senders.items() if v is sender]:
            self.senders.pop(key).close()

    def open_ah(self, runner: Runner, on: Link) -> None:
        """``auth_type AH``: ``runner``'s adverts go out and come in as IP protocol 51."""
        p = runner.plan
        assert isinstance(runner.primary, ipaddress.IPv4Address)  # AH is IPv4 only (plan)
        session = AhSession(
            auth_pass=p.auth_pass, src=runner.primary, unicast=p.unicast, ttl=p.unicast_ttl
        )
        runner.attach_ah(session, self._ah_sender_for(p, on))

    def _ah_sender_for(self, p: InstancePlan, on: Link) -> AhSender:
        receiver, opened = self.ah_sockets.receiver(on.name, on.ifindex)
        if opened:
            self.loop.add_reader(receiver.fileno(), self._readable_ah, receiver)
        if not p.unicast:
            assert isinstance(p.mcast_group, ipaddress.IPv4Address)
            receiver.join(p.mcast_group)
        return self.ah_sockets.sender(on.name, on.ifindex)

    def watch(self, receiver: Receiver) -> None:
        """Read ``receiver``: the receive socket for its family and interface from now on."""
        self.receivers[(receiver.family, receiver.ifname)] = receiver
        self.loop.add_reader(receiver.fileno(), self._readable, receiver)

    def listen(self, p: InstancePlan, listener: Listener) -> None:
        """Hand ``listener`` the datagrams for ``p``'s VRID on its advert interface."""
        self.listeners[(p.advert_interface, p.family, p.vrid)] = listener
        self._repeats.clear()

    def unlisten(self, p: InstancePlan) -> None:
        self.listeners.pop((p.advert_interface, p.family, p.vrid), None)
        self._repeats.clear()

    # ---- reading -----------------------------------------------------------------------------

    def _readable(self, receiver: Receiver) -> None:
        now = self.loop.time()
        self._read(receiver, now)
        # A backup of hundreds of instances hears thousands of adverts a second, and a wake-up
        # per handful costs more than reading them: when woken again this soon, stop watching
        # the socket and read what queued up in one go RX_COALESCE later, and so on until a
        # read finds nothing. An advert is handled at most that late, which only ever delays a
        # take-over (the master-down deadline counts from when it is handled), and a
        # master-down timer reads paused sockets before it fires.
        if now - self._rx_last.get(receiver, -RX_COALESCE) < RX_COALESCE and not self._stopping():
            self.loop.remove_reader(receiver.fileno())
            self._pause(receiver, now)
        self._rx_last[receiver] = now

    def _pause(self, receiver: Receiver, now: float) -> None:
        self._rx_paused[receiver] = self.loop.call_at(now + RX_COALESCE, self._resume, receiver)

    def _resume(self, receiver: Receiver) -> None:
        handle = self._rx_paused.pop(receiver, None)
        if handle is None:
            return
        handle.cancel()
        now = self.loop.time()
        self._rx_last[receiver] = now
        if self._read(receiver, now) and not self._stopping():
            self._pause(receiver, now)  # still busy
        else:
            self.loop.add_reader(receiver.fileno(), self._readable, receiver)

    @property
    def paused(self) -> bool:
        """Some receive socket is paused (see :meth:`_readable`)."""
        return bool(self._rx_paused)

    def master_down_due(self, instance: str, timers: TimerHeap) -> bool:
        """Before ``instance``'s master-down timer fires: read the paused sockets, where the
        master's latest advert may wait. False when that advert re-armed the timer."""
        if not self._rx_paused:
            return True
        for receiver in list(self._rx_paused):
            self._resume(receiver)
        return not timers.armed(instance, _MASTER_DOWN)

    def _read(self, receiver: Receiver, now: float) -> int:
        """Hand every queued datagram to its instance; how many there were."""
        try:
            keys = receiver.drain_keys()
        except SocketError as exc:
            log.error("vrrpd.socket.error", interface=receiver.ifname, reason=str(exc))
            return 0
        repeats = self._repeats.get(receiver)
        if repeats is None:
            repeats = self._repeats[receiver] = {}
        for key in keys:
            # The steady state: the same advert again from an instance's master, which its
            # listener takes without decoding or validating it (Runner.receive_repeat).
            listener = repeats.get(key)
            if listener is not None and listener.receive_repeat(key, now):
                continue
            dgram = receiver.datagram(key)
            if dgram is None:
                continue
            vrid = dgram.payload[1] if len(dgram.payload) > 1 else -1
            listener = self.listeners.get((dgram.ifname, receiver.family, vrid))
            if listener is not None:
                listener.receive(dgram, now)
                if len(repeats) >= _REPEATS_MAX:
                    repeats.clear()  # bounded: junk from the wire cannot grow it
                repeats[key] = listener
            else:
                # Counted, not logged: other routers' VRIDs on a shared segment are normal
                # (keepalived logs them only with log_unknown_vrids, and users find it noise).
                receiver.unclaimed[DropReason.VRID if vrid >= 0 else DropReason.TOO_SHORT] += 1
        return len(keys)

    def unclaimed(self, family: int, interface: str) -> Mapping[DropReason, int]:
        receiver = self.receivers.get((family, interface))
        return receiver.unclaimed if receiver is not None else {}

    def clear_unclaimed(self) -> None:
        for receiver in self.receivers.values():
            receiver.unclaimed.clear()

    def _readable_ah(self, receiver: AhReceiver) -> None:
        now = self.loop.time()
        try:
            datagrams = receiver.drain()
        except SocketError as exc:
            log.error("vrrpd.socket.error", interface=receiver.ifname, reason=str(exc))
            return
        for raw in datagrams:
            listener = self.listeners.get((receiver.ifname, 4, vrid_of(raw)))
            if listener is not None:
                listener.receive_ah(raw, now)

    # ---- a re-created interface --------------------------------------------------------------

    def follow(self, link: Link, runners: Iterable[Runner]) -> None:
        """Re-open the sockets bound to a re-created interface, and its multicast memberships,
        in place: the instances that follow it keep their state (a VMAC netd re-made while
        we were master stays master)."""
        running = list(runners)
        self._follow_receivers(link, running)
        self._follow_senders(link, running)
        self._follow_ah(link, running)
        log.info("vrrpd.socket.reopened", interface=link.name, ifindex=link.ifindex)

    def _follow_receivers(self, link: Link, runners: list[Runner]) -> None:
        for key in [k for k in self.receivers if k[1] == link.name]:
            self._close_receiver(self.receivers.pop(key))
            try:
                receiver = Receiver(key[0], link.name, link.ifindex)
                for runner in runners:
                    p = runner.plan
                    if p.advert_interface == link.name and p.family == key[0] and not p.unicast:
                        receiver.join(p.mcast_group)
            except SocketError as exc:
                log.error("vrrpd.socket.error", interface=link.name, reason=str(exc))
                continue
            self.watch(receiver)

    def _follow_senders(self, link: Link, runners: list[Runner]) -> None:
        for skey in [k for k in self.senders if k[1] == link.name]:
            old_sender = self.senders.pop(skey)
            old_sender.close()
            users = [r for r in runners if r.sender is old_sender]
            try:
                sender = Sender(
                    skey[0],
                    link.name,
                    link.ifindex,
                    skey[2],
                    unicast_ttl=skey[3],
                    # The new interface may not have its address yet (it is being built
                    # while we look): bind anyway, sends start working once it is there.
                    freebind=True,
                )
            except SocketError as exc:
                log.error("vrrpd.socket.error", interface=link.name, reason=str(exc))
                continue
            self.senders[skey] = sender
            for runner in users:
                runner.attach_sender(sender)

    def _follow_ah(self, link: Link, runners: list[Runner]) -> None:
        """AH sockets on a re-created interface, re-opened like the others; the sessions (and
        their sequence numbers, which the peer's anti-replay window remembers) stay."""
        old = self.ah_sockets.receivers.pop(link.name, None)
        if old is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(old.fileno())
            old.close()
        old_sender = self.ah_sockets.senders.pop(link.name, None)
        if old_sender is not None:
            old_sender.close()
        for runner in runners:
            if runner.ah is not None and runner.plan.advert_interface == link.name:
                try:
                    runner.attach_ah_sender(self._ah_sender_for(runner.plan, link))
                except SocketError as exc:
                    log.error("vrrpd.socket.error", interface=link.name, reason=str(exc))
                    return

    # ---- closing -----------------------------------------------------------------------------

    def _close_receiver(self, receiver: Receiver) -> None:
        """Stop reading ``receiver`` (watched or paused) and close it."""
        handle = self._rx_paused.pop(receiver, None)
        if handle is not None:
            handle.cancel()
        self._rx_last.pop(receiver, None)
        self._repeats.pop(receiver, None)
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(receiver.fileno())
        receiver.close()

    def close(self) -> None:
        for receiver in self.receivers.values():
            self._close_receiver(receiver)
        for sender in self.senders.values():
            sender.close()
        for ah_receiver in self.ah_sockets.receivers.values():
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(ah_receiver.fileno())
        self.ah_sockets.close()
