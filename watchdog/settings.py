"""What the watchdog itself takes from the configuration: where and how the daemon runs.

keepalived's parent reads these before it forks (keepalived 2.2.7's start-up sequence):
the network namespace it enters (``net_namespace``, see ``watchdog.netns``), the start/stop
scripts, how long it waits for children at shutdown (``child_wait_time``), the
``umask`` files are created with, and the pid file names that ``instance`` and ``use_pid_dir``
change. core re-reads the file and reports every problem; the watchdog only needs these values,
read once at start, and which on-demand components (``watchdog.ondemand``) to start with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core import load
from core.listen import parse_listen
from core.model import Config
from watchdog.ondemand import ON_DEMAND, image_modules, needed
from watchdog.scripts import Hook, hooks

DEFAULT_CHILD_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    hooks: dict[str, Hook]
    child_wait_time: float = DEFAULT_CHILD_WAIT
    umask: int | None = None
    net_namespace: str | None = None
    instance: str | None = None
    use_pid_dir: bool = False
    metrics: tuple[str, int] | None = None
    needed: frozenset[str] = ON_DEMAND  # the on-demand components started with the daemon
    image: tuple[tuple[str, str], ...] = ()  # (component, on-demand module) used at once


def settings(config: Config) -> DaemonSettings:
    return DaemonSettings(
        hooks=hooks(config),
        child_wait_time=float(config.child_wait_time),
        umask=config.global_defs.umask,
        net_namespace=config.net_namespace,
        instance=config.instance,
        use_pid_dir=config.use_pid_dir,
        metrics=_listen(config.global_defs.metrics_listen),
        needed=needed(config),
        image=image_modules(config),
    )


def _listen(text: str | None) -> tuple[str, int] | None:
    # core reports a malformed value with its line; the daemon then runs without metrics.
    try:
        return parse_listen(text) if text else None
    except ValueError:
        return None


def read_settings(path: str | os.PathLike[str], config_id: str | None = None) -> DaemonSettings:
    return settings(load(Path(path), config_id=config_id, script_env=None).config)


def pid_names(base: Path, s: DaemonSettings) -> dict[str, Path]:
    """keepalived's pid file names: ``keepalived.pid``, ``vrrp.pid``, ``checkers.pid`` in
    ``base``; in ``base/keepalived/`` with ``use_pid_dir`` or an ``instance``, whose name is
    then appended (``vrrp_NAME.pid``); in ``base/keepalived/NAMESPACE/`` with a network
    namespace (where keepalived's bind mount of its pid directory shows them)."""
    if s.instance or s.use_pid_dir or s.net_namespace:
        base = base / "keepalived"
    if s.net_namespace:
        base = base / s.net_namespace
    suffix = f"_{s.instance}" if s.instance else ""
    return {
        "watchdog": base / f"keepalived{suffix}.pid",
        "vrrpd": base / f"vrrp{suffix}.pid",
        "checkd": base / f"checkers{suffix}.pid",
    }


def syslog_suffix(s: DaemonSettings) -> str:
    """keepalived's syslog ident suffix: ``_NAMESPACE`` then ``_INSTANCE``, each if set."""
    return "".join(f"_{part}" for part in (s.net_namespace, s.instance) if part)
