"""Script checks that depend on the host: does a script exist, which user runs it.

keepalived's `-t` verdict depends on them (exit 6 "SECURITY VIOLATION" when an existing script is
configured without `enable_script_security`), so `load` runs them against the real system; tests
pass a fake `ScriptEnv`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from core.model import Config, Script, UserGroup
from core.problems import Location, Problem, find_location

SECURITY_CODE = "script-security"
_SHELL_CHARS = set("<>|&;$`()*?[]{}~")


@dataclass(frozen=True, slots=True)
class ScriptEnv:
    which: Callable[[str], str | None]
    user_exists: Callable[[str], bool]
    # Why a root-run script is unsafe (a writable path component), or None if it is safe.
    insecure: Callable[[str], str | None] = lambda path: None


def _which(cmd: str) -> str | None:
    if "/" in cmd:
        return cmd if os.path.isfile(cmd) and os.access(cmd, os.X_OK) else None
    return shutil.which(cmd)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _insecure(path: str) -> str | None:
    """keepalived's rule: every component of the real path is owned by root and not writable by
    group (unless the group is root) or others; sticky directories are exempt from the write
    checks."""
    real = os.path.realpath(path)
    parts = [real]
    while parts[-1] != os.path.dirname(parts[-1]):
        parts.append(os.path.dirname(parts[-1]))
    for part in parts:
        try:
            st = os.stat(part)
        except OSError as exc:
            return f"{part}: {exc.strerror}"
        if st.st_uid != 0:
            return f"{part} is not owned by root"
        if os.path.isdir(part) and st.st_mode & stat.S_ISVTX:
            continue
        if st.st_mode & stat.S_IWOTH:
            return f"{part} is world-writable"
        if st.st_mode & stat.S_IWGRP and st.st_gid != 0:
            return f"{part} is writable by group {st.st_gid}"
    return None


SYSTEM = ScriptEnv(_which, _user_exists, _insecure)


@dataclass(frozen=True, slots=True)
class _Use:
    script: Script
    at: tuple[str, ...]
    user: UserGroup | None  # explicit user for this script, if any
    tracked_name: str | None  # vrrp_script name when tracked by someone


def _uses(config: Config) -> Iterator[_Use]:
    g = config.global_defs
    tracked = {t.name for i in config.instances for t in i.track_script} | {
        t.name for s in config.sync_groups for t in s.track_script
    }
    for s in config.vrrp_scripts:
        if s.script is not None:
            yield _Use(
                s.script,
                ("vrrp_script", s.name, "script"),
                s.user,
                s.name if s.name in tracked else None,
            )
    notify = (
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify_deleted",
        "notify",
        "notify_master_rx_lower_pri",
    )
    for owner_kw, objs in (
        ("vrrp_instance", config.instances),
        ("vrrp_sync_group", config.sync_groups),
    ):
        for o in objs:
            for f in notify:
                sc = getattr(o, f, None)
                if sc is not None and sc.command:  # a bare notify_deleted runs nothing
                    yield _Use(sc, (owner_kw, o.name, f), _explicit(sc), None)
    for f in (
        "startup_script",
        "shutdown_script",
        "notify_fifo_script",
        "vrrp_notify_fifo_script",
        "lvs_notify_fifo_script",
    ):
        sc = getattr(g, f)
        if sc is not None:
            yield _Use(sc, ("global_defs", f), _explicit(sc), None)
    for vs in config.virtual_servers:
        for f in ("quorum_up", "quorum_down"):
            sc = getattr(vs, f)
            if sc is not None:
                yield _Use(sc, ("virtual_server", vs.name, f), _explicit(sc), None)
        for rs in vs.real_servers:
            for f in ("notify_up", "notify_down"):
                sc = getattr(rs, f)
                if sc is not None:
                    yield _Use(sc, ("virtual_server", vs.name), _explicit(sc), None)
            for c in rs.checkers:
                if c.misc_path is not None:
                    yield _Use(c.misc_path, ("virtual_server", vs.name), c.user, None)


def _explicit(sc: Script) -> UserGroup | None:
    return UserGroup(sc.user, sc.group) if sc.user else None


def check_scripts(
    config: Config, env: ScriptEnv = SYSTEM, locs: Mapping[tuple[str, ...], Location] | None = None
) -> list[Problem]:
    locs = locs or {}
    problems: list[Problem] = []

    def add(severity: str, code: str, msg: str, at: tuple[str, ...], text: str) -> None:
        loc = find_location(locs, at)
        problems.append(Problem(severity, code, msg, loc.file, loc.line, loc.col, text))  # type: ignore[arg-type]

    g = config.global_defs
    found_any = False
    for use in _uses(config):
        argv = use.script.argv
        if not argv:
            continue
        cmd = argv[0]
        if any(c in _SHELL_CHARS for c in cmd):
            # keepalived hands such commands to the shell; it does not look them up.
            continue
        if use.user is not None and not env.user_exists(use.user.user):
            # keepalived disables a script whose user does not exist, without failing -t.
            add(
                "warning",
                "script-user-missing",
                f"user '{use.user.user}' for script {cmd} does not exist - script disabled",
                use.at,
                use.user.user,
            )
            continue
        path = env.which(cmd)
        if path is None:
            if use.tracked_name is not None:
                add(
                    "error",
                    "script-not-found",
                    f"Disabling track script {use.tracked_name} since not found/accessible ({cmd})",
                    use.at,
                    cmd,
                )
            continue
        found_any = True
        if (
            g.enable_script_security
            and use.user is None
            and g.script_user is None
            and not env.user_exists("keepalived_script")
        ):
            add(
                "error",
                "script-user",
                f"Unable to set default user keepalived_script "
                f"for script {cmd}: set script_user or a user on the script",
                use.at,
                cmd,
            )
            continue
        runs_as_root = (
            use.user.user == "root"
            if use.user is not None
            else g.script_user.user == "root"
            if g.script_user is not None
            else not env.user_exists("keepalived_script")
        )
        reason = env.insecure(path) if g.enable_script_security and runs_as_root else None
        if reason is not None:
            # keepalived disables the script; -t fails only for a tracked vrrp_script.
            add(
                "error" if use.tracked_name is not None else "warning",
                "script-insecure",
                f"Disabling script {cmd} due to insecure permissions ({reason}): a root-run "
                "script must not be writable by anyone but root",
                use.at,
                cmd,
            )
    if found_any and not g.enable_script_security:
        add(
            "warning",
            SECURITY_CODE,
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled.",
            ("global_defs",),
            "",
        )
    return problems
