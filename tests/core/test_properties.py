"""Property tests: render/parse and wire round trips on generated configs; mutated configs never
crash the loader."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core
from core import keywords as kwt
from core.lexer import LexError, _split_words_slow, split_words
from core.schema import (
    BlockSchema,
    Choice,
    Const,
    Flag,
    Float,
    HostPortT,
    Int,
    IntChoice,
    Ip,
    OptInt,
    Raw,
    ScriptT,
    Str,
    SubBlock,
    UserGroupT,
    WeightT,
    WordList,
    Words,
)

SAFE = string.ascii_letters + string.digits + " _-.:/#!{}'"
words = st.text(string.ascii_letters + string.digits + "_-.", min_size=1, max_size=8)
texts = st.text(SAFE, min_size=0, max_size=12)
names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8)


def q(s: str) -> str:
    return f'"{s}"'


ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.integers(0, 2**64 - 1).map(lambda n: f"2001:db8::{n & 0xFFFF:x}:{n >> 16 & 0xFFFF:x}")
ips = st.one_of(ipv4, ipv6)


def num(lo: float | None, hi: float | None) -> st.SearchStrategy[str]:
    lo_ = 0 if lo is None else lo
    hi_ = 10**6 if hi is None else hi
    return (
        st.floats(lo_, hi_, allow_nan=False)
        .map(lambda f: repr(round(f, 3)))
        .filter(lambda s: lo_ <= float(s) <= hi_)
    )


# Value types whose argument text does not depend on the instance.
_FIXED: dict[type, st.SearchStrategy[str]] = {
    Flag: st.sampled_from(["", "on", "off", "yes", "false"]),
    Const: st.just(""),
    Str: texts.map(q),
    Ip: ips,
    Words: st.lists(texts.map(q), min_size=1, max_size=3).map(" ".join),
    UserGroupT: st.lists(words, min_size=1, max_size=2).map(" ".join),
    HostPortT: st.tuples(ips, st.one_of(st.just(""), st.integers(0, 65535).map(str))).map(" ".join),
    WordList: st.lists(texts.map(q), max_size=3).map(lambda ws: "{\n" + "\n".join(ws) + "\n}"),
    kwt.VmacT: st.sampled_from(
        ["", "vrrp.5", "name v51", "00:00:5e:00:01:05", "v1 00:00:5e:00:01:05"]
    ),
    kwt.InitFileT: st.sampled_from(["", "5", "-3 overwrite", "0x10", "overwrite"]),
}


def _script(vt: ScriptT) -> st.SearchStrategy[str]:
    cmd = st.lists(words, min_size=1, max_size=3).map(lambda w: q(" ".join(w)))
    if not vt.with_user:
        return cmd
    return st.tuples(cmd, st.lists(words, max_size=2)).map(lambda t: " ".join([t[0], *t[1]]))


def arg_strategy(vt: object) -> st.SearchStrategy[str] | None:
    """Argument text for one keyword, derived from its value type (None: not generated)."""
    for kind, strategy in _FIXED.items():
        if isinstance(vt, kind):
            return strategy
    if isinstance(vt, Int):
        return st.integers(
            vt.lo if vt.lo is not None else -1000, vt.hi if vt.hi is not None else 10**6
        ).map(str)
    if isinstance(vt, OptInt):
        return st.one_of(st.just(""), st.integers(vt.lo or 0, vt.hi or 10**6).map(str))
    if isinstance(vt, Float):
        return num(vt.lo, vt.hi)
    if isinstance(vt, Choice):
        return st.sampled_from(vt.options)
    if isinstance(vt, IntChoice):
        return st.sampled_from(vt.options).map(str)
    if isinstance(vt, ScriptT):
        return _script(vt)
    if isinstance(vt, WeightT):
        return st.tuples(st.integers(vt.lo, vt.hi), st.sampled_from(["", "reverse"])).map(
            lambda t: f"{t[0]} {t[1]}"
        )
    if isinstance(vt, SubBlock):
        return block_body(vt.schema).map(lambda body: "{\n" + body + "\n}")
    return None


def raw_strategy(raw: Raw) -> st.SearchStrategy[str]:
    hi = 2 if raw.max_args is None else min(raw.max_args, 2)
    args = st.lists(words, min_size=min(raw.min_args, hi), max_size=hi).map(" ".join)
    if raw.block is True:
        return args.map(lambda a: f"{a} {{\n x 1\n}}")
    return args


address = st.tuples(
    ipv4,
    st.integers(0, 32),
    st.lists(
        st.sampled_from(
            [
                "dev eth1",
                "brd +",
                "scope link",
                "label eth0:1",
                "no_track",
                "home",
                "-nodad",
                "preferred_lft 0",
            ]
        ),
        max_size=3,
        unique=True,
    ),
).map(lambda t: f"{t[0]}/{t[1]} " + " ".join(t[2]))
route = st.tuples(
    st.sampled_from(["", "blackhole ", "src 192.0.2.1 "]),
    ipv4,
    st.lists(
        st.sampled_from(
            [
                "via 192.0.2.254",
                "dev eth0",
                "table 100",
                "metric 5",
                "onlink",
                "mtu lock 1400",
                "no_track",
                "advmss lock 1300",
                "features ecn",
                "encap ip id 5 dst 192.0.2.9 ttl 3",
                "encap mpls 100/200",
            ]
        ),
        max_size=3,
        unique=True,
    ),
    st.sampled_from(["", " nexthop via 192.0.2.1 weight 2 nexthop dev eth0 onlink encap ip6 id 1"]),
).map(lambda t: f"{t[0]}{t[1]}/24 " + " ".join(t[2]) + t[3])
rule = st.lists(
    st.sampled_from(
        [
            "from 192.0.2.0/24",
            "to all",
            "table 100",
            "preference 5",
            "iif eth0",
            "fwmark 0x1",
            "inet",
            "no_track",
            "l3mdev",
            "not",
            "uidrange 10-20",
            "ipproto udp",
            "sport 53",
            "dport 1000-2000",
            "tunnel-id 7",
        ]
    ),
    min_size=1,
    max_size=4,
    unique=True,
).map(" ".join)
track = st.tuples(names, st.sampled_from(["", " weight -10", " weight 5 reverse"])).map("".join)
ENTRY_BLOCKS = {
    kwt.ADDRESSES: address,
    kwt.ROUTES: route,
    kwt.RULES: rule,
    kwt.PEERS: ipv4,
    kwt.TRACK: track,
    kwt.TRACK254: track,
}


@st.composite
def block_body(draw: st.DrawFn, schema: BlockSchema) -> str:
    lines = []
    kws = [k for k in schema.kws if arg_strategy(k.vtype) is not None or k.vtype in ENTRY_BLOCKS]
    if schema.raws:
        for raw in draw(st.lists(st.sampled_from(sorted(schema.raws)), max_size=2)):
            lines.append(f"{raw} {draw(raw_strategy(schema.raws[raw]))}".rstrip())
    if not kws:
        return "\n".join(lines)
    for kw in draw(st.lists(st.sampled_from(kws), max_size=8, unique_by=lambda k: k.name)):
        if kw.vtype in ENTRY_BLOCKS:
            entries = draw(st.lists(ENTRY_BLOCKS[kw.vtype], max_size=3))
            lines.append(f"{kw.name} {{\n" + "\n".join(entries) + "\n}")
        else:
            strat = arg_strategy(kw.vtype)
            assert strat is not None
            lines.append(f"{kw.name} {draw(strat)}".rstrip())
    return "\n".join(lines)


@st.composite
def config_text(draw: st.DrawFn) -> str:
    parts = [f"global_defs {{\n{draw(block_body(kwt.GLOBAL_DEFS))}\n}}"]
    for schema, kw in (
        (kwt.VRRP_SCRIPT, "vrrp_script"),
        (kwt.TRACK_FILE, "track_file"),
        (kwt.TRACK_PROCESS, "vrrp_track_process"),
        (kwt.VRRP_INSTANCE, "vrrp_instance"),
        (kwt.SYNC_GROUP, "vrrp_sync_group"),
    ):
        for name in draw(st.lists(names, max_size=2, unique=True)):
            parts.append(f"{kw} {name} {{\n{draw(block_body(schema))}\n}}")
    if draw(st.booleans()):
        kind = draw(st.sampled_from(sorted(kwt.CHECKERS)))
        parts.append(
            f"virtual_server 192.0.2.1 80 {{\n{draw(block_body(kwt.VIRTUAL_SERVER))}\n"
            f"real_server 192.0.2.2 80 {{\n{kind} {{\n"
            f"{draw(block_body(kwt.CHECKERS[kind]))}\n}}\n}}\n}}"
        )
    return "\n".join(parts) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_text())
def test_render_parse_round_trip(text: str) -> None:
    r = core.loads(text, config_id="n", script_env=None)
    c = r.config
    rendered = core.render(c)
    again = core.loads(rendered, config_id="n", script_env=None)
    assert again.config == c, rendered
    assert core.from_wire(core.to_wire(c)) == c
    assert core.from_wire(core.to_wire(c, omit_defaults=True)) == c
    assert core.config_hash(again.config) == core.config_hash(c)
    assert core.render(again.config) == rendered  # printing is a fixed point


def _seed_texts() -> list[str]:
    samples = Path("/usr/share/doc/keepalived/samples")
    found = (
        [p.read_text() for p in sorted(samples.glob("keepalived.conf.*"))]
        if samples.exists()
        else []
    )
    return found or [
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n"
        " virtual_ipaddress {\n 192.0.2.1\n }\n}\n"
    ]


SEEDS = _seed_texts()
JUNK = st.text(string.printable + "{}\"'$@~\\", max_size=30)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            lines.append(draw(JUNK))
            continue
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "dup", "swap", "junk", "token"]))
        if op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "junk":
            lines.insert(i, draw(JUNK))
        else:
            toks = lines[i].split()
            if toks:
                k = draw(st.integers(0, len(toks) - 1))
                toks[k] = draw(
                    st.sampled_from(["", "{", "}", '"', "0", "-1", "999999999999", "x", "$X", "@n"])
                )
                lines[i] = " ".join(toks)
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_configs_never_crash(text: str) -> None:
    r = core.loads(text, config_id="n", script_env=None)
    assert r.exit_code in (0, 5)
    for p in r.problems:
        assert p.severity in ("error", "warning", "not-implemented")
        core.format_problem(p)
    # Whatever survived parsing still renders and round-trips.
    assert core.loads(core.render(r.config), config_id="n", script_env=None).config == r.config


LINE_CHARS = st.text(string.ascii_letters + ' \t{}"#!_-./:\\', max_size=40)
# keepalived splits on ASCII blanks only; other Unicode spaces stay inside words.
UNICODE_BLANKS = st.text(' \t\xa0\u2003\x1c\x85ab{}"', max_size=30)


@given(st.one_of(LINE_CHARS, UNICODE_BLANKS))
def test_fast_tokenizer_equals_reference(text: str) -> None:
    try:
        fast = split_words(text, "f", 1)
    except LexError:
        fast = None
    try:
        slow = _split_words_slow(text, "f", 1)
    except LexError:
        slow = None
    assert fast == slow
