"""vrrpd's :class:`vrrpd.host.RunnerHost`: where the instances' actions take effect.

One shared timer heap, the bus publisher (everything vrrpd publishes goes out here), the
notify script queues, the notify FIFO, the mailer and the sync groups. A sync group's own
notifications (``GROUP name STATE 0``) go out here too, in the same order as an instance's:
scripts, FIFO line, mail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from bus import Publisher, messages
from core import Config, vrrp_fifos
from scripts import NotifyFifos, ScriptSpec
from vrrpd import mail, notify
from vrrpd.groups import Groups
from vrrpd.host import Refresh
from vrrpd.machine import Event, TimerName
from vrrpd.notify import Job
from vrrpd.plan import notify_specs
from vrrpd.runner import Runner
from vrrpd.syncgroup import GroupNotify
from vrrpd.timers import TimerHeap
from vrrpd.validate import DropReason

__all__ = ["Outputs"]

log = structlog.get_logger(__name__)

#: how early an advert may go out when the timer heap wakes for another one anyway: never
#: harmful (a backup waits three intervals), and a master of hundreds of instances then sends
#: bursts of adverts per wake-up instead of one wake-up each
ADVER_EARLY = 0.002


class Outputs:
    """Implements :class:`vrrpd.host.RunnerHost` for the instances in ``runners``."""

    def __init__(
        self,
        publisher: Publisher,
        runners: Mapping[str, Runner],
        fire: Callable[[str, str, float], None],
        unclaimed: Callable[[int, str], Mapping[DropReason, int]],
    ) -> None:
        self.publisher = publisher
        self.unclaimed = unclaimed
        self.timers = TimerHeap(fire, early={TimerName.ADVER.value: ADVER_EARLY})
        #: RunnerHost.set_timer: the heap's own method, not a call through this one (a
        #: backup re-arms a timer for every advert it hears, a master for every one it sends)
        self.set_timer: Callable[[str, str, float], None] = self.timers.set
        self.notifier = notify.NotifyQueues()
        self.mailer = mail.Mailer()
        self.fifos = NotifyFifos("vrrpd")
        self.groups = Groups(runners, self.group_notify)
        #: each sync group's notify scripts, from the config
        self.group_scripts: dict[str, dict[str, ScriptSpec]] = {}
        self._stopping = False

    # ---- RunnerHost --------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping

    def cancel_timer(self, instance: str, timer: str) -> None:
        self.timers.cancel(instance, timer)

    def cancel_timers(self, instance: str) -> None:
        self.timers.cancel_instance(instance)

    def publish_state(self, instance: str, body: Mapping[str, Any], refresh: Refresh) -> None:
        self.publisher.retain(f"vrrp.state.{instance}", body, refresh=refresh)

    def publish_intent(self, instance: str, body: Mapping[str, Any]) -> None:
        self.publisher.retain(f"vrrp.intent.{instance}", body)

    def publish_event(self, instance: str, body: Mapping[str, Any]) -> None:
        self.publisher.publish(f"vrrp.event.{instance}", body)

    def run_notify(self, jobs: list[Job]) -> None:
        self.notifier.submit(jobs)

    def fifo_write(self, line: str) -> None:
        self.fifos.write(line)

    def mail_alert(self, scope: str, name: str, state: str) -> None:
        self.mailer.alert(scope, name, state)

    def route(self, member: str, event: Event, now: float) -> None:
        self.groups.route(member, event, now)

    def wall_time(self) -> float:
        return time.time()

    # ---- the daemon's side -------------------------------------------------------------------

    def forget_state(self, instance: str) -> None:
        """``instance`` stopped: no more re-sends of its ``vrrp.state``."""
        self.publisher.forget(f"vrrp.state.{instance}")

    def publish_renewals(self, leases: Mapping[str, tuple[int, float]]) -> None:
        """``vrrp.renew``: one (generation, lease) per held intent not re-sent whole."""
        self.publisher.publish("vrrp.renew", messages.Renew(leases).encode())

    def publish_waiting(self, instance: str, body: Mapping[str, Any]) -> None:
        """Retain ``vrrp.state.<instance>`` of an instance that cannot start yet (FAULT, with
        why: vrrpd.pending)."""
        self.publisher.retain(f"vrrp.state.{instance}", body)

    def group_notify(self, action: GroupNotify, resumed: bool) -> None:
        state = "STOP" if self._stopping else action.new.value
        log.info(
            "vrrp.sync_group",
            group=action.group,
            old=action.old.value,
            new=state,
            member=action.member,
        )
        if resumed:
            return  # as for the instance itself: a resume runs no notify script
        scripts = self.group_scripts.get(action.group, {})
        self.notifier.submit(notify.jobs_for(action.group, scripts, state, 0, scope="GROUP"))
        self.fifo_write(f'GROUP "{action.group}" {state} 0\n')
        self.mailer.alert("GROUP", action.group, state)

    def configure(self, config: Config) -> None:
        """A new configuration: its notify FIFO, ``smtp_alert`` settings and sync group
        scripts."""
        self.fifos.configure(vrrp_fifos(config))
        self.mailer.configure(mail.mail_settings(config))
        self.group_scripts = {g.name: notify_specs(config, g.name, g) for g in config.sync_groups}

    def begin_stopping(self) -> None:
        """From now on transitions report STOP."""
        self._stopping = True

    async def close(self) -> None:
        """Let the STOP notifications finish (bounded), then close queues, FIFO and timers."""
        await self.notifier.drain(notify.STOP_TIMEOUT + 0.5)
        await self.notifier.close()
        await self.mailer.close()
        await self.fifos.close()
        self.timers.close()
