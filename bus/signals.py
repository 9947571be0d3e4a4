"""Signals as keepalived uses them, and which ones a component takes instead of dying.

keepalived names its signals by function (``keepalived --signum=STATS_CLEAR`` prints 63);
scripts and unit files send those numbers, so the same names map to the same numbers here.
Every other signal whose default action would end the process is caught and logged instead:
a stray ``kill -ALRM`` or ``kill -63`` must never take a high-availability daemon down.
"""

from __future__ import annotations

import signal

SIGJSON = signal.SIGRTMIN + 2
SIGSTATS_CLEAR = signal.SIGRTMAX - 1

#: ``--signum=NAME`` -> the number keepalived 2.2.7 prints for it.
SIGNAL_FUNCTIONS: dict[str, int] = {
    "STOP": signal.SIGTERM,
    "RELOAD": signal.SIGHUP,
    "DATA": signal.SIGUSR1,
    "STATS": signal.SIGUSR2,
    "STATS_CLEAR": SIGSTATS_CLEAR,
    "JSON": SIGJSON,
}

# Not caught: TERM/INT (they stop the component), KILL/STOP (cannot be), CHLD (asyncio's
# child watcher), PIPE/XFSZ (Python ignores them already) and the synchronous faults, which
# mean the process cannot go on.
_LEFT_ALONE = {
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGCHLD,
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGABRT,
    signal.SIGTRAP,
    signal.SIGSYS,
    # Default actions that do not end the process.
    signal.SIGCONT,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGURG,
    signal.SIGWINCH,
}

#: Every signal a component catches: the ones it acts on and the ones it only logs.
CAUGHT_SIGNALS: tuple[int, ...] = tuple(
    sorted(int(s) for s in signal.valid_signals() if s not in _LEFT_ALONE)
)


#: Every signal a component has a handler for once it runs (``bus.component``): the caught
#: ones and the two that stop it. A child forked from the watchdog's image keeps these
#: blocked until its handlers exist, so one sent that early waits instead of killing it.
HANDLED_SIGNALS: frozenset[int] = frozenset({signal.SIGTERM, signal.SIGINT, *CAUGHT_SIGNALS})


def signal_name(signum: int) -> str:
    """``SIGTERM``, or ``SIGRTMIN+2`` for real-time signals (which have no enum member)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
