"""What changed between two configs, by name, per section (drives safe reloads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.model import Config


@dataclass(frozen=True, slots=True)
class SectionDiff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    instances: SectionDiff = field(default_factory=SectionDiff)
    sync_groups: SectionDiff = field(default_factory=SectionDiff)
    scripts: SectionDiff = field(default_factory=SectionDiff)
    track_files: SectionDiff = field(default_factory=SectionDiff)
    track_processes: SectionDiff = field(default_factory=SectionDiff)
    bfd_instances: SectionDiff = field(default_factory=SectionDiff)
    virtual_server_groups: SectionDiff = field(default_factory=SectionDiff)
    virtual_servers: SectionDiff = field(default_factory=SectionDiff)
    static_ipaddress: SectionDiff = field(default_factory=SectionDiff)
    static_routes: SectionDiff = field(default_factory=SectionDiff)
    static_rules: SectionDiff = field(default_factory=SectionDiff)
    global_defs_changed: bool = False
    # Root options such as net_namespace that keepalived cannot change on reload.
    root_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (
            any(bool(getattr(self, n)) for n in _SECTIONS)
            or self.global_defs_changed
            or self.root_changed
        )


_SECTIONS = (
    "instances",
    "sync_groups",
    "scripts",
    "track_files",
    "track_processes",
    "bfd_instances",
    "virtual_server_groups",
    "virtual_servers",
    "static_ipaddress",
    "static_routes",
    "static_rules",
)


def _named(old: Sequence[Any], new: Sequence[Any]) -> SectionDiff:
    o = {x.name: x for x in old}
    n = {x.name: x for x in new}
    return SectionDiff(
        added=tuple(k for k in n if k not in o),
        removed=tuple(k for k in o if k not in n),
        changed=tuple(k for k in n if k in o and o[k] != n[k]),
    )


def _static(old: Sequence[Any], new: Sequence[Any], key: str) -> SectionDiff:
    # Static items have no names; an item is identified by its key (address / destination), and
    # anything else differing under the same key is a change.
    o = {str(getattr(x, key)) if key else repr(x): x for x in old}
    n = {str(getattr(x, key)) if key else repr(x): x for x in new}
    return SectionDiff(
        added=tuple(k for k in n if k not in o),
        removed=tuple(k for k in o if k not in n),
        changed=tuple(k for k in n if k in o and o[k] != n[k]),
    )


def diff(old: Config, new: Config) -> ConfigDiff:
    return ConfigDiff(
        instances=_named(old.instances, new.instances),
        sync_groups=_named(old.sync_groups, new.sync_groups),
        scripts=_named(old.vrrp_scripts, new.vrrp_scripts),
        track_files=_named(old.track_files, new.track_files),
        track_processes=_named(old.track_processes, new.track_processes),
        bfd_instances=_named(old.bfd_instances, new.bfd_instances),
        virtual_server_groups=_named(old.virtual_server_groups, new.virtual_server_groups),
        virtual_servers=_named(old.virtual_servers, new.virtual_servers),
        static_ipaddress=_static(old.static_ipaddress, new.static_ipaddress, "address"),
        static_routes=_static(old.static_routes, new.static_routes, "dest"),
        static_rules=_static(old.static_rules, new.static_rules, ""),
        global_defs_changed=old.global_defs != new.global_defs,
        root_changed=(
            old.net_namespace,
            old.instance,
            old.use_pid_dir,
            old.child_wait_time,
            old.other,
        )
        != (new.net_namespace, new.instance, new.use_pid_dir, new.child_wait_time, new.other),
    )
