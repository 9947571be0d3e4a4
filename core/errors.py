"""Exception hierarchy of the core package.

Config mistakes are never raised: they become `Problem`s. These exceptions are for misuse of the
API (e.g. a wire dict that does not describe a `Config`).
"""

from __future__ import annotations


class CoreError(Exception):
    """Base class of every exception raised by `core`."""


class WireFormatError(CoreError):
    """A wire dict does not decode to a `Config` (wrong field, wrong type)."""
