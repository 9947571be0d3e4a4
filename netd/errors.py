"""netd's exception hierarchy. Third-party errors are translated at the boundary."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AnnounceError",
    "FirewallError",
    "InvalidItemError",
    "KernelError",
    "LvsApplyError",
    "LvsConfigError",
    "LvsUnsupportedError",
    "NetdError",
    "NftError",
    "VmacError",
    "WireFormatError",
]


class NetdError(Exception):
    """Base class for every error raised by netd."""


class InvalidItemError(NetdError, ValueError):
    """A desired address, route or rule is malformed (bad IP, prefix, label, ...)."""


class WireFormatError(NetdError, ValueError):
    """A bus payload could not be decoded into a desired set."""


class KernelError(NetdError):
    """A netlink request failed for a reason that is not an idempotent success.

    ``errno_name`` is the symbolic errno (``"ENODEV"``), ``code`` the number and ``reason``
    the kernel's message, so a log line or a bus event can say exactly what went wrong.
    """

    def __init__(self, what: str, code: int, errno_name: str, reason: str) -> None:
        super().__init__(f"{what}: {errno_name} ({reason})")
        self.what = what
        self.code = code
        self.errno_name = errno_name
        self.reason = reason


class LvsApplyError(KernelError):
    """The kernel refused some virtual servers of an apply and took the others:
    ``failures`` maps each refused one's service to its error."""

    def __init__(self, failures: dict[Any, KernelError]) -> None:
        first = next(iter(failures.values()))
        super().__init__(
            f"{len(failures)} virtual server(s), first {first.what}",
            first.code,
            first.errno_name,
            first.reason,
        )
        self.failures = failures


class VmacError(KernelError):
    """A VMAC (macvlan) interface could not be created, found or removed."""


class FirewallError(KernelError):
    """The nftables table enforcing Accept_Mode could not be built, read or changed."""


class NftError(KernelError):
    """An nftables transaction or read-back failed (the kernel applied nothing of it)."""


class LvsConfigError(NetdError, ValueError):
    """A virtual server cannot be programmed as described (``TUN`` forwarding, DR not yet
    implemented, a member of the wrong address family, ...)."""


class LvsUnsupportedError(LvsConfigError):
    """A virtual server asks for what this datapath does not do (nftables: ``TUN``, port 0
    services, a DR fwmark service)."""


class AnnounceError(NetdError):
    """A gratuitous ARP / unsolicited NA could not be built or sent."""
