"""Whether running a script as its user is safe: keepalived's ``enable_script_security``.

A script run as uid 0 or gid 0, or setuid/setgid root, must live on a path whose every
component (configured and resolved) is owned by root and not writable by group (unless root's
group) or others; sticky directories are exempt from the write checks. With
``enable_script_security`` an unsafe script is refused; without it it runs and the problem is
logged. Messages name the exact path, what is wrong and the fix, which keepalived's "Unsafe
permissions found for script" does not. ``pykeepalivedctl check`` (``core.scriptcheck``) asks
the same :func:`unsafe_components` as the daemons that run the scripts.
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import PurePosixPath

from scripts.identity import Identity


def can_execute(path: str, who: Identity) -> bool:
    st = os.stat(path)
    mode = st.st_mode
    if who.uid == 0:
        return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if st.st_uid == who.uid:
        return bool(mode & stat.S_IXUSR)
    if st.st_gid == who.gid or st.st_gid in who.groups:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def setid_root(path: str) -> str | None:
    """ "setuid root" / "setgid root" when exec gives whoever runs ``path`` root's ids."""
    st = os.stat(path)
    if st.st_mode & stat.S_ISUID and st.st_uid == 0:
        return "setuid root"
    if st.st_mode & stat.S_ISGID and st.st_gid == 0:
        return "setgid root"
    return None


def unsafe_components(*paths: str) -> list[str]:
    """Problems that make running these paths as root unsafe; empty when safe.

    Each problem names the path, what is wrong and the fix.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for path in paths:
        p = PurePosixPath(os.path.abspath(path))
        for component in [p, *p.parents]:
            text = str(component)
            if text in seen:
                continue
            seen.add(text)
            problem = _component_problem(text)
            if problem:
                problems.append(problem)
    return problems


def _component_problem(path: str) -> str | None:
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path}: cannot stat ({exc.strerror})"
    mode = st.st_mode
    what = "directory" if stat.S_ISDIR(mode) else "symlink" if stat.S_ISLNK(mode) else "file"
    if st.st_uid != 0:
        return f"{path} ({what}) is owned by uid {st.st_uid}, not root; fix: chown root {path}"
    # A symlink's own mode is always 0777 and means nothing: only replacing it redirects the
    # path, and that needs write access to its directory, which is a component checked too.
    if stat.S_ISLNK(mode) or (stat.S_ISDIR(mode) and mode & stat.S_ISVTX):
        return None
    if mode & stat.S_IWOTH:
        return (
            f"{path} ({what}) is world-writable (mode {stat.S_IMODE(mode):04o}); "
            f"fix: chmod o-w {path}"
        )
    if mode & stat.S_IWGRP and st.st_gid != 0:
        return (
            f"{path} ({what}) is group-writable (group {_group_name(st.st_gid)}, mode "
            f"{stat.S_IMODE(mode):04o}); fix: chmod g-w {path}"
        )
    return None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
