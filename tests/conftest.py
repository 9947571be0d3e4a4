"""Shared fixtures: the network-namespace lab (tests/lab_fixtures.py) is available everywhere."""

import os

from hypothesis import settings

from bus.logs import LOG_TO_ENV

pytest_plugins = ["tests.lab_fixtures"]

# Namespace tests and benchmarks share two cores with the property tests: a per-example
# deadline would fail on machine load, not on a bug. The example counts stay bounded.
settings.register_profile("pykeepalived", deadline=None)
settings.load_profile("pykeepalived")

# Every process a test starts logs to its stderr, where the test reads it, and never to the
# host's syslog (the daemon's default destination, as keepalived's).
os.environ[LOG_TO_ENV] = "console"
