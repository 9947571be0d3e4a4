"""keepalived's config preprocessor: include, `@` conditionals, `$` definitions, ~SEQ/~LST.

Input: a main file (or text). Output: logical lines of `Token`s with file/line/column, in the
order keepalived would see them, plus the `Problem`s met on the way. File I/O is confined to the
`reader` callable and `glob`, so the logic is testable with text alone.
"""

from __future__ import annotations

import glob as globmod
import os
import random
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.lexer import (
    INCLUDE_DIRECTIVES,
    MAX_LINE_LENGTH,
    LexError,
    Token,
    decomment,
    split_words,
)
from core.problems import Problem, Severity

_DEF_RE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLANKS_RE = re.compile(r"[ \t\r\n\f\v]+")
_MAX_DEPTH = 32
_MAX_REPLACEMENTS = 10_000
_MAX_LOOP_LINES = 1_000_000
_MAX_EXPANDED_LENGTH = 100_000

Reader = Callable[[str], str]


def default_config_id() -> str:
    """keepalived's default config-id: the host name up to the first dot."""
    return socket.gethostname().split(".", 1)[0]


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        return fh.read()


def brace_expand(pattern: str) -> list[str]:
    """Expand `{a,b}` alternatives like glob(3) with GLOB_BRACE."""
    depth = 0
    start = -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                inner = pattern[start + 1 : i]
                parts: list[str] = []
                d = 0
                cur: list[str] = []
                for ch in inner:
                    if ch == "," and d == 0:
                        parts.append("".join(cur))
                        cur = []
                        continue
                    d += ch == "{"
                    d -= ch == "}"
                    cur.append(ch)
                parts.append("".join(cur))
                if len(parts) == 1:
                    continue
                out: list[str] = []
                for p in parts:
                    out.extend(brace_expand(pattern[:start] + p + pattern[i + 1 :]))
                return out
    return [pattern]


@dataclass(slots=True)
class Preprocessed:
    """Logical lines of tokens, problems, and the raw text of every file read (for messages)."""

    lines: list[list[Token]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


class Preprocessor:
    """Stateful reader: definitions persist across included files, as in keepalived."""

    def __init__(
        self,
        config_id: str | None = None,
        reader: Reader = _read_file,
        seed: int | None = None,
        *,
        strict_includes: bool = False,
    ) -> None:
        self.config_id = config_id if config_id is not None else default_config_id()
        #: keepalived's -e (--all-config): every include is an includet, a missing file an error
        self.strict_includes = strict_includes
        self.reader = reader
        self.defs: dict[str, list[str]] = {}
        self.out = Preprocessed()
        self._stack: list[str] = []
        self._rng = random.Random(seed)
        # Nested loops multiply; cap the lines they may produce in one config.
        self._loop_budget = _MAX_LOOP_LINES

    # -- problems -------------------------------------------------------------------------
    def _problem(
        self,
        severity: Severity,
        code: str,
        message: str,
        file: str,
        line: int,
        col: int = 0,
        text: str = "",
    ) -> None:
        self.out.problems.append(Problem(severity, code, message, file, line, col, text))

    # -- entry points ---------------------------------------------------------------------
    def run_file(self, path: str) -> Preprocessed:
        try:
            text = self.reader(path)
        except OSError as exc:
            self._problem(
                "fatal", "config-missing", f"cannot read config file: {exc.strerror}", path, 0
            )
            return self.out
        return self.run_text(text, path)

    def run_text(self, text: str, path: str) -> Preprocessed:
        self._process_file_text(text, path)
        return self.out

    # -- files ----------------------------------------------------------------------------
    def _process_file_text(self, text: str, path: str) -> None:
        # Lines end at "\n" only, as keepalived reads them (str.splitlines would also break
        # at \x1c..\x1e, \x85, U+2028...); a "\r" before it is a trailing blank.
        raw_lines = text.split("\n")
        if raw_lines[-1] == "":
            raw_lines.pop()
        self.out.sources[path] = raw_lines
        self.out.files.append(path)
        # Compare real paths so "a.conf" and "conf.d/../a.conf" are one file for loop detection.
        self._stack.append(os.path.realpath(path) if not path.startswith("<") else path)
        try:
            i = 0
            while i < len(raw_lines):
                lineno = i + 1
                raw = raw_lines[i]
                i += 1
                if len(raw) > MAX_LINE_LENGTH:
                    self._problem(
                        "error", "line-too-long", "line too long - ignoring", path, lineno
                    )
                    continue
                try:
                    text_, off = decomment(raw)
                except LexError as exc:
                    self._problem("error", "unterminated-quote", str(exc), path, lineno, exc.col)
                    continue
                if not text_:
                    continue
                # Only ASCII blanks separate words (keepalived's C isspace; decomment strips
                # the same set), so a line of U+00A0 is one word, not an empty split.
                first = _BLANKS_RE.split(text_, maxsplit=1)[0]
                if first in INCLUDE_DIRECTIVES:
                    self._include(text_, first, path, lineno, off)
                    continue
                m = _DEF_RE.match(text_)
                if m and text_.endswith("\\"):
                    # A multi-line definition: following lines are taken until one does not end
                    # in a backslash.
                    value = [m.group(2)[:-1].rstrip()] if m.group(2)[:-1].strip() else []
                    while i < len(raw_lines):
                        try:
                            more, _ = decomment(raw_lines[i])
                        except LexError as exc:
                            self._problem(
                                "error", "unterminated-quote", str(exc), path, i + 1, exc.col
                            )
                            more = ""
                        i += 1
                        if more.endswith("\\"):
                            if more[:-1].strip():
                                value.append(more[:-1].rstrip())
                            continue
                        if more:
                            value.append(more)
                        break
                    self._define(m.group(1), value, path, lineno)
                    continue
                self._line(text_, path, lineno, off, depth=0)
        finally:
            self._stack.pop()

    def _include(self, text: str, kind: str, path: str, lineno: int, off: int) -> None:
        # Split on blanks only: braces in an include pattern are glob alternatives, not blocks.
        words = [w.replace('"', "") for w in re.findall(r'(?:[^\s"]+|"[^"]*")+', text)]
        if len(words) < 2:
            self._problem(
                "error", "include", f"'{kind}' needs a file name", path, lineno, off + 1, kind
            )
            return
        strict = kind != "include" or self.strict_includes
        base = os.path.dirname(path) if path and not path.startswith("<") else os.getcwd()
        for pattern in words[1:]:
            full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
            matches: list[str] = []
            for alt in brace_expand(full):
                if globmod.has_magic(alt):
                    matches.extend(sorted(globmod.glob(alt)))
                elif os.path.exists(alt):
                    matches.append(alt)
            matches = [m for m in matches if not os.path.isdir(m)]
            if not matches:
                sev: Severity = "error" if strict else "warning"
                self._problem(
                    sev,
                    "config-missing",
                    f"Config files missing: '{pattern}'",
                    path,
                    lineno,
                    off + 1,
                    pattern,
                )
                continue
            for m in matches:
                if os.path.realpath(m) in self._stack or len(self._stack) >= _MAX_DEPTH:
                    self._problem(
                        "error",
                        "include-loop",
                        f"include loop: '{m}'",
                        path,
                        lineno,
                        off + 1,
                        pattern,
                    )
                    continue
                try:
                    text_ = self.reader(m)
                except OSError as exc:
                    sev = "error" if strict else "warning"
                    self._problem(
                        sev, "config-unreadable", f"cannot read '{m}': {exc.strerror}", path, lineno
                    )
                    continue
                self._process_file_text(text_, m)

    def _define(self, name: str, value: list[str], path: str, lineno: int) -> None:
        if name.startswith("_"):
            self._problem(
                "error",
                "reserved-name",
                f"definition name '${name}' is reserved",
                path,
                lineno,
                2,
                name,
            )
            return
        self.defs[name] = value

    # -- one logical line -----------------------------------------------------------------
    def _line(self, text: str, path: str, lineno: int, off: int, depth: int) -> None:
        if depth > _MAX_DEPTH:
            self._problem("error", "expansion-depth", "definition expansion too deep", path, lineno)
            return
        if text.startswith("@"):
            m = re.match(r"@(\^?)(\S+)", text)
            if not m:
                self._problem(
                    "error", "conditional", "'@' without a config id", path, lineno, off + 1
                )
                return
            rest = text[m.end() :]
            stripped = rest.lstrip()
            if not stripped:
                self._problem(
                    "error",
                    "conditional",
                    "nothing follows the config id",
                    path,
                    lineno,
                    off + 1,
                    m.group(0),
                )
                return
            matched = m.group(2) == self.config_id
            if bool(m.group(1)) == matched:
                return
            off += m.end() + len(rest) - len(stripped)
            text = stripped
        m2 = _DEF_RE.match(text)
        if m2:
            self._define(m2.group(1), [m2.group(2)], path, lineno)
            return
        if text.startswith("~SEQ") or text.startswith("~LST"):
            self._loop(text, path, lineno, off, depth)
            return
        if "$" in text:
            expanded = self._substitute(text, path, lineno)
            if expanded != [text]:
                for piece in expanded:
                    try:
                        piece_, _ = decomment(piece)
                    except LexError as exc:
                        self._problem(
                            "error", "unterminated-quote", str(exc), path, lineno, exc.col
                        )
                        continue
                    if piece_:
                        # Column numbers are no longer exact after expansion; keep the line's start.
                        self._emit(piece_, path, lineno, off, depth + 1, exact=False)
                return
        self._emit(text, path, lineno, off, depth, exact=True)

    def _emit(
        self, text: str, path: str, lineno: int, off: int, depth: int, *, exact: bool
    ) -> None:
        if not exact and (text.startswith("@") or text.startswith("~")):
            self._line(text, path, lineno, off, depth + 1)
            return
        try:
            tokens = split_words(text, path, lineno, off)
        except LexError as exc:
            self._problem("error", "unterminated-quote", str(exc), path, lineno, exc.col)
            return
        if not exact:
            tokens = [t._replace(col=off + 1) for t in tokens]
        if tokens:
            self.out.lines.append(tokens)

    # -- ~SEQ / ~LST ------------------------------------------------------------------------
    def _loop(self, text: str, path: str, lineno: int, off: int, depth: int) -> None:
        m = re.match(r"~(SEQx?|LST)\(", text)
        close = _matching_paren(text, m.end() - 1) if m else -1
        if not m or close < 0:
            self._problem(
                "error",
                "loop",
                "malformed ~SEQ/~LST",
                path,
                lineno,
                off + 1,
                text.split(maxsplit=1)[0],
            )
            return
        kind = m.group(1)
        args = _split_args(text[m.end() : close])
        rest = text[close + 1 :].lstrip()
        if not rest:
            self._problem("error", "loop", f"nothing follows ~{kind}(...)", path, lineno, off + 1)
            return
        rest_off = off + len(text) - len(rest)
        try:
            names, rows = _loop_rows(kind, args)
        except ValueError as exc:
            self._problem(
                "error", "loop", f"~{kind}: {exc}", path, lineno, off + 1, text[: close + 1]
            )
            return
        saved = {n: self.defs.get(n) for n in names}
        try:
            for row in rows:
                self._loop_budget -= 1
                if self._loop_budget < 0:
                    if self._loop_budget == -1:
                        self._problem(
                            "error", "loop", "~SEQ/~LST produce too many lines", path, lineno
                        )
                    return
                for n, v in zip(names, row, strict=True):
                    self.defs[n] = [v]
                self._line(rest, path, lineno, rest_off, depth + 1)
        finally:
            for n, old in saved.items():
                if old is None:
                    self.defs.pop(n, None)
                else:
                    self.defs[n] = old

    # -- $NAME substitution ---------------------------------------------------------------
    def _builtin(self, name: str, path: str) -> list[str] | None:
        if name == "_PWD":
            return [
                os.path.dirname(os.path.abspath(path)) if not path.startswith("<") else os.getcwd()
            ]
        if name == "_INSTANCE":
            return [self.config_id]
        if name == "_HASH":
            return ["\\#"]
        if name == "_BANG":
            return ["\\!"]
        parts = name.split()
        if parts and parts[0] == "_RANDOM":
            lo, hi = 0, 32767
            try:
                if len(parts) > 1:
                    lo = int(parts[1], 0)
                if len(parts) > 2:
                    hi = int(parts[2], 0)
            except ValueError:
                return None
            return [str(self._rng.randint(min(lo, hi), max(lo, hi)))]
        if parts and parts[0] == "_ENV" and len(parts) == 2:
            return [os.environ.get(parts[1], "")]
        return None

    def _substitute(self, text: str, path: str, lineno: int) -> list[str]:
        """Replace `${NAME}` anywhere and `$NAME` before blank, `,`, `)` or end of line.

        Replacement text is scanned again (definitions may refer to others); a budget on the
        number of replacements and on line length stops self-referencing definitions.
        """
        budget = _MAX_REPLACEMENTS
        out: list[str] = []
        todo: list[tuple[str, int]] = [(text, 0)]
        while todo:
            t, i = todo.pop(0)
            while True:
                j = t.find("$", i)
                if j < 0:
                    out.append(t)
                    break
                value, end = self._lookup(t, j, path)
                if value is None:
                    i = j + 1
                    continue
                budget -= 1
                if budget < 0 or len(t) > _MAX_EXPANDED_LENGTH:
                    self._problem(
                        "error", "expansion-depth", "definition expansion too deep", path, lineno
                    )
                    return [text]
                before, after = t[:j], t[end:]
                if len(value) <= 1:
                    t = before + (value[0] if value else "") + after
                    i = j
                    continue
                lines = [before + value[0], *value[1:-1], value[-1] + after]
                todo[:0] = [(lines[0], j), *((ln, 0) for ln in lines[1:])]
                break
        return out

    def _lookup(self, t: str, j: int, path: str) -> tuple[list[str] | None, int]:
        """The value of the reference starting at `t[j] == "$"`, and where the reference ends."""
        if t.startswith("{", j + 1):
            close = t.find("}", j + 2)
            if close > 0:
                name = t[j + 2 : close]
                value = self.defs[name] if name in self.defs else self._builtin(name, path)
                return value, close + 1
            return None, j + 1
        m = _NAME_RE.match(t, j + 1)
        if m and (m.end() == len(t) or t[m.end()] in " \t,)"):
            name = m.group(0)
            value = self.defs[name] if name in self.defs else self._builtin(name, path)
            return value, m.end()
        return None, j + 1


def _c_int(text: str) -> int:
    t = text.strip()
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    if t.lower().startswith("0x"):
        return sign * int(t[2:], 16)
    if len(t) > 1 and t.startswith("0"):
        return sign * int(t[1:], 8)
    return sign * int(t, 10)


def _matching_paren(text: str, open_idx: int) -> int:
    depth = 0
    for i in range(open_idx, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_args(s: str) -> list[str]:
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for c in s:
        if c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        depth += c == "{"
        depth -= c == "}"
        cur.append(c)
    out.append("".join(cur).strip())
    return out


def _loop_rows(kind: str, args: list[str]) -> tuple[list[str], list[list[str]]]:
    if kind.startswith("SEQ"):
        if len(args) < 2 or len(args) > 4:
            raise ValueError("expects (var, [start, [step,]] end)")
        var = args[0]
        if not _NAME_RE.fullmatch(var):
            raise ValueError(f"bad variable name '{var}'")
        # ~SEQx takes C-style numbers (0x.. hex, 0.. octal, decimal), as keepalived does.
        nums = [(_c_int(a) if kind == "SEQx" else int(a)) if a else 0 for a in args[1:]]
        if len(nums) == 1:
            end = nums[0]
            start = 1 if end >= 0 else -1
            step = 1 if end >= start else -1
        elif len(nums) == 2:
            start, end = nums
            step = 1 if end >= start else -1
        else:
            start, step, end = nums
        if step == 0 or (end - start) * step < 0:
            raise ValueError("the step never reaches the end")
        if (end - start) // step > 100000:
            raise ValueError("too many iterations")
        fmt = (lambda v: format(v, "x")) if kind == "SEQx" else str
        return [var], [[fmt(v)] for v in range(start, end + (1 if step > 0 else -1), step)]
    if len(args) < 2:
        raise ValueError("expects (var, value, ...)")
    first = args[0]
    if first.startswith("{"):
        names = [n.strip() for n in first.strip("{}").split(",")]
        rows = []
        for a in args[1:]:
            vals = [v.strip() for v in a.strip("{}").split(",")]
            if len(vals) != len(names):
                raise ValueError(f"'{a}' does not have {len(names)} values")
            rows.append(vals)
    else:
        names = [first]
        rows = [[a] for a in args[1:]]
    for n in names:
        if not _NAME_RE.fullmatch(n):
            raise ValueError(f"bad variable name '{n}'")
    return names, rows


def preprocess_file(path: str | Path, config_id: str | None = None) -> Preprocessed:
    return Preprocessor(config_id).run_file(str(path))


def preprocess_text(
    text: str, path: str = "<string>", config_id: str | None = None
) -> Preprocessed:
    return Preprocessor(config_id).run_text(text, path)
