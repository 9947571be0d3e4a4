"""Shared fixtures: the network-namespace lab (tests/lab_fixtures.py) is available everywhere."""

pytest_plugins = ["tests.lab_fixtures"]
