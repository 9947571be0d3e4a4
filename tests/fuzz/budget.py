"""How long each fuzz test runs: bounded in CI, raised by hand.

CI runs every fuzz test with its ``ci`` example count (a few seconds each). For a long run:

    PYKEEPALIVED_FUZZ_EXAMPLES=5000 PYTHONPATH=. .venv/bin/python -m pytest -q -p no:logging \\
        --timeout=0 tests/fuzz

(``--timeout=0``: pytest's 120 s per test would cut the run short; docs/reliability.md
records such runs). A crash hypothesis finds is shrunk and printed;
it becomes a regression test next to the fuzz test that found it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

__all__ = ["ENV", "fuzz"]

ENV = "PYKEEPALIVED_FUZZ_EXAMPLES"
F = TypeVar("F", bound=Callable[..., Any])


def fuzz(ci: int) -> Callable[[F], F]:
    """Hypothesis settings for one fuzz test: ``ci`` examples unless ``$ENV`` says more."""
    examples = int(os.environ.get(ENV, "0")) or ci
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
