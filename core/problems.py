"""Problems found while reading a config: located, classified, printable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

Severity = Literal["fatal", "error", "warning", "not-implemented"]

SEVERITIES: tuple[Severity, ...] = ("fatal", "error", "warning", "not-implemented")


class Location(NamedTuple):
    """Where a token came from. `line` and `col` are 1-based; 0 means unknown.

    A NamedTuple rather than a frozen dataclass: one is built per token, and tuple construction
    is several times cheaper.
    """

    file: str
    line: int
    col: int = 0

    def __str__(self) -> str:
        if self.col:
            return f"{self.file}:{self.line}:{self.col}"
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. `code` is a stable machine-readable identifier (e.g. "unknown-keyword")."""

    severity: Severity
    code: str
    message: str
    file: str = "<unknown>"
    line: int = 0
    col: int = 0
    text: str = ""
    hint: str | None = None
    source_line: str = ""

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.col)


def find_location(locs: Mapping[tuple[str, ...], Location], at: tuple[str, ...]) -> Location:
    """The most specific known location for a key like ("vrrp_instance", "VI_1", "priority")."""
    while at:
        loc = locs.get(at)
        if loc is not None:
            return loc
        at = at[:-1]
    return Location("<config>", 0, 0)


def format_problem(p: Problem) -> str:
    """`file:line:col: severity: message [did you mean 'x'?]` plus the offending line."""
    loc = str(p.location) if p.line else p.file
    head = f"{loc}: {p.severity}: {p.message}"
    if p.hint:
        head += f" [did you mean '{p.hint}'?]"
    if not p.source_line:
        return head
    caret = ""
    if p.col:
        # Keep tabs so the caret lines up under the offending token in a terminal.
        prefix = "".join(c if c == "\t" else " " for c in p.source_line[: p.col - 1])
        rest = p.source_line[p.col - 1 :]
        # Underline the offending text if it is what stands at the column, else the word there.
        width = (
            len(p.text)
            if p.text and rest.startswith(p.text)
            else len(rest.split(None, 1)[0] if rest.strip() else "")
        )
        caret = "\n    " + prefix + "^" + "~" * max(width - 1, 0)
    return f"{head}\n    {p.source_line}{caret}"
