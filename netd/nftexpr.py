"""nftables rule expressions as pyroute2 encodes them (pure: dicts, no I/O).

``pyroute2.nftables.expressions.genex`` names attributes ``NFTA_<NAME>_<KEY>``, which is right
for most expressions; the exceptions are worked around here (``numgen``'s attributes are
``NFTA_NG_*``), and enum attributes are given as the kernel's integers because pyroute2 0.9
accepts only those. The firewall (``no_accept``) and the LVS datapath share these.
"""

from __future__ import annotations

from typing import Any, Final

from pyroute2.netlink.nfnetlink.nftsocket import Cmp, Regs, nft_contains_expr
from pyroute2.nftables.expressions import genex

__all__ = [
    "NFT_GOTO",
    "NFT_JUMP",
    "NF_ACCEPT",
    "NF_DROP",
    "PAYLOAD_NETWORK",
    "PAYLOAD_TRANSPORT",
    "Expr",
    "bitwise",
    "cmp",
    "dnat",
    "dynset_update",
    "fwd",
    "immediate",
    "jhash",
    "lookup",
    "meta",
    "meta_eq",
    "numgen",
    "payload",
    "verdict",
]

Expr = dict[str, Any]

NF_DROP: Final = 0
NF_ACCEPT: Final = 1
NFT_JUMP: Final = -3
NFT_GOTO: Final = -4
PAYLOAD_NETWORK: Final = 1
PAYLOAD_TRANSPORT: Final = 2
_NG_INC: Final = 0
_NG_RANDOM: Final = 1
_DYNSET_OP_UPDATE: Final = 1
_NAT_DNAT: Final = 1
_HASH_JENKINS: Final = 0

# pyroute2 0.9.7 declares NFTA_FWD_NFPROTO as 'u32', a type it does not have, so encoding any
# ``fwd`` raises AttributeError. The kernel reads it as a big-endian u32 (nft_fwd_netdev.c).
nft_contains_expr.nft_expr.nft_fwd.nla_map = (
    ("NFTA_FWD_UNSPEC", "none"),
    ("NFTA_FWD_SREG_DEV", "regs"),
    ("NFTA_FWD_SREG_ADDR", "regs"),
    ("NFTA_FWD_NFPROTO", "be32"),
)


def _value(data: bytes) -> dict[str, Any]:
    return {"attrs": [("NFTA_DATA_VALUE", data)]}


def cmp(value: bytes, op: int = Cmp.NFT_CMP_EQ, sreg: int = Regs.NFT_REG_1) -> Expr:
    expr: Expr = genex("cmp", {"sreg": sreg, "op": op, "data": _value(value)})
    return expr


def meta(key: int, dreg: int = Regs.NFT_REG_1) -> Expr:
    expr: Expr = genex("meta", {"dreg": dreg, "key": key})
    return expr


def meta_eq(key: int, value: int) -> list[Expr]:
    """``meta <key> == value`` for a one-byte key (nfproto, l4proto)."""
    return [meta(key), cmp(bytes([value]))]


def payload(base: int, offset: int, length: int, dreg: int = Regs.NFT_REG_1) -> Expr:
    expr: Expr = genex("payload", {"dreg": dreg, "base": base, "offset": offset, "len": length})
    return expr


def bitwise(mask: bytes, reg: int = Regs.NFT_REG_1) -> Expr:
    """``reg &= mask`` (xor 0), in place."""
    kw = {
        "sreg": reg,
        "dreg": reg,
        "len": len(mask),
        "mask": _value(mask),
        "xor": _value(bytes(len(mask))),
    }
    expr: Expr = genex("bitwise", kw)
    return expr


def immediate(data: bytes, dreg: int) -> Expr:
    """Load a constant into a data register."""
    expr: Expr = genex("immediate", {"dreg": dreg, "data": _value(data)})
    return expr


def verdict(code: int, chain: str | None = None) -> Expr:
    """``accept``/``drop``, or ``jump``/``goto <chain>``."""
    attrs: list[tuple[str, Any]] = [("NFTA_VERDICT_CODE", code)]
    if chain is not None:
        attrs.append(("NFTA_VERDICT_CHAIN", chain))
    data = {"attrs": [("NFTA_DATA_VERDICT", {"attrs": attrs})]}
    expr: Expr = genex("immediate", {"dreg": Regs.NFT_REG_VERDICT, "data": data})
    return expr


def lookup(set_name: str, sreg: int = Regs.NFT_REG_1, *, vmap: bool = False) -> Expr:
    """``@set`` membership, or with ``vmap`` the verdict the map gives."""
    kw: dict[str, Any] = {"set": set_name, "sreg": sreg}
    if vmap:
        kw["dreg"] = Regs.NFT_REG_VERDICT
    expr: Expr = genex("lookup", kw)
    return expr


def numgen(modulus: int, *, random: bool, dreg: int = Regs.NFT_REG_1) -> Expr:
    """``numgen inc|random mod <modulus>`` (a host-order u32)."""
    data = [
        ("NFTA_NG_DREG", dreg),
        ("NFTA_NG_MODULUS", modulus),
        ("NFTA_NG_TYPE", _NG_RANDOM if random else _NG_INC),
        ("NFTA_NG_OFFSET", 0),
    ]
    return {"attrs": [("NFTA_EXPR_NAME", "numgen"), ("NFTA_EXPR_DATA", {"attrs": data})]}


def jhash(length: int, modulus: int, seed: int, reg: int = Regs.NFT_REG_1) -> Expr:
    """``jhash <reg, length bytes> mod <modulus> seed <seed>`` into ``reg``."""
    kw = {
        "sreg": reg,
        "dreg": reg,
        "len": length,
        "modulus": modulus,
        "seed": seed,
        "offset": 0,
        "type": _HASH_JENKINS,
    }
    expr: Expr = genex("hash", kw)
    return expr


def dynset_update(set_name: str, sreg: int = Regs.NFT_REG_1) -> Expr:
    """``update @set { <reg> }``: add the key or refresh its timeout."""
    kw = {"set_name": set_name, "op": _DYNSET_OP_UPDATE, "sreg_key": sreg}
    expr: Expr = genex("dynset", kw)
    return expr


def dnat(family: int, addr_reg: int, port_reg: int | None) -> Expr:
    """``dnat to <addr_reg>[:<port_reg>]`` for ``family`` (NFPROTO_IPV4/IPV6)."""
    kw: dict[str, Any] = {"type": _NAT_DNAT, "family": family, "reg_addr_min": addr_reg}
    if port_reg is not None:
        kw["reg_proto_min"] = port_reg
    expr: Expr = genex("nat", kw)
    return expr


def fwd(nfproto: int, addr_reg: int, dev_reg: int) -> Expr:
    """``fwd ip|ip6 to <addr_reg> device <dev_reg>`` (netdev ingress only): the kernel resolves
    the neighbour of the address and sends the packet out of the device unchanged otherwise."""
    data = [
        ("NFTA_FWD_SREG_DEV", dev_reg),
        ("NFTA_FWD_SREG_ADDR", addr_reg),
        ("NFTA_FWD_NFPROTO", nfproto),
    ]
    return {"attrs": [("NFTA_EXPR_NAME", "fwd"), ("NFTA_EXPR_DATA", {"attrs": data})]}
