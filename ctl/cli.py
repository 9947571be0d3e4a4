"""``pykeepalivedctl``: the operator's tool. Talks to a running daemon through its runtime dir."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence

import core
from bus import RuntimeDir, messages
from bus.envelope import Event
from bus.errors import RuntimeDirError
from ctl import busclient, genhash, render, snapshot
from ctl.values import FieldError, parse_fields

Command = Callable[[argparse.Namespace], int]


def cmd_tail(args: argparse.Namespace) -> int:
    runtime = RuntimeDir.at(args.runtime_dir)
    busclient.require_bus(runtime)
    colour = sys.stdout.isatty() and not args.json

    def emit(event: Event) -> None:
        line = render.as_json(event) if args.json else render.pretty(event, colour)
        print(line, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(busclient.tail(runtime, args.topics, emit, count=args.count))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    runtime = RuntimeDir.at(args.runtime_dir)
    busclient.require_bus(runtime)
    try:
        body = parse_fields(args.fields)
    except FieldError as exc:
        print(f"pykeepalivedctl publish: {exc}", file=sys.stderr)
        return 2
    if args.topic.startswith("health.") and "name" not in body:
        body["name"] = args.topic.removeprefix("health.")
    asyncio.run(busclient.publish(runtime, args.topic, body, src=args.src))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    runtime = RuntimeDir.at(args.runtime_dir)
    busclient.require_bus(runtime)
    if args.watch:
        return _watch_status(runtime, args.json)
    snap = asyncio.run(snapshot.collect(runtime))
    if args.json:
        print(json.dumps(snap.to_json(), indent=2, default=str))
    else:
        print(snapshot.status_table(snap))
    return 0


def _watch_status(runtime: RuntimeDir, as_json: bool) -> int:
    """Redraw the status in place until interrupted (one JSON object per line with --json)."""
    try:
        while True:
            snap = asyncio.run(snapshot.collect(runtime))
            if as_json:
                print(json.dumps(snap.to_json(), default=str), flush=True)
            else:
                print(f"\x1b[H\x1b[J{snapshot.status_table(snap)}", flush=True)
    except KeyboardInterrupt:
        return 0


def cmd_dump(args: argparse.Namespace) -> int:
    runtime = RuntimeDir.at(args.runtime_dir)
    busclient.require_bus(runtime)
    snap = asyncio.run(snapshot.collect(runtime))
    print(json.dumps(snap.to_json(with_model=True), indent=2, default=str))
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    runtime = RuntimeDir.at(args.runtime_dir)
    busclient.require_bus(runtime)
    answer = asyncio.run(busclient.reload(runtime, src=f"ctl-{os.getpid()}"))
    if answer is None:
        print("pykeepalivedctl reload: core did not answer (is it running?)", file=sys.stderr)
        return 4
    if answer.topic == "config.rejected":
        rejected = messages.ConfigRejected.decode(answer.topic, answer.body)
        print(
            f"reload rejected; generation {rejected.kept_generation} keeps running:",
            file=sys.stderr,
        )
        for problem in rejected.problems:
            print(problem, file=sys.stderr)
        return 5
    current = messages.ConfigCurrent.decode(answer.topic, answer.body)
    changes = {
        section: change
        for section, change in current.diff.items()
        if (any(change.values()) if isinstance(change, dict) else change)
    }
    print(f"reloaded: generation {current.generation} hash {current.hash[:12]}")
    for section, change in sorted(changes.items()):
        print(f"  {section}: {json.dumps(change)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    if len(args.files) > 1 and not args.cluster:
        print("pykeepalivedctl check: several files need --cluster", file=sys.stderr)
        return 2
    results = {path: core.load(path, config_id=args.config_id) for path in args.files}
    problems = [p for r in results.values() for p in r.problems]
    code = max(r.exit_code for r in results.values())
    if args.cluster:
        across = core.cluster_lint(results)
        problems += across
        if any(p.severity == "error" for p in across):
            code = max(code, core.EXIT_ERRORS)
    if args.json:
        found = [core.problem_to_dict(p) for p in problems]
        print(json.dumps({"exit_code": code, "problems": found}, indent=2))
    else:
        for problem in problems:
            print(core.format_problem(problem))
        if not problems:
            print(f"{', '.join(args.files)}: no problems found")
    return code


def cmd_demo(args: argparse.Namespace) -> int:
    from ctl import demo, lvsdemo  # pyroute2 and the lab are only needed here

    if os.geteuid() != 0:
        print("pykeepalivedctl demo: needs root (it builds network namespaces)", file=sys.stderr)
        return 4
    if args.lvs:
        try:
            lvsdemo.run_lvs_demo(sys.stdout, timeout=args.timeout)
        except lvsdemo.LvsDemoError as exc:
            print(f"pykeepalivedctl demo --lvs: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        return 0
    opts = demo.DemoOptions(
        nodes=args.nodes,
        crash=not args.graceful,
        advert_int=args.advert_int,
        vrrp_version=args.vrrp_version,
        timeout=args.timeout,
    )
    try:
        demo.run_demo(opts)
    except demo.DemoError as exc:
        print(f"pykeepalivedctl demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pykeepalivedctl", description=__doc__)
    parser.add_argument(
        "--runtime-dir",
        help="the daemon's runtime directory "
        "(default $PYKEEPALIVED_RUNTIME_DIR or /run/pykeepalived)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("status", help="instances, checks and components of the running daemon")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="redraw in place until Ctrl-C")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("dump", help="everything the daemon publishes as state, as JSON")
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("reload", help="reload the configuration (like SIGHUP) and show the result")
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("check", help="lint a configuration file (exit codes as keepalived -t)")
    p.add_argument("files", nargs="+", metavar="file", help="keepalived.conf to check")
    p.add_argument(
        "--cluster",
        action="store_true",
        help="the files are the nodes of one cluster: also check them against each other",
    )
    p.add_argument("--json", action="store_true", help="machine-readable problems")
    p.add_argument("-i", "--config-id", help="id for @conditional lines (default: hostname)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("tail", help="print live bus events")
    p.add_argument(
        "topics", nargs="*", help="exact topics or prefixes ending in * (default: everything)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("-n", "--count", type=int, help="exit after this many events")
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("publish", help="publish one event (e.g. as an external checker)")
    p.add_argument("topic", help="e.g. health.chk_web")
    p.add_argument("fields", nargs="*", help="key=value (true/false/numbers/JSON are typed)")
    p.add_argument("--src", default=f"ctl-{os.getpid()}", help="publisher name in the envelope")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser(
        "demo",
        help="elect a master among namespaced nodes, stop it, time the takeover",
        description="Build a lab of network namespaces, run pykeepalived on each node, kill "
        "the master and show who takes over and how long it took on the wire. Needs root; "
        "the lab is removed afterwards.",
    )
    p.add_argument("--nodes", type=int, default=3, help="nodes in the lab (default 3)")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--crash",
        action="store_true",
        help="kill -9 the master's whole daemon group (default): takeover after the "
        "master-down interval",
    )
    how.add_argument(
        "--graceful",
        action="store_true",
        help="SIGTERM the master: its priority-0 advert hands over after the skew time",
    )
    p.add_argument("--advert-int", type=float, default=1.0, help="advert_int in seconds")
    p.add_argument("--vrrp-version", type=int, choices=(2, 3), default=2)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for an election")
    p.add_argument(
        "--lvs",
        action="store_true",
        help="instead: a load-balancing director (virtual_server, 3 real servers), one real "
        "server failing and coming back",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "genhash",
        help="print the MD5 digest of a page for HTTP_GET/SSL_GET (like keepalived's genhash)",
        description="Fetch one URL as HTTP_GET/SSL_GET does and print the MD5 of its body, "
        "the value for a url block's digest.",
    )
    genhash.add_arguments(p)
    p.set_defaults(func=genhash.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except busclient.NoBusError as exc:
        print(f"pykeepalivedctl: {exc}", file=sys.stderr)
        return 3
    except RuntimeDirError as exc:
        print(f"pykeepalivedctl: {exc}", file=sys.stderr)
        return 4  # keepalived's "missing permission"


if __name__ == "__main__":
    sys.exit(main())
