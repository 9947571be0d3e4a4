"""Script checks that depend on the host: does a script exist, which user runs it.

keepalived's `-t` verdict depends on them (exit 6 "SECURITY VIOLATION" when an existing script is
configured without `enable_script_security`), so `load` runs them against the real system; tests
pass a fake `ScriptEnv`. Which user runs a script and whether its path is safe to run as root
are the script runner's rules (`scripts.choose_user`, `scripts.unsafe_components`), the same the
daemons apply when they run it; `script_spec` builds the runner's input from the model.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import scripts
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
    """The first reason running ``path`` as root is unsafe (keepalived's script security)."""
    problems = scripts.unsafe_components(path, os.path.realpath(path))
    return problems[0] if problems else None


SYSTEM = ScriptEnv(_which, _user_exists, _insecure)


@dataclass(frozen=True, slots=True)
class _Use:
    script: Script
    at: tuple[str, ...]
    user: UserGroup | None  # explicit user for this script, if any
    tracked_name: str | None  # vrrp_script name when tracked by someone


_NOTIFY_KEYWORDS = (
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify_deleted",
    "notify",
    "notify_master_rx_lower_pri",
)
_GLOBAL_SCRIPTS = (
    "startup_script",
    "shutdown_script",
    "notify_fifo_script",
    "vrrp_notify_fifo_script",
    "lvs_notify_fifo_script",
)


def _uses(config: Config) -> Iterator[_Use]:
    tracked = {t.name for i in config.instances for t in i.track_script} | {
        t.name for s in config.sync_groups for t in s.track_script
    }
    for s in config.vrrp_scripts:
        if s.script is not None:
            at = ("vrrp_script", s.name, "script")
            yield _Use(s.script, at, s.user, s.name if s.name in tracked else None)
    yield from _notify_uses(config)
    for f in _GLOBAL_SCRIPTS:
        sc = getattr(config.global_defs, f)
        if sc is not None:
            yield _Use(sc, ("global_defs", f), _explicit(sc), None)
    yield from _lvs_uses(config)


def _notify_uses(config: Config) -> Iterator[_Use]:
    for owner_kw, objs in (
        ("vrrp_instance", config.instances),
        ("vrrp_sync_group", config.sync_groups),
    ):
        for o in objs:
            for f in _NOTIFY_KEYWORDS:
                sc = getattr(o, f, None)
                if sc is not None and sc.command:  # a bare notify_deleted runs nothing
                    yield _Use(sc, (owner_kw, o.name, f), _explicit(sc), None)


def _lvs_uses(config: Config) -> Iterator[_Use]:
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


def _pair(ug: UserGroup | None) -> scripts.UserGroup | None:
    return None if ug is None else (ug.user, ug.group)


def script_spec(config: Config, name: str, script: Script) -> scripts.ScriptSpec:
    """What the script runner needs to run ``script``: keepalived's choice of user (its own
    ``user [group]``, then global ``script_user``) and ``enable_script_security``."""
    g = config.global_defs
    user, group, source = scripts.choose_user(_pair(_explicit(script)), _pair(g.script_user))
    return scripts.ScriptSpec(
        name=name,
        command=script.command,
        user=user,
        group=group,
        user_source=source,
        script_security=g.enable_script_security,
    )


def check_scripts(
    config: Config, env: ScriptEnv = SYSTEM, locs: Mapping[tuple[str, ...], Location] | None = None
) -> list[Problem]:
    locs = locs or {}
    problems: list[Problem] = []

    def add(severity: str, code: str, msg: str, at: tuple[str, ...], text: str) -> None:
        loc = find_location(locs, at)
        # severity is one of Problem's literals (the callers below pass constants); mypy sees str
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
        user, _, _ = scripts.choose_user(_pair(use.user), _pair(g.script_user))
        default_exists = env.user_exists(scripts.DEFAULT_SCRIPT_USER)
        if g.enable_script_security and user is None and not default_exists:
            add(
                "error",
                "script-user",
                f"Unable to set default user keepalived_script "
                f"for script {cmd}: set script_user or a user on the script",
                use.at,
                cmd,
            )
            continue
        # No user and no keepalived_script: the daemon runs it as itself, root.
        runs_as_root = user == "root" if user is not None else not default_exists
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
