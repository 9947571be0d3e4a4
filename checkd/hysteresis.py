"""Pure debouncing logic: vrrp_script rise/fall and track_process fork/terminate delays."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RiseFall:
    """keepalived's vrrp_script result counter (keepalived 2.2.7).

    The counter runs from 0 to rise+fall-1 and the script is OK when it is >= rise. It starts
    at rise-1 (one success makes it OK, one failure makes it KO) or at 0 with ``init_fail``.
    A success below rise-1 counts up; reaching rise jumps to the top, so a healthy script
    needs ``fall`` consecutive failures to go KO. A failure above rise counts down; at rise it
    drops to 0, so a failed script needs ``rise`` consecutive successes to come back.
    """

    rise: int
    fall: int
    counter: int = 0
    decided: bool = False  # False until a result (or init_fail) has fixed the state

    @classmethod
    def start(cls, rise: int, fall: int, *, init_fail: bool = False) -> RiseFall:
        if rise < 1 or fall < 1:
            raise ValueError("rise and fall must be at least 1")
        return cls(rise, fall, 0 if init_fail else rise - 1, decided=init_fail)

    @classmethod
    def resumed(cls, rise: int, fall: int, *, ok: bool) -> RiseFall:
        """A counter carrying a previous verdict over a reload."""
        return cls(rise, fall, rise + fall - 1 if ok else 0, decided=True)

    @property
    def ok(self) -> bool:
        return self.counter >= self.rise

    def record(self, success: bool) -> bool:
        """Count one run; True when the OK/KO state changed (or was decided for the first time)."""
        before, was_decided = self.ok, self.decided
        top = self.rise + self.fall - 1
        if success:
            self.counter = self.counter + 1 if self.counter < self.rise - 1 else top
        else:
            self.counter = self.counter - 1 if self.counter > self.rise else 0
        self.decided = True
        return self.ok != before or not was_decided


@dataclass(slots=True)
class Debounce:
    """A boolean that changes only after the raw input has held the new value for a delay.

    ``rise_delay`` applies when going to True (track_process fork_delay), ``fall_delay`` when
    going to False (terminate_delay). Time is passed in, so this is testable with a fake clock.
    """

    rise_delay: float
    fall_delay: float
    value: bool | None = None
    _pending: bool | None = None
    _since: float = 0.0

    def update(self, raw: bool, now: float) -> bool:
        """Feed the raw state at ``now``; True when the debounced value changed."""
        if self.value is None:
            # The first observation is taken as is: at startup there is nothing to debounce.
            self.value = raw
            return True
        if raw == self.value:
            self._pending = None
            return False
        if self._pending != raw:
            self._pending, self._since = raw, now
        delay = self.rise_delay if raw else self.fall_delay
        if now - self._since >= delay:
            self.value, self._pending = raw, None
            return True
        return False

    def deadline(self) -> float | None:
        """When a pending change would take effect, if one is pending."""
        if self._pending is None:
            return None
        return self._since + (self.rise_delay if self._pending else self.fall_delay)
