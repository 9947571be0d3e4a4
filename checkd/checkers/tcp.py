"""TCP_CHECK: the connection completes within ``connect_timeout``.

Standard library only (asyncio ``sock_connect`` through ``checkd.checkers.connection``): a
connect is all keepalived checks, so there is nothing for a library to add.
"""

from __future__ import annotations

from checkd.checkers.connection import connect_tcp
from checkd.checkers.errors import ProbeFailed
from checkd.checkers.result import CheckResult, ConnectOptions


async def tcp_check(opts: ConnectOptions) -> CheckResult:
    """One TCP_CHECK attempt: connect, then close at once (keepalived sends nothing)."""
    try:
        sock = await connect_tcp(opts)
    except ProbeFailed as exc:
        return CheckResult.failed(str(exc))
    sock.close()
    return CheckResult.passed(f"connected to {opts.peer}")
