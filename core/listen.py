"""``HOST:PORT`` where pykeepalived serves something (the metrics endpoint): one syntax for the
``--metrics`` flag and the ``metrics_listen`` keyword."""

from __future__ import annotations

import ipaddress


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT``, or ``:PORT`` for every IPv4 address; ValueError if not."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{text!r}: an IPv6 host goes in brackets, [2001:db8::1]:9650")
        host = host[1:-1]
        ipaddress.IPv6Address(host)  # ValueError names it
    elif ":" in host:
        raise ValueError(f"{text!r}: an IPv6 host goes in brackets, [2001:db8::1]:9650")
    return host or "0.0.0.0", int(port)
