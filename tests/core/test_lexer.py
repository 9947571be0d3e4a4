import pytest

from core.lexer import LexError, decomment, split_words


@pytest.mark.parametrize(
    ("raw", "text", "offset"),
    [
        ("   priority 100   # comment", "priority 100", 3),
        ("\tstate MASTER ! bang comment", "state MASTER", 1),
        ('script "echo # not a comment"', 'script "echo # not a comment"', 0),
        (r"router_id a\#b\!c", "router_id a#b!c", 0),
        ("# only a comment", "", 0),
        ("", "", 0),
    ],
)
def test_decomment(raw: str, text: str, offset: int) -> None:
    assert decomment(raw) == (text, offset)


def test_decomment_unterminated_quote_reports_column() -> None:
    with pytest.raises(LexError) as exc:
        decomment('  script "abc')
    assert exc.value.col == 10


def test_split_words_quotes_braces_and_columns() -> None:
    toks = split_words('vrrp_instance "A B"{ interface eth0}', "f", 7)
    assert [t.text for t in toks] == ["vrrp_instance", "A B", "{", "interface", "eth0", "}"]
    assert [t.loc.col for t in toks] == [1, 15, 20, 22, 32, 36]
    assert toks[1].quoted and not toks[0].quoted
    assert toks[2].is_open and toks[5].is_close
    assert all(t.loc.line == 7 and t.loc.file == "f" for t in toks)


def test_quoted_brace_is_text() -> None:
    (tok,) = split_words('"{"', "f", 1)
    assert tok.text == "{" and not tok.is_open
