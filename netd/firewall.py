"""VRRPv3 Accept_Mode: drop packets addressed to the VIPs of a master that does not accept them.

keepalived (``no_accept``, the default in strict mode for a non-owner) installs firewall rules
while an instance is MASTER so that the VIPs are held (answered by ARP/ND) but not used: a
packet to a VIP is dropped, as is one sent from it. We do the same with nftables, through
pyroute2's netlink API (never by running ``nft``), in an ``inet`` table named by the global
``nftables`` keyword (default ``keepalived``)::

    table inet keepalived {            # userdata comment "pykeepalived netd": ours
        set vips  { type ipv4_addr }
        set vips6 { type ipv6_addr }
        set vips6_ll { type ipv6_addr . iface_index }
        chain in  { type filter hook input priority -1
                    icmpv6 type nd-neighbor-solicit..nd-neighbor-advert accept
                    ip6 daddr . meta iif @vips6_ll drop
                    ip daddr @vips drop ; ip6 daddr @vips6 drop }
        chain out { type filter hook output priority -1
                    icmpv6 type nd-neighbor-solicit..nd-neighbor-advert accept
                    ip6 saddr . meta oif @vips6_ll drop
                    ip saddr @vips drop ; ip6 saddr @vips6 drop }
    }

Link-local VIPs (meaningful on one interface only) go in ``vips6_ll`` with their interface, as
keepalived keys them. Neighbour discovery stays allowed: peers must resolve a VIP's MAC (NUD
probes are unicast to the VIP, and the answer comes from it), as keepalived allows it.
(keepalived uses an ``ip`` and an ``ip6`` table; one ``inet`` table does the same with an
explicit protocol match.)

The table carries a userdata marker, so leftovers of a killed run are found and removed at start
whatever name that run used, and a table of the same name that is not ours is never touched.

pyroute2 0.9's ``NFTables.sets()``/``set_elems()`` cannot run synchronously (they ``async for``
over a list), so sets and their elements go through ``NFTSocket._command`` with the message
classes pyroute2 provides; tables, chains and rules use the public methods.

Pure parts (:func:`blocked_addresses`, :class:`FirewallSettings`, :func:`expressions`,
:func:`nd_accept`) are apart from :class:`Firewall`, the netlink I/O.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import structlog
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.nftsocket import (
    NFPROTO_INET,
    NFPROTO_IPV4,
    NFPROTO_IPV6,
    NFT_MSG_DELSETELEM,
    NFT_MSG_GETSETELEM,
    NFT_MSG_NEWSET,
    NFT_MSG_NEWSETELEM,
    Cmp,
    Meta,
    Regs,
    nft_set_elem_list_msg,
    nft_set_msg,
)
from pyroute2.nftables.main import NFTables, NFTSet

from core.model import Config
from netd import nftexpr as nx
from netd.desired import Address, Item
from netd.errors import FirewallError

__all__ = [
    "DEFAULT_PRIORITY",
    "DEFAULT_TABLE",
    "MARKER",
    "Block",
    "Firewall",
    "FirewallSettings",
    "block_of",
    "blocked_addresses",
    "expressions",
    "nd_accept",
]

log = structlog.get_logger(__name__)

DEFAULT_TABLE: Final = "keepalived"
DEFAULT_PRIORITY: Final = -1
MARKER: Final = "pykeepalived netd"
SET4: Final = "vips"
SET6: Final = "vips6"
SET6_LL: Final = "vips6_ll"
WHY: Final = (
    "no_accept (VRRPv3 Accept_Mode off; implied by strict_mode/vrrp_strict unless 'accept' is "
    "set): packets to and from this VIP are dropped while the instance is MASTER"
)

_IPPROTO_ICMPV6: Final = 58
_ND_SOLICIT: Final = 135
_ND_ADVERT: Final = 136
_TYPE_BITS: Final = 6  # nft's encoding of a concatenated key type
_DATA_TYPE_IP6ADDR: Final = 8
_DATA_TYPE_IFINDEX: Final = 20

#: What is blocked: an address, with its interface for an IPv6 link-local one (else None).
Block: TypeAlias = tuple[str, str | None]
# (offset, length) of the source and destination in the IPv4 and IPv6 headers.
_ADDR_FIELDS: Final = {
    4: {"saddr": (12, 4), "daddr": (16, 4)},
    6: {"saddr": (8, 16), "daddr": (24, 16)},
}


@dataclass(frozen=True, slots=True)
class FirewallSettings:
    """What the global ``nftables`` / ``nftables_priority`` keywords say."""

    table: str = DEFAULT_TABLE
    priority: int = DEFAULT_PRIORITY

    @classmethod
    def from_config(cls, config: Config) -> FirewallSettings:
        table, priority = DEFAULT_TABLE, DEFAULT_PRIORITY
        for opt in config.global_defs.other:
            if opt.keyword == "nftables" and opt.args:
                table = opt.args[0]
            elif opt.keyword == "vrrp_iptables":
                log.warning(
                    "netd.firewall.iptables_unsupported",
                    detail="no_accept is enforced with nftables (through netlink), not iptables",
                )
            elif opt.keyword == "nftables_priority" and opt.args:
                try:
                    priority = int(opt.args[0])
                except ValueError:
                    log.warning("netd.firewall.bad_priority", value=opt.args[0], using=priority)
        return cls(table, priority)


def blocked_addresses(
    owned: Mapping[str, Iterable[Item]], accepting: Mapping[str, bool]
) -> dict[Block, str]:
    """Block -> owner for every address a non-accepting owner holds (owners default to
    accepting). A link-local IPv6 address is blocked on its interface only.

    As keepalived, an instance's own choice decides: an address another, accepting owner also
    holds is blocked all the same.
    """
    out: dict[Block, str] = {}
    for owner in sorted(owned):
        if accepting.get(owner, True):
            continue
        for item in owned[owner]:
            if isinstance(item, Address):
                out.setdefault(block_of(item.ip, item.dev), owner)
    return out


def block_of(ip: str, dev: str) -> Block:
    return (ip, dev if ipaddress.ip_address(ip).is_link_local and ":" in ip else None)


def nd_accept() -> list[dict[str, Any]]:
    """``icmpv6 type nd-neighbor-solicit..nd-neighbor-advert accept``, ahead of the drops:
    peers must resolve a VIP's MAC (keepalived's rule, whatever the address)."""
    out = nx.meta_eq(Meta.NFT_META_NFPROTO, NFPROTO_IPV6)
    out += nx.meta_eq(Meta.NFT_META_L4PROTO, _IPPROTO_ICMPV6)
    out.append(nx.payload(nx.PAYLOAD_TRANSPORT, 0, 1))
    out.append(nx.cmp(bytes([_ND_SOLICIT]), Cmp.NFT_CMP_GTE))
    out.append(nx.cmp(bytes([_ND_ADVERT]), Cmp.NFT_CMP_LTE))
    return [*out, nx.verdict(nx.NF_ACCEPT)]


def expressions(version: int, field: str, *, link_local: bool = False) -> list[dict[str, Any]]:
    """One rule: ``ip[6] <field> @vips[6] drop``, or with ``link_local`` (IPv6 only)
    ``ip6 <field> . meta iif|oif @vips6_ll drop``."""
    offset, length = _ADDR_FIELDS[version][field]
    out = nx.meta_eq(Meta.NFT_META_NFPROTO, NFPROTO_IPV4 if version == 4 else NFPROTO_IPV6)
    out.append(nx.payload(nx.PAYLOAD_NETWORK, offset, length))
    if link_local:
        # The interface goes right after the 16-byte address (NFT_REG_2 follows NFT_REG_1):
        # the lookup reads the concatenated 20-byte key from NFT_REG_1 on.
        key = Meta.NFT_META_IIF if field == "daddr" else Meta.NFT_META_OIF
        out.append(nx.meta(key, dreg=Regs.NFT_REG_2))
        out.append(nx.lookup(SET6_LL))
    else:
        set_name = SET4 if version == 4 else SET6
        out.append(nx.lookup(set_name))
    return [*out, nx.verdict(nx.NF_DROP)]


def _block_from_key(key: bytes) -> Block:
    """A set element's key: 4 or 16 address bytes, or 16 + a host-order ifindex (vips6_ll)."""
    if len(key) == 20:
        (index,) = struct.unpack("=I", key[16:])
        try:
            dev = socket.if_indextoname(index)
        except OSError:
            dev = f"#{index}"  # the interface went away; the element is still ours to remove
        return (str(ipaddress.ip_address(key[:16])), dev)
    return (str(ipaddress.ip_address(key)), None)


def _ifindex(ip: str, dev: str) -> int:
    if dev.startswith("#"):
        return int(dev[1:])
    try:
        return socket.if_nametoindex(dev)
    except OSError as exc:
        raise FirewallError(f"block {ip}%{dev}", errno.ENODEV, "ENODEV", str(exc)) from exc


def _error(what: str, exc: NetlinkError) -> FirewallError:
    code = abs(int(exc.code))
    return FirewallError(what, code, errno.errorcode.get(code, str(code)), str(exc))


class Firewall:
    """The nftables table of one netd (netlink I/O; call from one thread only)."""

    def __init__(self) -> None:
        self._nft: NFTables | None = None
        self.settings = FirewallSettings()
        self._built: FirewallSettings | None = None  # the table that exists because of us

    @property
    def nft(self) -> NFTables:
        if self._nft is None:
            try:
                self._nft = NFTables(nfgen_family=NFPROTO_INET)
            except (NetlinkError, OSError) as exc:
                raise FirewallError("open nfnetlink", 0, "EIO", str(exc)) from exc
        return self._nft

    def configure(self, settings: FirewallSettings) -> None:
        """Take new settings (no I/O); the next :meth:`sync` moves the table if they changed."""
        self.settings = settings

    def remove_leftovers(self) -> list[str]:
        """Delete every inet table carrying our marker (a killed run's); return their names."""
        removed = []
        try:
            tables = self.nft.get_tables()
        except NetlinkError as exc:
            raise _error("list tables", exc) from exc
        for msg in tables:
            name = msg.get_attr("NFTA_TABLE_NAME")
            if msg.get_attr("NFTA_TABLE_USERDATA") != MARKER:
                continue
            self._delete_table(name)
            removed.append(name)
            log.info("netd.firewall.leftover_removed", table=name, detail="left by an earlier run")
        return removed

    def _table_owner(self, name: str) -> str | None:
        """Our marker, another marker ("" if none), or None when no such table exists."""
        for msg in self.nft.get_tables():
            if msg.get_attr("NFTA_TABLE_NAME") == name:
                return str(msg.get_attr("NFTA_TABLE_USERDATA") or "")
        return None

    def _delete_table(self, name: str) -> None:
        try:
            self.nft.table("del", name=name)
        except NetlinkError as exc:
            if abs(exc.code) != errno.ENOENT:
                raise _error(f"delete table {name}", exc) from exc

    def _build(self, s: FirewallSettings) -> None:
        owner = self._table_owner(s.table)
        if owner is not None and owner != MARKER:
            raise FirewallError(
                f"table inet {s.table}",
                errno.EEXIST,
                "EEXIST",
                "a table of that name exists and is not ours; not touching it "
                "(choose another name with the global 'nftables' keyword)",
            )
        what = f"build table inet {s.table}"
        try:
            if owner is not None:
                self.nft.table("del", name=s.table)  # ours but unknown to us: start clean
            self.nft.table("add", name=s.table, userdata=MARKER)
            for name, key_type in ((SET4, "ipv4_addr"), (SET6, "ipv6_addr")):
                attrs = NFTSet(table=s.table, name=name, key_type=key_type).as_netlink()
                self.nft._command(nft_set_msg, {"add": NFT_MSG_NEWSET}, "add", attrs)
            attrs = NFTSet(table=s.table, name=SET6_LL).as_netlink()
            attrs["NFTA_SET_KEY_TYPE"] = _DATA_TYPE_IP6ADDR << _TYPE_BITS | _DATA_TYPE_IFINDEX
            attrs["NFTA_SET_KEY_LEN"] = 20
            self.nft._command(nft_set_msg, {"add": NFT_MSG_NEWSET}, "add", attrs)
            for chain, hook, field in (("in", "input", "daddr"), ("out", "output", "saddr")):
                self.nft.chain(
                    "add", table=s.table, name=chain, hook=hook, type="filter", priority=s.priority
                )
                for exprs in (
                    nd_accept(),
                    expressions(6, field, link_local=True),
                    expressions(4, field),
                    expressions(6, field),
                ):
                    self.nft.rule("add", table=s.table, chain=chain, expressions=[exprs])
        except NetlinkError as exc:
            raise _error(what, exc) from exc
        self._built = s
        log.info(
            "netd.firewall.table",
            table=s.table,
            family="inet",
            hooks="input,output",
            priority=s.priority,
            detail="drops packets to/from the VIPs of no_accept masters",
        )

    def blocked(self) -> set[Block]:
        """What the table blocks now (empty when it does not exist)."""
        if self._built is None:
            return set()
        out: set[Block] = set()
        for name in (SET4, SET6, SET6_LL):
            msg = nft_set_elem_list_msg()
            msg["attrs"] = [
                ["NFTA_SET_ELEM_LIST_TABLE", self._built.table],
                ["NFTA_SET_ELEM_LIST_SET", name],
            ]
            try:
                replies = self.nft.request_get(msg, NFT_MSG_GETSETELEM)
            except NetlinkError as exc:
                if abs(exc.code) == errno.ENOENT:
                    self._built = None  # removed behind our back: rebuilt on the next sync
                    return set()
                raise _error(f"read set {name}", exc) from exc
            for reply in replies:
                for elem in reply.get_attr("NFTA_SET_ELEM_LIST_ELEMENTS") or ():
                    key = bytes(elem.get_attr("NFTA_SET_ELEM_KEY").get_attr("NFTA_DATA_VALUE"))
                    out.add(_block_from_key(key))
        return out

    def _elements(self, cmd: str, blocks: Iterable[Block]) -> None:
        assert self._built is not None
        by_set: dict[str, list[bytes]] = {}
        for ip, dev in sorted(blocks, key=str):
            addr = ipaddress.ip_address(ip)
            if dev is not None:
                index = _ifindex(ip, dev)
                by_set.setdefault(SET6_LL, []).append(addr.packed + struct.pack("=I", index))
            else:
                by_set.setdefault(SET4 if addr.version == 4 else SET6, []).append(addr.packed)
        commands = {"add": NFT_MSG_NEWSETELEM, "del": NFT_MSG_DELSETELEM}
        for name, keys in by_set.items():
            elements = [
                {"attrs": [["NFTA_SET_ELEM_KEY", {"attrs": [("NFTA_DATA_VALUE", k)]}]]}
                for k in keys
            ]
            kwarg = {"table": self._built.table, "set": name, "elements": elements}
            try:
                self.nft._command(nft_set_elem_list_msg, commands, cmd, kwarg)
            except NetlinkError as exc:
                raise _error(f"{cmd} elements of {name}", exc) from exc

    def sync(self, wanted: Mapping[Block, str], *, removing: bool) -> None:
        """Block everything in ``wanted`` (-> owner); with ``removing`` also unblock the
        rest. Before addresses are added, call it without (the drop is in place before the VIP
        is); after they are removed, with (the drop lasts as long as the VIP)."""
        if self._built is not None and self._built != self.settings:
            log.info("netd.firewall.moved", old=self._built.table, new=self.settings.table)
            self._delete_table(self._built.table)
            self._built = None
        current = self.blocked()
        missing = set(wanted) - current
        if missing and self._built is None:
            self._build(self.settings)
            current = set()
        if missing:
            self._elements("add", missing)
            for block in sorted(missing, key=str):
                log.info(
                    "netd.firewall.drop",
                    address=block[0],
                    interface=block[1],
                    owner=wanted[block],
                    table=self.settings.table,
                    detail=WHY,
                )
        extra = current - set(wanted) if removing else set()
        if extra:
            self._elements("del", extra)
            for ip, dev in sorted(extra, key=str):
                log.info(
                    "netd.firewall.undrop", address=ip, interface=dev, table=self.settings.table
                )

    def close(self) -> None:
        """Remove our table (keepalived removes its rules at stop) and the socket."""
        try:
            if self._built is not None:
                self._delete_table(self._built.table)
                log.info("netd.firewall.removed", table=self._built.table)
                self._built = None
        finally:
            if self._nft is not None:
                self._nft.close()
                self._nft = None
