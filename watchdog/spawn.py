"""How the watchdog starts a child: forked from one preloaded image (the default), or exec'd.

Six CPython interpreters that each import zmq, msgpack, structlog, the bus client and their
component cost six copies of the same pages and six import times. So the watchdog imports
every component's modules once, before the first fork (:meth:`Launcher.preload`), moves what
it has built into the garbage collector's permanent generation (``gc.freeze()``: a collection
would otherwise write to every object's header and copy the page), and forks each child from
that image; the child then runs exactly what ``python -m <component>`` runs (its ``__main__``),
so the Procfile, a component started by hand and a forked child behave alike.

A forked child starts as a copy of a multi-threaded process that holds sockets, locks and a
zmq context, so before it runs its component it makes itself look freshly exec'd
(:func:`_become`): a process group of its own, a fresh interpreter's signal dispositions and
mask, no inherited descriptors (the watchdog's ``flock`` on the runtime dir, its bus sockets,
its event loop's self-pipe), syslog reopened under its own ident. Its component creates its own
zmq context after the fork; the inherited one is never touched (pyzmq skips ``term()`` in a
process other than the one that created it, and the child leaves with ``os._exit``).

``PYKEEPALIVED_SPAWN=exec`` starts each child with ``python -m <component>`` instead (a
debugger or coverage run per child; the footprint bench compares the two).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import importlib
import os
import runpy
import signal
import sys
import syslog
import traceback
from typing import NoReturn, Protocol

import structlog

from bus.component import EXIT_SOFTWARE, PARENT_ENV
from bus.signals import HANDLED_SIGNALS
from watchdog import ksm
from watchdog.children import ChildSpec

log = structlog.get_logger(__name__)

SPAWN_ENV = "PYKEEPALIVED_SPAWN"
# What each component's ``__main__`` imports: loaded into the image before the first fork.
ENTRY_MODULES = {
    "bus": "bus.broker",
    "core": "core.process",
    "netd": "netd.process",
    "checkd": "checkd.process",
    "vrrpd": "vrrpd.process",
}
# The wait status of a child reaped by someone else: exit 255, which means "respawn".
UNKNOWN_STATUS = 255 << 8
# A fresh interpreter ignores these (CPython's start-up); every other signal is SIG_DFL.
_IGNORED_AT_START = frozenset({signal.SIGPIPE, signal.SIGXFSZ})


class ChildProcess(Protocol):
    """What the supervisor needs of a running child (asyncio's ``Process`` has it too)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def send_signal(self, signum: int) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class ForkedChild:
    """A child forked by this process, reaped through a pidfd watched by the event loop.

    ``returncode`` follows asyncio's convention: the exit code, or minus the signal number.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        # A child that already exited is a zombie until reaped, so its pidfd still opens.
        self._pidfd = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            # Reaped by someone else (a waitpid(-1) in a library): gone, its status unknown.
            log.warning("watchdog.child.reaped_elsewhere", child_pid=self.pid)
            pid, status = self.pid, UNKNOWN_STATUS
        if pid == 0:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, signum: int) -> None:
        if self.returncode is not None:
            # Reaped: the pid may already belong to someone else.
            raise ProcessLookupError(self.pid)
        os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Launcher:
    """Starts children: forks them from the preloaded image, or execs ``python -m``."""

    def __init__(self, *, fork: bool | None = None) -> None:
        self.fork = os.environ.get(SPAWN_ENV, "fork") != "exec" if fork is None else fork
        self._merge = self.fork and ksm.wanted()  # once, before the first fork

    def preload(self, names: tuple[str, ...], extra: tuple[str, ...] = ()) -> None:
        """Import the components named and the ``extra`` modules (those not imported yet),
        then freeze the image."""
        if not self.fork:
            return
        for module in (*(ENTRY_MODULES[name] for name in names), *extra):
            importlib.import_module(module)
        gc.collect()
        gc.freeze()
        if self._merge:
            self._merge = False
            ksm.mark_mergeable()

    async def start(self, spec: ChildSpec) -> ChildProcess:
        if not self.fork:
            return await self._exec(spec)
        # Whatever the watchdog built since the last fork (a restart): its garbage collected,
        # the rest frozen, so neither process's collector writes to the pages they share.
        self.preload((spec.name,))
        # Unflushed output would be written twice, once by each process.
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        # Blocked across the fork, so no signal reaches the child while it still has the
        # watchdog's handlers (asyncio's would wake the watchdog's loop through their shared
        # self-pipe); the child unblocks them once its own dispositions are in place.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            pid = os.fork()
            if pid == 0:
                _become(spec, parent)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return ForkedChild(pid)

    async def _exec(self, spec: ChildSpec) -> ChildProcess:
        # The child arms PR_SET_PDEATHSIG itself (see bus.component.follow_parent): a
        # preexec_fn is unsafe here because libzmq's threads are running in this process.
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        return await asyncio.create_subprocess_exec(*spec.argv, env=env, process_group=0)


def _become(spec: ChildSpec, parent: int) -> NoReturn:
    """In the forked child: shed the watchdog's state, run the component, never return."""
    code = EXIT_SOFTWARE
    try:
        os.setpgid(0, 0)  # as exec'd children: the terminal's ^C reaches the watchdog only
        _reset_signals()
        syslog.closelog()  # its socket is the watchdog's; the component reopens its own
        _release_inherited_fds()
        gc.enable()
        os.environ[PARENT_ENV] = str(parent)
        sys.argv = [sys.executable, *spec.args]
        runpy.run_module(spec.name, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return 1


def _reset_signals() -> None:
    """A fresh interpreter's dispositions, not the watchdog's handlers; the handled signals stay
    blocked until the component's own handlers exist."""
    signal.set_wakeup_fd(-1)  # the watchdog's event loop self-pipe
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        if signum == signal.SIGINT:
            handler: signal.Handlers | object = signal.default_int_handler
        elif signum in _IGNORED_AT_START:
            handler = signal.SIG_IGN
        else:
            handler = signal.SIG_DFL
        with contextlib.suppress(OSError, ValueError):  # those the C library reserves
            # handler is one of the three kinds signal.signal takes; typeshed's union for
            # default_int_handler does not accept it through a variable
            signal.signal(signum, handler)  # type: ignore[arg-type]
    # The ones the component will handle stay blocked until bus.component has installed its
    # handlers: sent in between (the watchdog's pid file names the child at once), a TERM or
    # USR2 would otherwise meet the default action and kill the child.
    signal.pthread_sigmask(signal.SIG_SETMASK, HANDLED_SIGNALS)


def _release_inherited_fds() -> None:
    """Let go of every descriptor above stderr.

    Each is pointed at /dev/null rather than closed: the watchdog's Python objects (sockets,
    its event loop's selector) still exist in this copy and may close their descriptor when
    collected, which must not close one the component has opened since under the same number.
    """
    inherited = [int(entry) for entry in os.listdir("/proc/self/fd")]
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    for fd in inherited:
        if fd > 2 and fd != null and _is_open(fd):  # skip the listing's own, closed again
            os.dup2(null, fd, inheritable=False)
    os.close(null)


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True
