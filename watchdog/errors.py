"""Errors raised by the watchdog package.

WatchdogError
└── NamespaceUnavailable   the network namespace to run in cannot be entered (missing, no rights)
"""

from __future__ import annotations


class WatchdogError(Exception):
    """Base class for every error the watchdog package raises."""


class NamespaceUnavailable(WatchdogError):
    """``net_namespace``/``-s`` names a namespace this process cannot enter."""
