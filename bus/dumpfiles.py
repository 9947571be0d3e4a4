"""Where keepalived's signal-triggered dump files go, and how they are written.

keepalived's processes answer USR1 (and vrrpd USR2 / SIGRTMIN+2) with a text file:
``keepalived.data``, ``keepalived.stats``, ``keepalived.json`` from VRRP and
``keepalived_check.data`` from the checker. All land in ``$TMPDIR`` when it is an absolute
path to a directory, else ``/tmp``, mode 0600, replaced atomically so a reader never sees half
a file. Two components write them (vrrpd and checkd), and components may not import each
other, so this lives on the ground floor; in ``bus/`` because that is where the rest of the
per-process plumbing every component shares sits (``bus.component``'s signal handling,
``bus.signals``' keepalived signal numbers), and a dump file is the answer to such a signal.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def dump_dir() -> Path:
    tmp = os.environ.get("TMPDIR", "")
    return Path(tmp) if tmp.startswith("/") and os.path.isdir(tmp) else Path("/tmp")


def write(name: str, text: str) -> Path:
    """Atomically replace ``<dump dir>/<name>`` with ``text``, mode 0600."""
    directory = dump_dir()
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return directory / name
