"""Errors raised by the bus package.

BusError
├── RuntimeDirError      the runtime directory cannot be used (permissions, path too long)
│   └── RuntimeDirLocked another daemon already owns this runtime directory
├── MessageRejected      an incoming message failed validation (carries a short reason code)
└── LogOptionsInvalid    PYKEEPALIVED_LOG_FORMAT or PYKEEPALIVED_LOG_TO holds something unknown
"""

from __future__ import annotations


class BusError(Exception):
    """Base class for every error the bus package raises."""


class RuntimeDirError(BusError):
    """The runtime directory cannot be created, locked or used."""


class RuntimeDirLocked(RuntimeDirError):
    """Another process already holds the lock on this runtime directory."""

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(
            f"runtime directory {path} is in use by another daemon ({holder}); "
            "give each daemon its own --runtime-dir"
        )
        self.path = path
        self.holder = holder


class MessageRejected(BusError):
    """A bus message was dropped; `reason` is a short stable code used as a counter name."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class LogOptionsInvalid(BusError):
    """The logging environment variables ask for a format or destination that does not exist."""
