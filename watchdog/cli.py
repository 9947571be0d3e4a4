"""``pykeepalived``: the daemon. Takes keepalived's flags so a unit file can swap the binary.

It always stays in the foreground (``-n`` is accepted for compatibility) and runs the watchdog,
which starts the bus, core, netd, checkd and vrrpd processes.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import structlog

from bus import Component, RuntimeDir, RuntimeDirLocked, add_common_arguments, start_component
from bus.logs import configure as configure_logs
from bus.runtime import DEFAULT_RUNTIME_DIR
from watchdog import children, pidfile, scripts
from watchdog.supervisor import STOP_WAIT, Supervisor

log = structlog.get_logger(__name__)

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
# Every child may use its full stop wait, one after another.
STOP_GRACE = STOP_WAIT * len(children.START_ORDER) + 2


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
    p.add_argument("-v", "--version", action="version", version=f"pykeepalived {_version()}")
    return p


def _version() -> str:
    try:
        return metadata.version("pykeepalived")
    except metadata.PackageNotFoundError:
        return "unknown"


def pidfile_paths(args: argparse.Namespace, runtime: RuntimeDir) -> dict[str, Path]:
    """keepalived's /run/keepalived.pid etc. for the default runtime dir; else inside it."""
    base = Path("/run") if str(runtime.path) == DEFAULT_RUNTIME_DIR else runtime.path
    return {
        "watchdog": args.pid or base / "keepalived.pid",
        "vrrpd": args.vrrp_pid or base / "vrrp.pid",
        "checkd": args.checkers_pid or base / "checkers.pid",
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.config_id:
        args.config_id = socket.gethostname().split(".", 1)[0]
    if args.config_test is not None:
        from core.configtest import config_test

        return config_test(args.use_file, config_id=args.config_id, log_file=args.config_test)
    if not args.use_file.exists():
        print(f"pykeepalived: configuration file {args.use_file} not found", file=sys.stderr)
        return 6  # keepalived's NOT_CONFIGURED
    runtime = RuntimeDir.at(args.runtime_dir)
    try:
        with runtime.exclusive("daemon"):
            # keepalived's parent runs startup_script before any child and shutdown_script
            # after the last one; here both run outside the component (see watchdog.scripts).
            configure_logs(
                "watchdog",
                console=args.log_console,
                detail=args.log_detail,
                facility=args.log_facility,
            )
            hooks = scripts.read_hooks(args.use_file, args.config_id)
            scripts.run_hook(hooks.get("startup_script"))
            try:
                return start_component(
                    "watchdog", _watchdog_body(args, runtime), args, grace=STOP_GRACE
                )
            finally:
                scripts.run_hook(hooks.get("shutdown_script"))
    except RuntimeDirLocked as exc:
        print(f"pykeepalived: {exc}", file=sys.stderr)
        return 1


def _watchdog_body(
    args: argparse.Namespace, runtime: RuntimeDir
) -> Callable[[Component], Coroutine[Any, Any, None]]:
    paths = pidfile_paths(args, runtime)
    specs = children.specs(args, runtime.path, paths)

    async def body(comp: Component) -> None:
        pidfile.write(paths["watchdog"], os.getpid())
        supervisor = Supervisor(comp, specs, respawn=not args.dont_respawn)
        try:
            await supervisor.run()
        finally:
            pidfile.remove(paths["watchdog"], os.getpid())
        if supervisor.failure:
            raise SystemExit(1)

    return body


if __name__ == "__main__":
    sys.exit(main())
