"""From a :class:`ScriptSpec` to a script ready to exec: program, identity, script security.

Done once per (re)configuration, so a refused script is reported once, with the reason and the
fix, rather than at every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from scripts import security
from scripts.command import Executable, resolve
from scripts.errors import ScriptRefused
from scripts.identity import DEFAULT_SCRIPT_USER, Identity, resolve_identity
from scripts.spec import ScriptSpec


@dataclass(frozen=True, slots=True)
class Prepared:
    """A script ready to exec, checked once per (re)configuration."""

    exe: Executable
    identity: Identity
    warnings: tuple[str, ...] = ()


def prepare(spec: ScriptSpec) -> Prepared:
    """Resolve the program and the user, apply script security; ScriptRefused says why not."""
    identity = resolve_identity(spec.user, spec.group, source=spec.user_source)
    if spec.script_security and identity.source == "self":
        # keepalived (and core's check) treat this as a config error and do not run it.
        raise ScriptRefused(
            "enable_script_security is set but no user to run the script as: user "
            f"{DEFAULT_SCRIPT_USER!r} does not exist; fix: set script_user in "
            "global_defs or a user on the script"
        )
    exe = resolve(spec.command)
    if not exe.via_shell and not security.can_execute(exe.path, identity):
        raise ScriptRefused(f"{exe.path} is not executable by user {identity.user}")
    warnings: tuple[str, ...] = ()
    # keepalived checks a setuid/setgid-root program whoever it runs as: exec makes it root.
    setid = None if exe.via_shell else security.setid_root(exe.path)
    if identity.privileged or setid:
        problems = security.unsafe_components(exe.configured_path, exe.path)
        if problems:
            detail = "; ".join(problems)
            who = f"{identity.user} (uid {identity.uid})"
            if not identity.privileged:
                who += f", {setid}"
            if spec.script_security:
                fix = "" if setid else "; or set script_user to an unprivileged user"
                raise ScriptRefused(f"refusing to run {exe.path} as {who}: {detail}{fix}")
            warnings = (
                f"unsafe permissions for {exe.path} run as {who}: {detail} "
                "(runs anyway: enable_script_security is off)",
            )
    return Prepared(exe, identity, warnings)
