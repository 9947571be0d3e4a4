"""Shared fixtures: the network-namespace lab (tests/lab_fixtures.py) is available everywhere."""

from hypothesis import settings

pytest_plugins = ["tests.lab_fixtures"]

# Namespace tests and benchmarks share two cores with the property tests: a per-example
# deadline would fail on machine load, not on a bug. The example counts stay bounded.
settings.register_profile("pykeepalived", deadline=None)
settings.load_profile("pykeepalived")
