"""``pykeepalived``: the daemon. Takes keepalived's flags so a unit file can swap the binary.

It always stays in the foreground (``-n`` is accepted for compatibility) and runs the watchdog,
which starts the bus, core, netd, checkd and vrrpd processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import structlog

from bus import Component, RuntimeDir, RuntimeDirLocked, add_common_arguments, start_component
from bus.errors import LogOptionsInvalid
from bus.logs import LogOptions
from bus.logs import configure as configure_logs
from bus.runtime import DEFAULT_RUNTIME_DIR
from bus.signals import SIGNAL_FUNCTIONS
from core.listen import parse_listen
from core.schema import c_integer
from watchdog import children, daemonflags, netns, pidfile, scripts
from watchdog.errors import NamespaceUnavailable
from watchdog.settings import DaemonSettings, pid_names, read_settings, syslog_suffix
from watchdog.supervisor import Supervisor

log = structlog.get_logger(__name__)

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pykeepalived",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-f",
        "--use-file",
        type=Path,
        default=Path(DEFAULT_CONFIG),
        help=f"configuration file (default {DEFAULT_CONFIG})",
    )
    p.add_argument("-P", "--vrrp", action="store_true", help="only run the VRRP subsystem")
    p.add_argument("-C", "--check", action="store_true", help="only run the checker subsystem")
    add_common_arguments(p)
    p.add_argument(
        "-n",
        "--dont-fork",
        action="store_true",
        help="accepted for compatibility; pykeepalived never forks into the background",
    )
    p.add_argument(
        "-R",
        "--dont-respawn",
        action="store_true",
        help="stop everything when a child dies instead of restarting it",
    )
    p.add_argument(
        "-t",
        "--config-test",
        nargs="?",
        const="-",
        metavar="LOG_FILE",
        help="check the configuration and exit (0 ok, 4 cannot run, 5 errors, "
        "6 script security); report to LOG_FILE or stderr",
    )
    p.add_argument("-i", "--config-id", help="id for @conditional lines (default: short hostname)")
    p.add_argument("-p", "--pid", type=Path, help="watchdog pid file")
    p.add_argument("-r", "--vrrp_pid", type=Path, help="VRRP (vrrpd) pid file")
    p.add_argument("-c", "--checkers_pid", type=Path, help="checker (checkd) pid file")
    p.add_argument("-v", "--version", action=_Version, help="print the version and exit")
    p.add_argument(
        "-T", "--genhash", action="store_true", help="genhash utility mode (must come first)"
    )
    p.add_argument(
        "--metrics",
        type=_listen,
        metavar="HOST:PORT",
        help="serve Prometheus metrics there (pykeepalived only; off by default; "
        "overrides global_defs metrics_listen)",
    )
    _add_keepalived_only_options(p)
    return p


# keepalived 2.2.7 options for subsystems or features that do not exist here. Each is accepted
# (unit files and /etc/default/keepalived pass them) and named in one warning at start, with
# why, so nobody relies on it silently.
_NOT_IMPLEMENTED = {
    "snmp": "-x/--snmp is ignored: there is no SNMP subsystem",
    "snmp_agent_socket": "-A/--snmp-agent-socket is ignored: there is no SNMP subsystem",
}


def _add_keepalived_only_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-B", "--no_bfd", action="store_true", help="accepted: there is no BFD subsystem"
    )
    p.add_argument("--all", action="store_true", help="accepted: every component always runs")
    p.add_argument("-u", "--umask", type=_umask, help="umask for created files (numeric)")
    p.add_argument(
        "-X",
        "--release-vips",
        action="store_true",
        help="remove configured VIPs found at start-up that pykeepalived did not add (netd)",
    )
    p.add_argument(
        "-V",
        "--dont-release-vrrp",
        action="store_true",
        help="at stop, keep the VIPs, routes and rules and send no priority-0 advert",
    )
    p.add_argument(
        "-I",
        "--dont-release-ipvs",
        action="store_true",
        help="leave the virtual servers' datapath in the kernel at stop",
    )
    p.add_argument(
        "-d", "--dump-conf", action="store_true", help="log the parsed configuration (core)"
    )
    p.add_argument(
        "-a",
        "--address-monitoring",
        action="store_true",
        help="log every address addition/deletion netlink reports (netd)",
    )
    p.add_argument("-b", "--bfd_pid", type=Path, help="accepted: there is no BFD subsystem")
    p.add_argument("-x", "--snmp", action="store_true", help="accepted: there is no SNMP subsystem")
    p.add_argument("-A", "--snmp-agent-socket", help="accepted: there is no SNMP subsystem")
    p.add_argument(
        "-s",
        "--namespace",
        metavar="NAME",
        help="run in network namespace NAME (overrides net_namespace)",
    )
    p.add_argument(
        "-m", "--core-dump", action="store_true", help="allow core dumps of every process"
    )
    p.add_argument(
        "-M",
        "--core-dump-pattern",
        nargs="?",
        const="core",
        help="also set kernel.core_pattern (default 'core'), restored at exit",
    )
    p.add_argument(
        "-e",
        "--all-config",
        action="store_true",
        help="a missing included file is an error (same as includet)",
    )
    p.add_argument(
        "--signum",
        metavar="SIGFUNC",
        help="print the signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON",
    )


def _listen(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"metrics address {exc}") from None


def _umask(text: str) -> int:
    """keepalived reads -u with strtoul(…, 0): 0x.. hex, a leading 0 octal, else decimal."""
    try:
        value = c_integer(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid umask {text!r}") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"umask {text!r} is out of range")
    return value


def _genhash(argv: list[str]) -> int:
    """keepalived's -T: the rest of the command line is genhash's."""
    from ctl import genhash

    p = argparse.ArgumentParser(prog="pykeepalived -T", description="genhash utility mode")
    genhash.add_arguments(p)
    return genhash.run(p.parse_args(argv))


def signum(name: str) -> int:
    """``--signum``: print the number as keepalived does; 1 for a name it does not know."""
    number = SIGNAL_FUNCTIONS.get(name)
    if number is None:
        print(f"Unknown sigfunc {name}", file=sys.stderr)
        return 1
    print(number)
    return 0


def _apply_process_options(args: argparse.Namespace) -> Callable[[], None]:
    """Options that shape the process (inherited by every child); returns the undo."""
    if args.umask is not None:
        os.umask(args.umask)
    for attr, what in _NOT_IMPLEMENTED.items():
        if getattr(args, attr):
            print(f"pykeepalived: {what}", file=sys.stderr)
    if args.core_dump or args.core_dump_pattern:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    if args.core_dump_pattern:
        return _set_core_pattern(args.core_dump_pattern)
    return lambda: None


def _set_core_pattern(pattern: str) -> Callable[[], None]:
    old = CORE_PATTERN.read_text()
    CORE_PATTERN.write_text(pattern)

    def restore() -> None:
        CORE_PATTERN.write_text(old)

    return restore


def _version() -> str:
    # Imported only when asked: importlib.metadata costs the daemon's start-up ~20 ms.
    from importlib import metadata

    try:
        return metadata.version("pykeepalived")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Version(argparse.Action):
    """``-v``: argparse's ``version`` action, but the version is looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"pykeepalived {_version()}")
        parser.exit()


def pidfile_paths(
    args: argparse.Namespace, runtime: RuntimeDir, conf: DaemonSettings
) -> dict[str, Path]:
    """keepalived's /run/keepalived.pid etc. for the default runtime dir, else inside it;
    ``-p``/``-r``/``-c`` win over both."""
    base = Path("/run") if str(runtime.path) == DEFAULT_RUNTIME_DIR else runtime.path
    names = pid_names(base, conf)
    given = {"watchdog": args.pid, "vrrpd": args.vrrp_pid, "checkd": args.checkers_pid}
    return {name: given[name] or path for name, path in names.items()}


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] in (["-T"], ["--genhash"]):
        return _genhash(words[1:])
    args = build_parser().parse_args(words)
    if args.signum is not None:
        return signum(args.signum)
    if not args.config_id:
        args.config_id = socket.gethostname().split(".", 1)[0]
    if args.config_test is not None:
        return _config_test(args)
    if not args.use_file.exists():
        print(f"pykeepalived: configuration file {args.use_file} not found", file=sys.stderr)
        return 6  # keepalived's NOT_CONFIGURED
    conf = read_settings(args.use_file, args.config_id)
    overridden = conf.net_namespace if args.namespace else None
    if args.namespace:
        conf = dataclasses.replace(conf, net_namespace=args.namespace)  # -s wins, as keepalived
    # Before anything else starts (threads, the bus, children): they all inherit it.
    if not _entered(conf.net_namespace):
        return 1
    if args.umask is None and conf.umask is not None:
        args.umask = conf.umask  # -u wins, as in keepalived
    if args.metrics is None:
        args.metrics = conf.metrics  # --metrics wins over metrics_listen
    try:
        log_options = LogOptions.from_args(args)
    except LogOptionsInvalid as exc:
        print(f"pykeepalived: {exc}", file=sys.stderr)
        return 1
    log_options = dataclasses.replace(log_options, ident_suffix=syslog_suffix(conf))
    # The children inherit the environment, so they log where and how the watchdog does.
    os.environ.update(log_options.environment())
    undo = _apply_process_options(args)
    try:
        return _run(args, conf, log_options, overridden)
    finally:
        undo()


def _config_test(args: argparse.Namespace) -> int:
    from core.configtest import config_test

    # As keepalived's -t: interfaces are checked in the namespace the daemon would use.
    namespace = args.namespace
    if namespace is None and args.use_file.exists():
        namespace = read_settings(args.use_file, args.config_id).net_namespace
    if not _entered(namespace):
        return 1
    return config_test(
        args.use_file,
        config_id=args.config_id,
        log_file=args.config_test,
        strict_includes=args.all_config,
    )


def _entered(namespace: str | None) -> bool:
    """Enter ``namespace`` if there is one; False (with the reason on stderr) if it cannot be."""
    if namespace is None:
        return True
    try:
        netns.enter(namespace)
    except NamespaceUnavailable as exc:
        print(f"pykeepalived: {exc}; not starting", file=sys.stderr)
        return False
    return True


def _run(
    args: argparse.Namespace,
    conf: DaemonSettings,
    log_options: LogOptions,
    overridden: str | None = None,
) -> int:
    runtime = RuntimeDir.at(args.runtime_dir)
    try:
        with runtime.exclusive("daemon"):
            # keepalived's parent runs startup_script before any child and shutdown_script
            # after the last one; here both run outside the component (see watchdog.scripts).
            configure_logs("watchdog", log_options)
            if conf.net_namespace:
                log.info(
                    "watchdog.namespace.entered",
                    namespace=conf.net_namespace,
                    overrides=overridden,
                )
            scripts.run_hook(conf.hooks.get("startup_script"))
            # Every child may use its full wait, one after another.
            grace = conf.child_wait_time * len(children.START_ORDER) + 2
            try:
                return start_component(
                    "watchdog", _watchdog_body(args, runtime, conf), args, grace=grace
                )
            finally:
                scripts.run_hook(conf.hooks.get("shutdown_script"))
    except RuntimeDirLocked as exc:
        print(f"pykeepalived: {exc}", file=sys.stderr)
        return 1


def _image_modules(args: argparse.Namespace, conf: DaemonSettings) -> tuple[tuple[str, str], ...]:
    """``conf.image`` less netd's LVS driver under -P, where netd programs no virtual server."""
    if "--no-lvs" in children.netd_role(args.vrrp, args.check):
        return tuple((c, m) for c, m in conf.image if not m.startswith("netd.lvs."))
    return conf.image


def _watchdog_body(
    args: argparse.Namespace, runtime: RuntimeDir, conf: DaemonSettings
) -> Callable[[Component], Coroutine[Any, Any, None]]:
    paths = pidfile_paths(args, runtime, conf)
    specs = daemonflags.forward(args, children.specs(args, runtime.path, paths))

    async def body(comp: Component) -> None:
        pidfile.write(paths["watchdog"], os.getpid())
        supervisor = Supervisor(
            comp,
            specs,
            respawn=not args.dont_respawn,
            metrics=args.metrics,
            stop_wait=conf.child_wait_time,
            needed=conf.needed,
            image=_image_modules(args, conf),
        )
        try:
            await supervisor.run()
        finally:
            pidfile.remove(paths["watchdog"], os.getpid())
        if supervisor.failure:
            raise SystemExit(1)

    return body


if __name__ == "__main__":
    sys.exit(main())
