"""The checkers' exceptions.

A probe never raises for a failing server: it returns a failed :class:`~checkd.checkers.result.
CheckResult`. :class:`ProbeFailed` is only the internal way out of a probe's steps; socket and
TLS errors are translated into it at the boundary (``checkd.checkers.connection``).
"""

from __future__ import annotations

from checkd.errors import CheckdError


class CheckerError(CheckdError):
    """Base of everything the checkers raise on purpose."""


class CheckerConfigError(CheckerError):
    """A checker's configuration cannot be used (bad hex string, status code, digest, regex)."""


class ProbeFailed(CheckerError):
    """One probe step failed; the message is the operator-facing reason."""
