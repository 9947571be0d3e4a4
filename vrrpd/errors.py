"""Exception hierarchy for vrrpd.

Every decoding failure is a :class:`DecodeError` subclass carrying a short machine-readable
``reason`` (the same vocabulary as :class:`vrrpd.validate.DropReason`) and a decoded,
human-readable ``detail`` so a log line never has to say "bogus packet".
"""

from __future__ import annotations

__all__ = [
    "BadAddressCountError",
    "BadChecksumError",
    "BadIntervalError",
    "BadLengthError",
    "BadTypeError",
    "BadVersionError",
    "DecodeError",
    "EncodeError",
    "TooShortError",
    "VrrpdError",
]


class VrrpdError(Exception):
    """Base of every error raised by the vrrpd package."""


class EncodeError(VrrpdError, ValueError):
    """An advert cannot be encoded (field out of range, missing address for a checksum...)."""


class DecodeError(VrrpdError):
    """Raw bytes are not a valid VRRP advertisement."""

    reason: str = "malformed"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class TooShortError(DecodeError):
    """Fewer bytes than the fixed header or than the address count requires."""

    reason = "too_short"


class BadLengthError(DecodeError):
    """More bytes than the header's address count accounts for (CARP collides here)."""

    reason = "length"


class BadVersionError(DecodeError):
    """Version nibble is not 2 or 3, or v2 was used with IPv6."""

    reason = "version"


class BadTypeError(DecodeError):
    """Type nibble is not 1 (ADVERTISEMENT)."""

    reason = "type"


class BadChecksumError(DecodeError):
    """No accepted checksum form matches the packet."""

    reason = "checksum"


class BadAddressCountError(DecodeError):
    """Address count is zero where addresses are required."""

    reason = "addr_count"


class BadIntervalError(DecodeError):
    """v3 Max Advertise Interval is 0 (erratum 8301: must be 1..4095)."""

    reason = "interval"
