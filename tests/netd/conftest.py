"""Lab fixtures for netd's own runs (the root conftest will load the plugin for everyone)."""

from tests.lab_fixtures import lab, lab3, make_lab

__all__ = ["lab", "lab3", "make_lab"]
