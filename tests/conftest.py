"""Shared fixtures: the network-namespace lab (tests/lab_fixtures.py) is available everywhere."""

import os
from collections.abc import Generator

import pytest
from hypothesis import settings

from bus.logs import LOG_TO_ENV
from tests.daemon import RUNNING

pytest_plugins = ["tests.lab_fixtures"]

# Namespace tests and benchmarks share two cores with the property tests: a per-example
# deadline would fail on machine load, not on a bug. The example counts stay bounded.
settings.register_profile("pykeepalived", deadline=None)
settings.load_profile("pykeepalived")

# Every process a test starts logs to its stderr, where the test reads it, and never to the
# host's syslog (the daemon's default destination, as keepalived's).
os.environ[LOG_TO_ENV] = "console"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test's report ends with the last lines each running daemon group logged:
    the logs live in runtime dirs that teardown removes, and a rare failure in a full run is
    otherwise left with nothing to read."""
    report = yield
    if report.when == "call" and report.failed:
        for group in list(RUNNING):
            report.sections.append(group.log_tail())
    return report
