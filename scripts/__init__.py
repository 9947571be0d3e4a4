"""The script runner: every script any component runs, run one way.

checkd's vrrp_scripts, vrrpd's and checkd's notify and notify-FIFO scripts, the watchdog's
startup/shutdown scripts and ``pykeepalivedctl check`` all go through here, so keepalived's
rules are written once:

- :class:`ScriptSpec` (``spec``): the plain values a caller hands in, built from its own view
  of the configuration; the runner reads no configuration and imports no component.
- ``identity``: which user runs a script (:func:`choose_user`, :func:`resolve_identity`).
- ``security``: ``enable_script_security``'s path checks (:func:`unsafe_components`).
- ``command``: keepalived's command splitting and program lookup (:func:`split_command`).
- :func:`prepare`: all of the above once per configuration; :class:`ScriptRefused` says why not.
- :func:`spawn` / :func:`terminate`: own process group, scrubbed environment, group kill.
- :func:`run_once`: one bounded run with its output captured (:class:`RunResult`).
- ``fifo``: keepalived's notify FIFOs and their reader scripts (:class:`NotifyFifos`, the set
  a process keeps open across reloads, of :class:`FifoChannel` opened from a
  :class:`FifoSetup`; :class:`FifoError` says why a FIFO cannot be used).

Events are logged under the caller's component name (``checkd.script.timeout``,
``vrrpd.script.kill``, ...), passed in as ``component``.
"""

from scripts.command import Executable, resolve, split_command
from scripts.errors import FifoError, ScriptError, ScriptRefused
from scripts.fifo import FifoChannel, FifoSetup, NotifyFifo, NotifyFifos
from scripts.identity import (
    DEFAULT_SCRIPT_USER,
    Identity,
    UserGroup,
    choose_user,
    resolve_identity,
)
from scripts.prepare import Prepared, prepare
from scripts.run import OUTPUT_LIMIT, RunResult, run_once
from scripts.security import can_execute, setid_root, unsafe_components
from scripts.spawn import CANCEL_GRACE, KILL_GRACE, spawn, terminate
from scripts.spec import ScriptSpec

__all__ = [
    "CANCEL_GRACE",
    "DEFAULT_SCRIPT_USER",
    "KILL_GRACE",
    "OUTPUT_LIMIT",
    "Executable",
    "FifoChannel",
    "FifoError",
    "FifoSetup",
    "Identity",
    "NotifyFifo",
    "NotifyFifos",
    "Prepared",
    "RunResult",
    "ScriptError",
    "ScriptRefused",
    "ScriptSpec",
    "UserGroup",
    "can_execute",
    "choose_user",
    "prepare",
    "resolve",
    "resolve_identity",
    "run_once",
    "setid_root",
    "spawn",
    "split_command",
    "terminate",
    "unsafe_components",
]
