"""When the daemon is ready, reloading or healthy, as systemd should hear it (pure logic).

READY=1 goes out once, when every component has sent its first heartbeat and core has
published a configuration: from then on addresses, checks and elections are running. A reload
(SIGHUP, or ``config.reload`` from ``pykeepalivedctl reload``) is RELOADING=1 until core
publishes the new generation or rejects the file, then READY=1 again. The STATUS= line is a
one-line summary an operator sees in ``systemctl status``. A component started on demand
(``watchdog.ondemand``) counts only while the configuration wants it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Say = Literal["ready", "reloading", "status"]


@dataclass(slots=True)
class Readiness:
    components: tuple[str, ...]
    heard: set[str] = field(default_factory=set)
    generation: int | None = None
    ready: bool = False
    reloading: bool = False
    rejected: bool = False
    states: dict[str, str] = field(default_factory=dict)

    def heartbeat(self, component: str) -> list[Say]:
        if component in self.heard or component not in self.components:
            return []
        self.heard.add(component)
        return self._maybe_ready()

    def wanted(self, component: str, wanted: bool) -> list[Say]:
        """A component the configuration now needs, or no longer needs, running."""
        has = component in self.components
        if has == wanted:
            return []
        if wanted:
            self.components = (*self.components, component)
        else:
            self.components = tuple(c for c in self.components if c != component)
            self.heard.discard(component)
        return self._maybe_ready() or (["status"] if self.ready else [])

    def child_restarted(self, component: str) -> list[Say]:
        self.heard.discard(component)
        return ["status"] if self.ready else []

    def config_current(self, generation: int) -> list[Say]:
        changed = generation != self.generation
        self.generation = generation
        self.rejected = False
        if self.reloading:
            self.reloading = False
            return ["ready"]
        return self._maybe_ready() or (["status"] if changed and self.ready else [])

    def config_rejected(self) -> list[Say]:
        self.rejected = True
        if self.reloading:
            self.reloading = False
            return ["ready"]
        return ["status"] if self.ready else []

    def reload_requested(self) -> list[Say]:
        if not self.ready or self.reloading:
            return []
        self.reloading = True
        return ["reloading"]

    def vrrp_state(self, instance: str, state: str) -> list[Say]:
        if self.states.get(instance) == state:
            return []
        self.states[instance] = state
        return ["status"] if self.ready else []

    def _maybe_ready(self) -> list[Say]:
        if self.ready or self.generation is None or set(self.components) - self.heard:
            return []
        self.ready = True
        return ["ready"]

    def status_line(self) -> str:
        up = len(self.heard & set(self.components))
        parts = [f"{up}/{len(self.components)} components up"]
        if self.generation is not None:
            parts.append(f"config generation {self.generation}")
        if self.rejected:
            parts.append("last reload rejected")
        if self.reloading:
            parts.append("reloading")
        counts = Counter(self.states.values())
        if counts:
            parts.append(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
        return "; ".join(parts)
