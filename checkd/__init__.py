"""checkd: health verdicts for vrrp_script, track_file and track_process.

checkd follows ``config.current`` on the bus and publishes one retained ``health.<name>``
event per tracked check (fields in ``Verdict.body``). ``python -m checkd --runtime-dir DIR``.
"""

from checkd.errors import CheckdError, PlanError, ScriptRefused
from checkd.files import FileCheck, parse_value, read_value, strtol
from checkd.hysteresis import Debounce, RiseFall
from checkd.plan import FileSpec, Plan, ProcessSpec, ScriptSpec, Spec, normalize, plan_from_wire
from checkd.processes import ProcessCheck, ProcInfo, ProcTable, matches
from checkd.scripts import RunResult, ScriptCheck, prepare, run_once
from checkd.supervisor import CheckSet, Timing
from checkd.verdict import Verdict

__all__ = [
    "CheckSet",
    "CheckdError",
    "Debounce",
    "FileCheck",
    "FileSpec",
    "Plan",
    "PlanError",
    "ProcInfo",
    "ProcTable",
    "ProcessCheck",
    "ProcessSpec",
    "RiseFall",
    "RunResult",
    "ScriptCheck",
    "ScriptRefused",
    "ScriptSpec",
    "Spec",
    "Timing",
    "Verdict",
    "matches",
    "normalize",
    "parse_value",
    "plan_from_wire",
    "prepare",
    "read_value",
    "run_once",
    "strtol",
]
