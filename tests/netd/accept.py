"""Helpers for Accept_Mode tests: read the nftables state back and ping from a lab node."""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time

from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_GETSETELEM, nft_set_elem_list_msg
from pyroute2.nftables.main import NFTables
from scapy.layers.inet import ICMP

from tests.lab import Node


def tables(node: Node) -> dict[str, str | None]:
    """inet table name -> userdata, read back through pyroute2 in the node's namespace."""

    def read() -> dict[str, str | None]:
        with NFTables(nfgen_family=1) as nft:
            return {
                t.get_attr("NFTA_TABLE_NAME"): t.get_attr("NFTA_TABLE_USERDATA")
                for t in nft.get_tables()
            }

    return node.call(read)


def ping(node: Node, dst: str, timeout: float = 0.5) -> bool:
    """One ICMP echo from ``node`` to ``dst``: True when answered within ``timeout``."""
    v6 = ":" in dst

    def run() -> bool:
        fam, proto = (
            (socket.AF_INET6, socket.IPPROTO_ICMPV6)
            if v6
            else (socket.AF_INET, socket.IPPROTO_ICMP)
        )
        with socket.socket(fam, socket.SOCK_RAW, proto) as s:
            ident = int(time.monotonic_ns()) & 0xFFFF
            echo = (
                bytes(ICMP(type=8, id=ident, seq=1) / b"pk")
                if not v6
                else (
                    struct.pack("!BBHHH", 128, 0, 0, ident, 1) + b"pk"  # the kernel sums ICMPv6
                )
            )
            s.sendto(echo, (dst, 0))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([s], [], [], left)[0]:
                    break
                data = s.recv(2048)
                icmp = data if v6 else data[(data[0] & 15) * 4 :]
                if icmp[0] == (129 if v6 else 0) and struct.unpack("!H", icmp[4:6])[0] == ident:
                    return True
        return False

    return node.call(run)


def answered(node: Node, dst: str) -> bool:
    """A few tries: the first echo may wait for neighbour resolution."""
    return any(ping(node, dst) for _ in range(3))


def set_elements(node: Node, table: str, name: str) -> set[str]:
    """The addresses in set ``name`` of inet table ``table`` (empty when it does not exist)."""

    def read() -> set[str]:
        msg = nft_set_elem_list_msg()
        msg["attrs"] = [["NFTA_SET_ELEM_LIST_TABLE", table], ["NFTA_SET_ELEM_LIST_SET", name]]
        with NFTables(nfgen_family=1) as nft:
            if table not in {t.get_attr("NFTA_TABLE_NAME") for t in nft.get_tables()}:
                return set()
            replies = nft.request_get(msg, NFT_MSG_GETSETELEM)
        return {
            str(ipaddress.ip_address(e.get_attr("NFTA_SET_ELEM_KEY").get_attr("NFTA_DATA_VALUE")))
            for r in replies
            for e in r.get_attr("NFTA_SET_ELEM_LIST_ELEMENTS") or ()
        }

    return node.call(read)
