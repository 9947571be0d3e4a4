"""core: keepalived.conf language, typed config model, checks, printer, wire codec, diff.

    result = core.load("/etc/keepalived/keepalived.conf", interfaces=core.system_interfaces())
    for p in result.problems:
        print(core.format_problem(p))
    sys.exit(result.exit_code)          # keepalived -t codes: 0, 4, 5, 6

`result.config` is an immutable `Config` as keepalived would run it (its corrections applied:
auth_pass truncated, unknown tracked names dropped, ...). Publish it with `to_wire` /
`config_hash`; on reload compare with `diff(old, new)`. `render(config)` prints it back as
keepalived.conf. `vrrp_settings` / `checker_settings` resolve inherited defaults, and
`election_lint` checks tracker weights across the nodes of a cluster, and `cluster_lint`
every other disagreement between the nodes' files (`pykeepalivedctl check --cluster`).
`script_spec` turns a configured script into what the ground-floor script runner
(`scripts`) runs; `vrrp_fifos` / `checker_fifos` are the notify FIFOs vrrpd and checkd open.
"""

from core.api import (
    EXIT_CANNOT_RUN,
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_SCRIPT_SECURITY,
    LoadResult,
    load,
    loads,
)
from core.checks import check
from core.cluster import cluster_lint
from core.diff import ConfigDiff, SectionDiff, diff
from core.effective import CheckerSettings, VrrpSettings, checker_settings, vrrp_settings
from core.election import election_lint
from core.errors import CoreError, WireFormatError
from core.fifos import checker_fifos, vrrp_fifos
from core.ifcheck import system_interfaces
from core.model import (
    Address,
    Authentication,
    BfdInstance,
    Checker,
    Config,
    Encap,
    GarpExtraIf,
    GarpGroup,
    GlobalDefs,
    HostPort,
    InitFile,
    Nexthop,
    RawOption,
    RealServer,
    Route,
    Rule,
    Script,
    SslConfig,
    SyncGroup,
    TrackFile,
    TrackProcess,
    TrackRef,
    UnicastPeer,
    Url,
    UserGroup,
    VirtualServer,
    VirtualServerGroup,
    Vmac,
    VrrpInstance,
    VrrpScript,
    VsgEntry,
)
from core.problems import Location, Problem, Severity, format_problem
from core.reference import keyword_reference, problem_to_dict
from core.render import render
from core.scriptcheck import ScriptEnv, script_spec
from core.wire import config_hash, from_wire, part_from_wire, part_to_wire, to_wire

__all__ = [
    "EXIT_CANNOT_RUN",
    "EXIT_ERRORS",
    "EXIT_OK",
    "EXIT_SCRIPT_SECURITY",
    "Address",
    "Authentication",
    "BfdInstance",
    "Checker",
    "CheckerSettings",
    "Config",
    "ConfigDiff",
    "CoreError",
    "Encap",
    "GarpExtraIf",
    "GarpGroup",
    "GlobalDefs",
    "HostPort",
    "InitFile",
    "LoadResult",
    "Location",
    "Nexthop",
    "Problem",
    "RawOption",
    "RealServer",
    "Route",
    "Rule",
    "Script",
    "ScriptEnv",
    "SectionDiff",
    "Severity",
    "SslConfig",
    "SyncGroup",
    "TrackFile",
    "TrackProcess",
    "TrackRef",
    "UnicastPeer",
    "Url",
    "UserGroup",
    "VirtualServer",
    "VirtualServerGroup",
    "Vmac",
    "VrrpInstance",
    "VrrpScript",
    "VrrpSettings",
    "VsgEntry",
    "WireFormatError",
    "check",
    "checker_fifos",
    "checker_settings",
    "cluster_lint",
    "config_hash",
    "diff",
    "election_lint",
    "format_problem",
    "from_wire",
    "keyword_reference",
    "load",
    "loads",
    "part_from_wire",
    "part_to_wire",
    "problem_to_dict",
    "render",
    "script_spec",
    "system_interfaces",
    "to_wire",
    "vrrp_fifos",
    "vrrp_settings",
]
