"""Which user runs a script: keepalived's order of choice, and the uid/gid it resolves to.

An explicit ``user [group]`` on the script wins, then global ``script_user``, then the user
``keepalived_script`` if it exists, then the caller's own uid/gid. ``choose_user`` is the first
half (pure, on configured names), so ``pykeepalivedctl check`` and the daemons agree on it;
``resolve_identity`` is the second (asks the system's user database).
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from scripts.errors import ScriptRefused

DEFAULT_SCRIPT_USER = "keepalived_script"

#: A configured ``user [group]`` as plain names, before the user database is asked.
UserGroup = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Identity:
    """A resolved uid/gid; empty ``groups`` is keepalived's default (no supplementary groups)."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    source: str = "self"  # script | script_user | default | self

    @property
    def privileged(self) -> bool:
        return self.uid == 0 or self.gid == 0


def resolve_identity(user: str | None, group: str | None, *, source: str = "script") -> Identity:
    """Identity for ``user``/``group``; None means keepalived_script, else the caller's own."""
    if user is None:
        try:
            pw = pwd.getpwnam(DEFAULT_SCRIPT_USER)
        except KeyError:
            uid, gid = os.getuid(), os.getgid()
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            return Identity(name, uid, gid, source="self")
        return Identity(pw.pw_name, pw.pw_uid, pw.pw_gid, source="default")
    try:
        pw = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except KeyError:
        raise ScriptRefused(f"script user {user!r} does not exist") from None
    gid = pw.pw_gid
    groups: tuple[int, ...] = ()
    if group:
        # ``user :group`` (leading colon) also sets the user's supplementary groups.
        supplementary = group.startswith(":")
        name = group.lstrip(":")
        if name:
            try:
                gid = grp.getgrnam(name).gr_gid if not name.isdigit() else int(name)
            except KeyError:
                raise ScriptRefused(f"script group {name!r} does not exist") from None
        if supplementary:
            groups = tuple(os.getgrouplist(pw.pw_name, gid))
    return Identity(pw.pw_name, pw.pw_uid, gid, groups, source=source)


def choose_user(
    own: UserGroup | None, script_user: UserGroup | None
) -> tuple[str | None, str | None, str]:
    """``(user, group, user_source)`` for a script: its own user, else global ``script_user``.

    ``user`` None means neither is set: :func:`resolve_identity` then picks ``keepalived_script``
    or the caller's own user.
    """
    if own is not None:
        return own[0], own[1], "script"
    if script_user is not None:
        return script_user[0], script_user[1], "script_user"
    return None, None, "script"
