"""watchdog.spawn's reaper: a forked child's exit code or signal, as asyncio reports them."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from watchdog.spawn import ForkedChild


def _fork(then: str) -> int:
    pid = os.fork()
    if pid == 0:  # the child never returns to pytest
        if then == "exit 3":
            os._exit(3)
        signal.pause()
        os._exit(0)
    return pid


def test_exit_code_is_reported_and_a_reaped_child_cannot_be_signalled() -> None:
    async def scenario() -> None:
        child = ForkedChild(_fork("exit 3"))
        assert await child.wait() == 3
        assert child.returncode == 3
        with pytest.raises(ProcessLookupError):
            child.terminate()

    asyncio.run(scenario())


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_death_by_signal_is_minus_the_signal(stop: str) -> None:
    async def scenario() -> None:
        child = ForkedChild(_fork("pause"))
        assert child.returncode is None
        getattr(child, stop)()
        expected = signal.SIGTERM if stop == "terminate" else signal.SIGKILL
        assert await child.wait() == -expected
        assert await child.wait() == -expected  # waiting again is fine, as with asyncio's

    asyncio.run(scenario())
