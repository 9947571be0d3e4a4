"""Benchmark: parse a 1,000-instance keepalived.conf with core.load() and with `keepalived -t`.

Run as root from the repository root:

    PYTHONPATH=. python bench/config_parse.py [--instances N] [--runs 5] [--quick] [--json FILE]

keepalived runs in a throw-away network namespace holding the interfaces the config uses.
Not a timed test: it prints both timings and the ratio.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from result_file import write_figures

import core

IFACES = ("eth0", "eth1", "eth2", "eth3")


def generate(n: int) -> str:
    # No scripts: keepalived 2.2.7 -t kills itself (exit 143) when a script runs as another user,
    # and exits 6 without script security; either would time something other than parsing.
    parts = ["global_defs {\n  router_id bench\n}\n"]
    for i in range(n):
        iface = IFACES[i // 250 % len(IFACES)]
        other = IFACES[(i // 250 + 1) % len(IFACES)]
        vrid = i % 250 + 1
        # IPv6 documentation prefixes: 2,000 distinct VIPs do not fit in the IPv4 ones.
        parts.append(
            f"vrrp_instance VI_{i} {{\n"
            f"  state BACKUP\n  interface {iface}\n  virtual_router_id {vrid}\n"
            f"  priority {100 + i % 50}\n  advert_int 1\n"
            f"  virtual_ipaddress {{\n    fe80::{i:x}:1/64 dev {iface}\n"
            f"    2001:db8:{i:x}::1/64\n  }}\n"
            f"  track_interface {{\n    {other} weight -10\n  }}\n"
            "}\n"
        )
    return "".join(parts)


def best_of(n: int, fn: object) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def time_keepalived(conf: Path, runs: int) -> float | None:
    exe = shutil.which("keepalived") or "/usr/sbin/keepalived"
    if not os.path.exists(exe) or os.geteuid() != 0:
        return None
    ns = f"pk-bench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for k, name in enumerate(IFACES):
            subprocess.run(
                ["ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", f"pkb{k}"],
                check=True,
            )
            subprocess.run(["ip", "-n", ns, "link", "set", name, "up"], check=True)
        with tempfile.TemporaryDirectory() as run:
            cmd = [
                "ip",
                "netns",
                "exec",
                ns,
                exe,
                "-t",
                "-f",
                str(conf),
                "-p",
                f"{run}/k.pid",
                "-r",
                f"{run}/v.pid",
                "-c",
                f"{run}/c.pid",
            ]

            def once() -> None:
                proc = subprocess.run(cmd, capture_output=True, check=False, timeout=120)
                if proc.returncode != 0:
                    raise RuntimeError(
                        f"keepalived -t exited {proc.returncode}: {proc.stderr[:300]!r}"
                    )

            return best_of(runs, once)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="200 instances, best of 2")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.quick:
        args.instances, args.runs = 200, 2
    with tempfile.TemporaryDirectory() as d:
        conf = Path(d) / "keepalived.conf"
        conf.write_text(generate(args.instances))
        result = core.load(conf, config_id="bench")
        assert len(result.config.instances) == args.instances
        errors = [p for p in result.problems if p.severity in ("error", "fatal")]
        assert not errors, core.format_problem(errors[0])
        ours = best_of(args.runs, lambda: core.load(conf, config_id="bench"))
        theirs = time_keepalived(conf, args.runs)
    conf_lines = len(generate(args.instances).splitlines())
    print(f"config: {args.instances} vrrp_instances, {conf_lines} lines; best of {args.runs}")
    print(f"pykeepalived core.load(): {ours * 1000:8.1f} ms")
    if theirs is None:
        print("keepalived -t:            skipped (not installed or not root)")
    else:
        print(f"keepalived -t (2.2.7):    {theirs * 1000:8.1f} ms")
        print(f"ratio ours/keepalived:    {ours / theirs:8.2f}x")
    write_figures(
        args.json,
        {"instances": args.instances, "lines": conf_lines, "runs": args.runs, "ours_s": ours,
         "keepalived_s": theirs, "ratio": ours / theirs if theirs else None},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
