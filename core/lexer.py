"""Line-level lexing as keepalived does it: comment stripping, quoting, brace splitting.

keepalived works line by line: a line is de-commented, then split into words; `{` and `}` outside
quotes are separate tokens (keepalived splits the line at the brace and treats the rest as the
next line, which gives the same token sequence).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from core.problems import Location

MAX_LINE_LENGTH = 1023


class LexError(ValueError):
    """A line cannot be lexed (e.g. unterminated quote). Carries the 1-based column."""

    def __init__(self, message: str, col: int) -> None:
        super().__init__(message)
        self.col = col


class Token(NamedTuple):
    """A word of the config. `quoted` is true if any part of it was inside double quotes.

    The position is stored flat (not as a Location) because one Token is built per word of the
    config: half the allocations on large files.
    """

    text: str
    file: str
    line: int
    col: int
    quoted: bool = False

    @property
    def loc(self) -> Location:
        return Location(self.file, self.line, self.col)

    @property
    def is_open(self) -> bool:
        return self.text == "{" and not self.quoted

    @property
    def is_close(self) -> bool:
        return self.text == "}" and not self.quoted


def decomment(text: str) -> tuple[str, int]:
    """Strip leading blanks, comments (`#`, `!` outside quotes) and trailing blanks.

    Returns the stripped text and the number of leading characters removed, so callers can keep
    column numbers. `\\#` and `\\!` outside quotes stand for the literal characters; inside
    quotes a `"` preceded by a backslash does not end the quote (keepalived 2.2.7, verified).
    Raises LexError on an unterminated quote.
    """
    stripped = text.lstrip(" \t\r\n\f\v")
    offset = len(text) - len(stripped)
    if not any(c in stripped for c in '"#!\\'):
        return stripped.rstrip(" \t\r\n\f\v"), offset
    out: list[str] = []
    in_quote = False
    quote_col = 0
    i = 0
    n = len(stripped)
    while i < n:
        c = stripped[i]
        if c == '"' and not (in_quote and i and stripped[i - 1] == "\\"):
            in_quote = not in_quote
            quote_col = offset + i + 1
            out.append(c)
        elif not in_quote and c == "\\" and i + 1 < n and stripped[i + 1] in "#!":
            out.append(stripped[i + 1])
            i += 1
        elif not in_quote and c in "#!":
            break
        else:
            out.append(c)
        i += 1
    if in_quote:
        raise LexError("Unterminated quote", quote_col)
    return "".join(out).rstrip(" \t\r\n\f\v"), offset


#: words that make a line an include directive when they come first on it (unquoted)
INCLUDE_DIRECTIVES = frozenset(
    {"include", "includer", "includem", "includew", "includeb", "includea"}
)
_QUOTED = r'"(?:\\"|[^"])*"'
# Blanks are ASCII only, as keepalived's (C locale isspace) and _split_words_slow's: U+00A0
# and the other Unicode spaces are part of a word.
_WORD_RE = re.compile(r'(?:[^ \t\r\n\f\v{}"]+|' + _QUOTED + r")+|[{}]")
_QUOTED_RE = re.compile(_QUOTED)
_QUOTE_ESCAPE_RE = re.compile(r'\\([\\"])')


def _unquote(word: str) -> str:
    # Inside double quotes keepalived's first tokenizer turns \" into " and \\ into \; every
    # other backslash is left for the script splitter (``scripts.split_command``).
    return _QUOTED_RE.sub(lambda m: _QUOTE_ESCAPE_RE.sub(r"\1", m.group()[1:-1]), word)


def _open_quote(text: str) -> int:
    """Index of an unterminated opening quote, or -1."""
    in_quote = False
    start = -1
    for i, c in enumerate(text):
        if c == '"' and not (in_quote and i and text[i - 1] == "\\"):
            in_quote = not in_quote
            start = i
    return start if in_quote else -1


def split_words(text: str, file: str, line: int, col_offset: int = 0) -> list[Token]:
    """Split a de-commented line into tokens; quotes group words and are removed."""
    out: list[Token] = []
    base = col_offset + 1
    if '"' not in text:
        for m in _WORD_RE.finditer(text):
            out.append(Token(m.group(), file, line, base + m.start()))
        return out
    bad = _open_quote(text)
    if bad >= 0:
        raise LexError("Unterminated quote", base + bad)
    for m in _WORD_RE.finditer(text):
        word = m.group()
        if '"' in word:
            out.append(Token(_unquote(word), file, line, base + m.start(), True))
        else:
            out.append(Token(word, file, line, base + m.start()))
    return out


def _split_words_slow(text: str, file: str, line: int, col_offset: int = 0) -> list[Token]:
    """Reference implementation of `split_words` (kept for the equivalence test)."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n\f\v":
            i += 1
            continue
        start = i
        if c in "{}":
            tokens.append(Token(c, file, line, col_offset + start + 1))
            i += 1
            continue
        buf: list[str] = []
        quoted = False
        while i < n:
            c = text[i]
            if c == '"':
                quoted = True
                j = i + 1
                # A quote preceded by a backslash does not end the quoted text.
                while j < n and not (text[j] == '"' and text[j - 1] != "\\"):
                    j += 1
                if j >= n:
                    raise LexError("Unterminated quote", col_offset + i + 1)
                k = i + 1
                while k < j:
                    if text[k] == "\\" and k + 1 < j + 1 and text[k + 1] in '"\\':
                        buf.append(text[k + 1])
                        k += 2
                    else:
                        buf.append(text[k])
                        k += 1
                i = j + 1
                continue
            if c in " \t\r\n\f\v{}":
                break
            buf.append(c)
            i += 1
        tokens.append(Token("".join(buf), file, line, col_offset + start + 1, quoted))
    return tokens
