"""checkd: health verdicts for vrrp_script, track_file and track_process, and LVS pools.

The LVS side (docs/checkers.md): ``build_plan`` resolves virtual servers, real servers and
checkers from the configuration; ``start_pool``/``apply_event``/``reload_pool``/``remove_pool``
keep each virtual server's pool as keepalived does and return what to do as data;
``LvsService``/``PoolRunner`` run them in the daemon (one ``TimerHeap`` for every checker) and
publish ``check.pool.<vs>``, ``check.rs.<vs>/<rs>`` and ``health.vs:<vs>`` (docs/bus.md).

``python -m checkd --runtime-dir DIR`` follows ``config.current`` and publishes one retained
``health.<name>`` event per tracked check (re-sent on change, every 5 s and to late joiners):

============  =====  ==============================================================
field         type   meaning
============  =====  ==============================================================
``name``      str    the check's name (vrrp_script / track_file / vrrp_track_process)
``ok``        bool   the object's own verdict (see below)
``kind``      str    ``script``, ``file`` or ``process``
``reason``    str    why: ``exited with status 1``, ``timed out``, ``file missing, reads
                     as 0``, ``2 running, quorum 1.. met``, ``disabled: …``, ``init_fail``,
                     ``resumed`` (a restarted checkd's, checkd.resume)
``weight``    int    the object's configured weight (vrrpd applies weights, because a
                     ``track_* { NAME weight W }`` may override it)
``reverse``   bool   the object's ``weight … reverse``
``rc``        int    scripts: last exit status (-N: killed by signal N)
``value``     int    files: the integer read from the file
``count``     int    processes: how many matching processes run now
``disabled``  bool   present and true when the check cannot run at all (bad user,
                     missing or unsafe script, …); ``ok`` is then false
============  =====  ==============================================================

``ok`` for scripts follows rise/fall; for files it is ``value == 0`` with weight 0, else
``value * weight >= -253``; for processes ``quorum <= count <= quorum_max`` after
fork_delay/terminate_delay. A ``vrrp_script`` without a command is left to an external
checker (docs/bus.md).
"""

from checkd.checker_state import RetryState, first_delay, mail_body
from checkd.checkplan import (
    CheckerPlan,
    CheckPlan,
    RealServerPlan,
    SorryServerPlan,
    VirtualServerPlan,
    build_plan,
)
from checkd.errors import CheckdError, PlanError, PoolError
from checkd.files import FileCheck, parse_value, read_value, strtol
from checkd.helper_policy import HelperPolicy
from checkd.hysteresis import Debounce, RiseFall
from checkd.lvs_runner import PoolRunner
from checkd.lvs_service import LvsService
from checkd.plan import FileSpec, Plan, ProcessSpec, ScriptSpec, Spec, normalize, plan_from_wire
from checkd.pool import Transition, apply_event, reload_pool, remove_pool, start_pool
from checkd.pool_messages import (
    Action,
    CheckerVerdict,
    CheckerWeight,
    Event,
    FifoLine,
    LogEvent,
    Mail,
    ProbeResult,
    RunScript,
    Shutdown,
    file_check_weight,
    misc_dynamic_weight,
)
from checkd.pool_state import MemberView, PoolSnapshot, PoolState
from checkd.processes import ProcessCheck, ProcInfo, ProcTable, matches
from checkd.schedule import TimerHeap, start_delay
from checkd.scripts import ScriptCheck
from checkd.supervisor import CheckSet, Timing
from checkd.verdict import Verdict
from core.vsgroups import VsgMember

__all__ = [
    "Action",
    "CheckPlan",
    "CheckSet",
    "CheckdError",
    "CheckerPlan",
    "CheckerVerdict",
    "CheckerWeight",
    "Debounce",
    "Event",
    "FifoLine",
    "FileCheck",
    "FileSpec",
    "HelperPolicy",
    "LogEvent",
    "LvsService",
    "Mail",
    "MemberView",
    "Plan",
    "PlanError",
    "PoolError",
    "PoolRunner",
    "PoolSnapshot",
    "PoolState",
    "ProbeResult",
    "ProcInfo",
    "ProcTable",
    "ProcessCheck",
    "ProcessSpec",
    "RealServerPlan",
    "RetryState",
    "RiseFall",
    "RunScript",
    "ScriptCheck",
    "ScriptSpec",
    "Shutdown",
    "SorryServerPlan",
    "Spec",
    "TimerHeap",
    "Timing",
    "Transition",
    "Verdict",
    "VirtualServerPlan",
    "VsgMember",
    "apply_event",
    "build_plan",
    "file_check_weight",
    "first_delay",
    "mail_body",
    "matches",
    "misc_dynamic_weight",
    "normalize",
    "parse_value",
    "plan_from_wire",
    "read_value",
    "reload_pool",
    "remove_pool",
    "start_delay",
    "start_pool",
    "strtol",
]
