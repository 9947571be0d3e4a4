"""Hypothesis strategies shared by the vrrpd tests (documentation address ranges only)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address

from hypothesis import strategies as st

from vrrpd.packet import Advert, AuthType, IPAddress

_V4_NETS = [IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
_V6_DOC = int(IPv6Address("2001:db8::"))
_V6_LL = int(IPv6Address("fe80::"))

v4_addresses = st.builds(
    lambda net, host: net[host], st.sampled_from(_V4_NETS), st.integers(0, 255)
)
v6_doc_addresses = st.integers(0, 2**96 - 1).map(lambda n: IPv6Address(_V6_DOC + n))
v6_link_local = st.integers(1, 2**64 - 1).map(lambda n: IPv6Address(_V6_LL + n))
v6_addresses = st.one_of(v6_doc_addresses, v6_link_local)


def _addr_list(family: int, min_size: int) -> st.SearchStrategy[tuple[IPAddress, ...]]:
    element: st.SearchStrategy[IPAddress] = v4_addresses if family == 4 else v6_addresses
    size = 40 if family == 4 else 20
    return st.lists(element, min_size=min_size, max_size=size).map(tuple)


@st.composite
def adverts(
    draw: st.DrawFn, *, version: int | None = None, family: int | None = None, min_addrs: int = 1
) -> Advert:
    ver = draw(st.sampled_from([2, 3])) if version is None else version
    fam = 4 if ver == 2 else (draw(st.sampled_from([4, 6])) if family is None else family)
    addrs = draw(_addr_list(fam, min_addrs))
    if ver == 2:
        auth = draw(st.sampled_from([AuthType.NONE, AuthType.PASS]))
        data = draw(st.binary(min_size=8, max_size=8)) if auth is AuthType.PASS else bytes(8)
        interval = draw(st.integers(1, 255))
    else:
        auth, data = AuthType.NONE, bytes(8)
        interval = draw(st.integers(1, 4095))
    return Advert(
        version=ver,
        vrid=draw(st.integers(1, 255)),
        priority=draw(st.integers(0, 255)),
        addresses=addrs,
        interval=interval,
        family=fam,
        auth_type=auth,
        auth_data=data,
    )


def source_for(family: int) -> st.SearchStrategy[IPAddress]:
    return v4_addresses if family == 4 else v6_link_local


V4_GROUP = IPv4Address("224.0.0.18")
