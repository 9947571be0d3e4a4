"""The runtime directory: where the bus sockets, locks and pid files live.

Resolution order: explicit ``--runtime-dir``, then ``PYKEEPALIVED_RUNTIME_DIR``, then
``/run/pykeepalived``. The directory is created 0750 (root-only group access) and sockets are
bound under a restrictive umask, because anything that can connect to ``pub.sock`` can publish
health verdicts.

A second ``bind()`` on an ipc path silently steals it from the first process, so whoever binds
takes an exclusive ``flock`` first and a second daemon fails with a clear message instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bus.errors import RuntimeDirError, RuntimeDirLocked

DEFAULT_RUNTIME_DIR = "/run/pykeepalived"
ENV_VAR = "PYKEEPALIVED_RUNTIME_DIR"
# How soon a socket retries a connect the broker was not there for: a child forked with the
# bus connects before the bus has bound (it starts in the same instant), and libzmq's default
# (100 ms plus up to 100 ms of jitter) then cost every start-up 0.1-0.2 s per hop on the way
# to the first advert (docs/benchmarks.md, "Start-up since"). Doubling up to the maximum keeps
# a long bus outage as cheap as before: ten attempts a second per socket at most.
RECONNECT_IVL_MS = 10
RECONNECT_IVL_MAX_MS = 100
# sockaddr_un.sun_path is 108 bytes including the NUL; libzmq refuses longer paths.
_MAX_IPC_PATH = 107


def resolve(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the runtime directory the caller asked for, without creating it."""
    if explicit:
        return Path(explicit).absolute()
    env = os.environ.get(ENV_VAR)
    return Path(env).absolute() if env else Path(DEFAULT_RUNTIME_DIR)


@dataclass(frozen=True, slots=True)
class RuntimeDir:
    """Paths inside one daemon group's runtime directory."""

    path: Path

    @classmethod
    def at(cls, explicit: str | os.PathLike[str] | None = None) -> RuntimeDir:
        return cls(resolve(explicit))

    @property
    def pub_endpoint(self) -> str:
        """Publishers connect here (the broker's XSUB)."""
        return f"ipc://{self.path / 'pub.sock'}"

    @property
    def sub_endpoint(self) -> str:
        """Subscribers connect here (the broker's XPUB)."""
        return f"ipc://{self.path / 'sub.sock'}"

    def lock_path(self, name: str) -> Path:
        return self.path / f"{name}.lock"

    def create(self) -> None:
        """Create the directory 0750; refuse paths too long for an ipc socket."""
        longest = str(self.path / "pub.sock")
        if len(longest.encode()) > _MAX_IPC_PATH:
            raise RuntimeDirError(
                f"runtime directory {self.path} is too long for an ipc socket path "
                f"({len(longest)} > {_MAX_IPC_PATH} bytes); choose a shorter --runtime-dir"
            )
        try:
            self.path.mkdir(mode=0o750, parents=True, exist_ok=True)
            os.chmod(self.path, 0o750)
        except OSError as exc:
            raise RuntimeDirError(f"cannot create runtime directory {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold ``<dir>/<name>.lock`` exclusively for the duration of the block.

        The lock file records the holder's pid so the error message can name it.
        """
        self.create()
        path = self.lock_path(name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown pid"
                raise RuntimeDirLocked(str(self.path), f"pid {holder}") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    def is_locked(self, name: str) -> bool:
        """True while some process holds ``name``'s lock (a live bus, not stale files)."""
        path = self.lock_path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        except PermissionError:
            raise RuntimeDirError(
                f"permission denied on {self.path}: the bus is for root only (or the "
                "runtime directory's group); run this as root"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


@contextlib.contextmanager
def restrictive_umask() -> Iterator[None]:
    """Bind sockets 0700 so only root (and the group via the 0750 directory) can reach them."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)
