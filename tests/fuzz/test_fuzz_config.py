"""Fuzzing the config language: any text is a config with problems, never an exception.

``tests/core/test_properties.py`` already mutates Debian's sample configs line by line. This
adds what line edits rarely reach: token soup made of real keywords, braces, quotes and the
preprocessor's directives (``@`` conditions, ``$`` definitions, ``~SEQ``/``~LST`` loops,
``include`` of missing files), arbitrary characters (NUL, control, non-UTF-8 escapes, very
long words), and byte-level cuts of the samples. ``core.loads`` must return a result whose
problems all format, and whatever it kept must render and parse again.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

import core
from core import keywords as kwt
from core.lexer import MAX_LINE_LENGTH
from tests.core.test_properties import SEEDS
from tests.fuzz.budget import fuzz

_NAMES = sorted(
    {
        *kwt.GLOBAL_DEFS.names,
        *kwt.VRRP_INSTANCE.names,
        *kwt.VRRP_SCRIPT.names,
        *kwt.SYNC_GROUP.names,
        *kwt.VIRTUAL_SERVER.names,
        "global_defs",
        "vrrp_instance",
        "vrrp_script",
        "vrrp_sync_group",
        "virtual_server",
        "virtual_server_group",
        "real_server",
        "HTTP_GET",
        "TCP_CHECK",
        "url",
    }
)
_DIRECTIVES = [
    "@",
    "@^",
    "@n",
    "@^n",
    "$X=",
    "$X",
    "${X}",
    "$X=1",
    "~SEQ(I,1,3)",
    "~SEQ(I,3,1,-1)",
    "~SEQ(I,0,99999999)",
    "~LST(I,a,b)",
    "$I",
    "include",
    "include /nonexistent/pk-fuzz/*.conf",
    "includer",
    "!",
    "#",
    "{",
    "}",
    "{}",
    '"',
    "'",
    "\\",
    "\\\n",
]
_VALUES = [
    "0",
    "-1",
    "255",
    "256",
    "4096",
    "1e309",
    "nan",
    "0x10",
    "192.0.2.1",
    "192.0.2.1/33",
    "2001:db8::1/129",
    "fe80::1%eth0",
    "eth0",
    "dev",
    "via",
    "src",
    "weight",
    "label",
]
TOKEN = st.one_of(
    st.sampled_from(_NAMES),
    st.sampled_from(_DIRECTIVES),
    st.sampled_from(_VALUES),
    st.text(string.printable, max_size=12),
    st.text(max_size=6),  # any code point, NUL and surrogate escapes included
)
LINE = st.lists(TOKEN, max_size=8).map(" ".join)
SOUP = st.lists(LINE, max_size=30).map("\n".join)


def check(text: str) -> None:
    result = core.loads(text, config_id="n", script_env=None)
    assert result.exit_code in (0, 5)
    for problem in result.problems:
        core.format_problem(problem)
    rendered = core.render(result.config)
    if max(map(len, rendered.splitlines()), default=0) > MAX_LINE_LENGTH:
        # A value near keepalived's line limit does not fit again once indented and quoted
        # (docs/reliability.md): such a config cannot be rendered, only parsed.
        return
    assert core.loads(rendered, config_id="n", script_env=None).config == result.config


@fuzz(ci=200)
@given(SOUP)
def test_token_soup_is_a_config_with_problems(text: str) -> None:
    check(text)


@fuzz(ci=100)
@given(st.sampled_from(SEEDS), st.data())
def test_a_sample_cut_or_spliced_anywhere_is_a_config_with_problems(
    seed: str, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(seed)))
    splice = data.draw(st.one_of(st.just(""), LINE, st.sampled_from(_DIRECTIVES)))
    rest = data.draw(st.integers(cut, len(seed)))
    check(seed[:cut] + splice + seed[rest:])


@fuzz(ci=30)
@given(st.sampled_from(["a", "{", "$X", "~SEQ(I,1,2)", '"']), st.integers(1, 200_000))
def test_very_long_lines_and_words_are_refused_not_fatal(word: str, count: int) -> None:
    check(f"global_defs {{\n router_id {word * count}\n}}\n")


# Regressions found by the fuzzer.


@pytest.mark.parametrize("space", ["\xa0", "\u2003", "\x1c", "\x85"])
def test_a_line_of_unicode_space_is_an_unknown_word_not_a_crash(space: str) -> None:
    # It raised IndexError: decomment strips ASCII blanks only, str.split() took U+00A0 as one.
    result = core.loads(f"{space}\nglobal_defs {{\n router_id a{space}b\n}}\n", config_id="n")
    assert result.exit_code == 5
    assert any(space in core.format_problem(p) for p in result.problems)
    # keepalived splits words on ASCII blanks only: the space stays inside the word.
    assert result.config.global_defs.router_id == f"a{space}b"


def test_a_list_item_named_include_renders_quoted_and_reads_back() -> None:
    # Rendered bare, the item stood first on its line and was read back as the directive.
    text = "global_defs {\n notification_email {include\n  ops@example.com\n }\n}\n"
    config = core.loads(text, config_id="n", script_env=None).config
    assert config.global_defs.notification_email == ("include", "ops@example.com")
    rendered = core.render(config)
    assert '"include"' in rendered
    assert core.loads(rendered, config_id="n", script_env=None).config == config
