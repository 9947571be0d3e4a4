"""``pykeepalived -t``: report every problem in a configuration and exit with keepalived's codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from core import format_problem, load, system_interfaces


def config_test(
    path: Path, *, config_id: str | None, log_file: str = "-", strict_includes: bool = False
) -> int:
    """Print each problem (to stderr, or to ``log_file``) and return the -t exit code."""
    # Interfaces are checked against this host (run -t where the daemon will run).
    result = load(
        path, config_id=config_id, interfaces=system_interfaces(), strict_includes=strict_includes
    )
    out: TextIO = sys.stderr if log_file in ("-", "") else open(log_file, "w")  # noqa: SIM115
    try:
        for problem in result.problems:
            print(format_problem(problem), file=out)
    finally:
        if out is not sys.stderr:
            out.close()
    code: int = result.exit_code
    return code
