"""What to run and as whom: the plain values every caller hands the runner.

Callers build a ``ScriptSpec`` from their own view of the configuration (core's model, or
checkd's wire form) with :func:`scripts.identity.choose_user`, so the runner itself never reads
a configuration and depends on no component.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """A configured command with keepalived's choice of user, ready for :func:`prepare`.

    ``user`` None leaves the choice to the runner: ``keepalived_script`` if it exists, else the
    caller's own uid/gid. ``user_source`` says where an explicit user came from (``script``:
    the script's own ``user [group]``; ``script_user``: global_defs).
    """

    name: str
    command: str
    user: str | None = None
    group: str | None = None
    user_source: str = "script"  # script | script_user (global)
    script_security: bool = False
