"""checkd's exceptions."""

from __future__ import annotations


class CheckdError(Exception):
    """Base of everything checkd raises on purpose."""


class PlanError(CheckdError):
    """The published configuration cannot be turned into checks (malformed model)."""


class PoolError(CheckdError):
    """An event names a checker the virtual server's pool does not have."""
