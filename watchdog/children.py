"""Which components the watchdog starts, in which order, and with which arguments."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

# Start order; stop order is the reverse, so vrrpd can still send its priority-0 adverts and
# hand its withdrawals to netd before netd, core and the bus go away.
START_ORDER = ("bus", "core", "netd", "checkd", "vrrpd")
# Imported and forked after the others: checkd is not on the way to the first advert (vrrpd
# takes its verdicts whenever they come), so its ~70 ms of imports need not delay it.
START_LATE = frozenset({"checkd"})
# keepalived's exit codes that mean "do not respawn": FATAL, CONFIG, MISSING_PERMISSION.
PERMANENT_EXIT_CODES = frozenset({1, 2, 4})


@dataclass(frozen=True, slots=True)
class ChildSpec:
    name: str
    args: tuple[str, ...]  # after ``python -m <name>``
    pidfile: Path | None = None

    @property
    def argv(self) -> tuple[str, ...]:
        return (sys.executable, "-m", self.name, *self.args)


def wanted(vrrp_only: bool, check_only: bool) -> tuple[str, ...]:
    """keepalived's -P/-C: -P runs only VRRP, -C only the checkers; both or neither runs all.
    netd runs in both: under -C it programs the virtual servers' datapath, as keepalived's
    checker process programs IPVS (see :func:`netd_role`)."""
    if vrrp_only and not check_only:
        skip = {"checkd"}
    elif check_only and not vrrp_only:
        skip = {"vrrpd"}
    else:
        skip = set()
    return tuple(n for n in START_ORDER if n not in skip)


def netd_role(vrrp_only: bool, check_only: bool) -> list[str]:
    """netd's share of -P/-C: with -P no checker decides the pools, so no datapath (keepalived
    -P programs no IPVS); with -C only the datapath (static addresses, routes and rules are
    keepalived's VRRP process's)."""
    if vrrp_only and not check_only:
        return ["--no-lvs"]
    if check_only and not vrrp_only:
        return ["--lvs-only"]
    return []


def launch_order(names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``names`` (in start order) as (imported together before the first fork, started after
    them): the components on the way to the first advert first, :data:`START_LATE` after.
    Only the launch moves; stopping stays the reverse of :data:`START_ORDER`."""
    first = tuple(n for n in names if n not in START_LATE)
    return first, first + tuple(n for n in names if n in START_LATE)


def specs(
    args: argparse.Namespace, runtime_dir: Path, pidfiles: dict[str, Path]
) -> list[ChildSpec]:
    common = ["--runtime-dir", str(runtime_dir)]
    if args.log_console:
        common.append("-l")
    if args.log_detail:
        common.append("-D")
    if args.log_facility:
        common += ["-S", args.log_facility]
    result = []
    for name in wanted(args.vrrp, args.check):
        argv = list(common)
        if name == "netd":
            argv += netd_role(args.vrrp, args.check)
            if args.dont_release_ipvs:
                argv.append("--dont-release-ipvs")  # keepalived's -I: keep the table at stop
        if name == "checkd" and args.check and not args.vrrp:
            argv.append("--no-vrrpd")  # -C: checkd starts the FIFO readers vrrpd would
        if name == "core":
            argv += ["-f", str(args.use_file)]
            if args.config_id:
                argv += ["-i", args.config_id]
        result.append(ChildSpec(name, tuple(argv), pidfiles.get(name)))
    return result
