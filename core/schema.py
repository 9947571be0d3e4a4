"""Table-driven keyword engine: value types, keyword specs, block parse and render.

A block's schema is a list of `Kw`: keyword name, the model field(s) it sets, a value type that
parses its arguments and prints them back, and flags (alias, deprecated, not implemented). The
same table drives parsing, "did you mean" hints and `render`, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from core.lexer import INCLUDE_DIRECTIVES, Token
from core.listen import parse_listen
from core.model import HostPort, RawOption, Script, UserGroup
from core.problems import Location, Problem, Severity
from core.tree import Node

TRUE_WORDS = {"on", "true", "yes"}
FALSE_WORDS = {"off", "false", "no"}


class ArgError(ValueError):
    """The arguments of a keyword are wrong; `token` points at the culprit if known."""

    def __init__(self, message: str, token: Token | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.token = token
        self.hint = hint


class Ctx:
    """Collects problems while parsing; shared by every block parser."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        # (block keyword, name[, keyword]) -> where it was written; lets semantic checks point
        # at the source although the model itself carries no locations.
        self.locs: dict[tuple[str, ...], Location] = {}
        self.owner: tuple[str, ...] = ()
        # keyword -> blocks that accept it, to explain a keyword written in the wrong block.
        self.known_in: Mapping[str, tuple[str, ...]] = {}

    def report(
        self,
        severity: Severity,
        code: str,
        message: str,
        where: Token | Location | None,
        text: str = "",
        hint: str | None = None,
    ) -> None:
        if isinstance(where, Token):
            loc = where.loc
            text = text or where.text
        elif where is None:
            loc = Location("<unknown>", 0, 0)
        else:
            loc = where
        self.problems.append(
            Problem(severity, code, message, loc.file, loc.line, loc.col, text, hint)
        )


# -- value types --------------------------------------------------------------------------


class VType(Protocol):
    block: bool

    def parse(self, node: Node, ctx: Ctx) -> Any: ...

    def render(self, kw: str, value: Any, indent: str) -> list[str]: ...


def quote(s: str) -> str:
    """`s` as one config word: bare when that reads back the same, else double-quoted."""
    # A bare "include" first on a line (a list item) would be read as the directive.
    if (
        s
        and not any(c in s for c in ' \t"{}#!')
        and not s.startswith(("@", "$", "~"))
        and s not in INCLUDE_DIRECTIVES
    ):
        return s
    return quote_always(s)


def quote_always(s: str) -> str:
    # Inside quotes keepalived reads \\ as \ and \" as ".
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one(node: Node) -> Token:
    if not node.args:
        raise ArgError(f"'{node.keyword}' needs a value", node.words[0])
    if len(node.args) > 1:
        raise ArgError(
            f"'{node.keyword}' takes one value; extra '{node.args[1].text}'", node.args[1]
        )
    return node.args[0]


def parse_bool(tok: Token) -> bool:
    w = tok.text.lower()
    if w in TRUE_WORDS:
        return True
    if w in FALSE_WORDS:
        return False
    raise ArgError(f"'{tok.text}' is not a boolean (on/off/true/false/yes/no)", tok)


def parse_int(tok: Token, lo: int | None = None, hi: int | None = None, base: int = 10) -> int:
    try:
        v = int(tok.text, base)
    except ValueError:
        raise ArgError(f"'{tok.text}' is not an integer", tok) from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ArgError(f"number '{tok.text}' outside range [{lo}, {hi}]", tok)
    return v


def c_integer(text: str) -> int:
    """An integer as C's strtoul(…, 0) reads it: ``0x`` hex, a leading ``0`` octal, else decimal.

    keepalived reads ``umask`` (and ``-u``) this way, so ``0027`` is octal, as operators mean it.
    """
    if text.lower().startswith("0x"):
        return int(text[2:], 16)
    if len(text) > 1 and text.startswith("0"):
        return int(text[1:], 8)
    return int(text, 10)


@dataclass(frozen=True)
class FileMode:
    """A permission mask such as ``umask 0027``, read like keepalived (C's base-0 integers)."""

    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> int:
        tok = _one(node)
        try:
            value = c_integer(tok.text)
        except ValueError:
            raise ArgError(f"'{tok.text}' is not a number (e.g. 0027)", tok) from None
        if not 0 <= value <= 0o777:
            raise ArgError(f"'{tok.text}' is not a mask between 0 and 0777", tok)
        return value

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} 0{value:o}"]


def parse_float(tok: Token, lo: float | None = None, hi: float | None = None) -> float:
    try:
        v = float(tok.text)
    except ValueError:
        raise ArgError(f"'{tok.text}' is not a number", tok) from None
    if not math.isfinite(v):
        raise ArgError(f"'{tok.text}' is not a finite number", tok)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ArgError(f"number '{tok.text}' outside range [{lo}, {hi}]", tok)
    return v


def fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def parse_ip(tok: Token) -> str:
    try:
        return str(ipaddress.ip_address(tok.text))
    except ValueError:
        raise ArgError(f"invalid IP address '{tok.text}'", tok) from None


@dataclass(frozen=True)
class Flag:
    """No argument = true; an optional on/off argument."""

    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> bool:
        if not node.args:
            return True
        return parse_bool(_one(node))

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw}"] if value else [f"{indent}{kw} false"]


@dataclass(frozen=True)
class FlagOption:
    """A flag with one optional word, e.g. `dynamic_interfaces [allow_if_changes]`."""

    option: str
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> tuple[bool, bool]:
        if not node.args:
            return True, False
        tok = _one(node)
        if tok.text != self.option:
            raise ArgError(f"'{tok.text}' is not '{self.option}'", tok, self.option)
        return True, True

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        on, opt = value
        if not on:
            return []
        return [f"{indent}{kw}" + (f" {self.option}" if opt else "")]


@dataclass(frozen=True)
class Const:
    """A keyword without arguments that sets its field to a fixed value."""

    value: Any
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> Any:
        if node.args:
            raise ArgError(f"'{node.keyword}' takes no value", node.args[0])
        return self.value

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw}"] if value == self.value else []


@dataclass(frozen=True)
class Int:
    lo: int | None = None
    hi: int | None = None
    base: int = 10
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> int:
        return parse_int(_one(node), self.lo, self.hi, self.base)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {value}"]


@dataclass(frozen=True)
class OptInt:
    """An integer that may be omitted, giving `bare`."""

    bare: int
    lo: int | None = None
    hi: int | None = None
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> int:
        if not node.args:
            return self.bare
        return parse_int(_one(node), self.lo, self.hi)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {value}"]


@dataclass(frozen=True)
class Float:
    lo: float | None = None
    hi: float | None = None
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> float:
        return parse_float(_one(node), self.lo, self.hi)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {fmt_num(value)}"]


@dataclass(frozen=True)
class DupFloat:
    """One number that sets several fields (e.g. track_process `delay`)."""

    n: int
    lo: float | None = None
    hi: float | None = None
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> tuple[float, ...]:
        v = parse_float(_one(node), self.lo, self.hi)
        return (v,) * self.n

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return []


@dataclass(frozen=True)
class Str:
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> str:
        return _one(node).text

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {quote(value)}"]


@dataclass(frozen=True)
class Ip:
    multicast: bool = False
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> str:
        tok = _one(node)
        ip = parse_ip(tok)
        if self.multicast and not ipaddress.ip_address(ip).is_multicast:
            raise ArgError(f"{ip} is not a multicast address", tok)
        return ip

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {value}"]


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]
    fold_case: bool = False
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> str:
        tok = _one(node)
        word = tok.text.upper() if self.fold_case else tok.text
        if word not in self.options:
            close = [o for o in self.options if o.lower() == tok.text.lower()]
            close = close or difflib.get_close_matches(tok.text, self.options, 1, 0.5)
            raise ArgError(
                f"'{tok.text}' is not one of {', '.join(self.options)}",
                tok,
                close[0] if close else None,
            )
        return word

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {value}"]


@dataclass(frozen=True)
class IntChoice:
    options: tuple[int, ...]
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> int:
        tok = _one(node)
        v = parse_int(tok)
        if v not in self.options:
            raise ArgError(f"'{tok.text}' must be one of {', '.join(map(str, self.options))}", tok)
        return v

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {value}"]


@dataclass(frozen=True)
class CpuList:
    """`ID ...`: CPU numbers, each one this machine has online (as keepalived checks them)."""

    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> tuple[int, ...]:
        if not node.args:
            raise ArgError(f"'{node.keyword}' needs at least one CPU number", node.words[0])
        online = os.cpu_count() or 1
        return tuple(sorted({parse_int(tok, 0, online - 1) for tok in node.args}))

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [" ".join([f"{indent}{kw}", *map(str, value)])]


@dataclass(frozen=True)
class Words:
    """All arguments as a tuple of strings."""

    min: int = 1
    max: int | None = None
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> tuple[str, ...]:
        n = len(node.args)
        if n < self.min:
            raise ArgError(f"'{node.keyword}' needs at least {self.min} value(s)", node.words[0])
        if self.max is not None and n > self.max:
            raise ArgError(
                f"'{node.keyword}' takes at most {self.max} value(s)", node.args[self.max]
            )
        return tuple(t.text for t in node.args)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [" ".join([f"{indent}{kw}", *map(quote, value)])]


def _join_command(tokens: Sequence[Token]) -> str:
    # Several words make one command; a quoted word keeps its blanks and quotes by escaping them
    # so split_command gives the same argv (and the result can be printed inside "...").
    def esc(t: Token) -> str:
        if not t.quoted:
            return t.text
        return "".join("\\" + c if c in " \t'" else c for c in t.text)

    return " ".join(esc(t) for t in tokens)


@dataclass(frozen=True)
class ScriptT:
    """`CMD [user [group]]`; without `with_user`, just `CMD`.

    `first_word_only`: keepalived 2.2.7 runs only the first word of an unquoted multi-word
    vrrp_script `script` (verified with its -d dump); we do the same and say so. Otherwise the
    words are joined into one command.
    """

    with_user: bool = True
    first_word_only: bool = False
    block: bool = False
    #: the command is optional (``notify_deleted`` alone only switches DELETED reports on);
    #: a bare keyword parses to ``Script("")``
    optional: bool = False

    def parse(self, node: Node, ctx: Ctx) -> Script:
        args = node.args
        if not args and self.optional:
            return Script("")
        if not args:
            raise ArgError(f"'{node.keyword}' needs a command", node.words[0])
        if not self.with_user:
            if len(args) == 1:
                return Script(args[0].text)
            if self.first_word_only:
                ctx.report(
                    "warning",
                    "script-words-ignored",
                    f"only '{args[0].text}' is run; keepalived ignores the other words of an "
                    f"unquoted {node.keyword} - quote the whole command to pass arguments",
                    args[1],
                )
                return Script(args[0].text)
            return Script(_join_command(args))
        if len(args) > 3:
            raise ArgError(
                f"'{node.keyword}': too many words; quote the command and its arguments", args[3]
            )
        return Script(
            args[0].text,
            args[1].text if len(args) > 1 else None,
            args[2].text if len(args) > 2 else None,
        )

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        assert isinstance(value, Script)
        if not value.command and self.optional:
            return [f"{indent}{kw}"]
        parts = [f"{indent}{kw}", quote_always(value.command)]
        if value.user is not None:
            parts.append(quote(value.user))
            if value.group is not None:
                parts.append(quote(value.group))
        return [" ".join(parts)]


@dataclass(frozen=True)
class UserGroupT:
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> UserGroup:
        if not node.args or len(node.args) > 2:
            raise ArgError(f"'{node.keyword}' takes USER [GROUP]", node.words[0])
        return UserGroup(node.args[0].text, node.args[1].text if len(node.args) > 1 else None)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        assert isinstance(value, UserGroup)
        return [
            " ".join(
                [f"{indent}{kw}", quote(value.user), *([quote(value.group)] if value.group else [])]
            )
        ]


@dataclass(frozen=True)
class ListenT:
    """``HOST:PORT`` (see ``core.listen``), kept as written."""

    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> str:
        tok = _one(node)
        try:
            parse_listen(tok.text)
        except ValueError as exc:
            raise ArgError(str(exc), tok) from None
        return tok.text

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {value}"]


@dataclass(frozen=True)
class HostPortT:
    default_port: int | None = None
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> HostPort:
        if not node.args or len(node.args) > 2:
            raise ArgError(f"'{node.keyword}' takes HOST [PORT]", node.words[0])
        port = parse_int(node.args[1], 0, 65535) if len(node.args) > 1 else None
        return HostPort(node.args[0].text, port)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        assert isinstance(value, HostPort)
        return [
            f"{indent}{kw} {quote(value.host)}"
            + (f" {value.port}" if value.port is not None else "")
        ]


@dataclass(frozen=True)
class WeightT:
    """`weight W [reverse]` → (weight, reverse)."""

    lo: int = -253
    hi: int = 253
    block: bool = False

    def parse(self, node: Node, ctx: Ctx) -> tuple[int, bool]:
        if not node.args or len(node.args) > 2:
            raise ArgError("'weight' takes W [reverse]", node.words[0])
        w = parse_int(node.args[0], self.lo, self.hi)
        rev = False
        if len(node.args) == 2:
            if node.args[1].text not in ("reverse", "noreverse"):
                raise ArgError(f"unknown weight option '{node.args[1].text}'", node.args[1])
            rev = node.args[1].text == "reverse"
        return w, rev

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        w, rev = value
        return [f"{indent}{kw} {w}" + (" reverse" if rev else "")]


@dataclass(frozen=True)
class WordList:
    """A `{ }` block of plain words (several per line allowed)."""

    block: bool = True

    def parse(self, node: Node, ctx: Ctx) -> tuple[str, ...]:
        out: list[str] = []
        for child in node.children or []:
            if child.children is not None:
                ctx.report("error", "unexpected-brace", "Unexpected '{' - ignoring", child.words[0])
            out.extend(t.text for t in child.words)
        return tuple(out)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {{", *(f"{indent}  {quote(v)}" for v in value), f"{indent}}}"]


@dataclass(frozen=True)
class EntryList:
    """A `{ }` block where each line is one entry parsed by `parse_entry` (bad ones dropped)."""

    parse_entry: Callable[[list[Token], Ctx], Any]
    render_entry: Callable[[Any], str]
    what: str = "entry"
    block: bool = True

    def parse(self, node: Node, ctx: Ctx) -> tuple[Any, ...]:
        out: list[Any] = []
        for child in node.children or []:
            if child.children is not None:
                ctx.report("error", "unexpected-brace", "Unexpected '{' - ignoring", child.words[0])
                continue
            try:
                out.append(self.parse_entry(child.words, ctx))
            except ArgError as exc:
                ctx.report(
                    "error",
                    "bad-value",
                    f"{exc} - ignoring {self.what}",
                    exc.token or child.words[0],
                    hint=exc.hint,
                )
                continue
            # Entries are addressed by their index in the model so checks can point at the
            # exact line.
            ctx.locs.setdefault((*ctx.owner, node.keyword, f"#{len(out) - 1}"), child.loc)
        return tuple(out)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [
            f"{indent}{kw} {{",
            *(f"{indent}  {self.render_entry(v)}" for v in value),
            f"{indent}}}",
        ]


# -- keyword specs and blocks ---------------------------------------------------------------

Mode = Literal["set", "append", "extend"]


@dataclass(frozen=True)
class Kw:
    name: str
    fields: tuple[str, ...]
    vtype: Any
    mode: Mode = "set"
    canonical: bool = True
    implemented: bool = True
    deprecated: str | None = None  # the replacement keyword to suggest
    # keepalived 2.2.7 -t fails on this deprecated keyword (it logs a config error), or accepts
    # it silently as a synonym; the problem code differs so exit codes can match.
    deprecated_fails: bool = True
    # pykeepalived's own keyword (keepalived reports it as unknown): -t says so
    ours: bool = False


def K(  # noqa: N802 - a short constructor keeps the keyword tables readable
    name: str,
    vtype: Any,
    field: str | tuple[str, ...] | None = None,
    *,
    mode: Mode = "set",
    canonical: bool = True,
    implemented: bool = True,
    deprecated: str | None = None,
    deprecated_fails: bool = True,
    ours: bool = False,
) -> Kw:
    fields = (field,) if isinstance(field, str) else (field or (name,))
    return Kw(name, fields, vtype, mode, canonical, implemented, deprecated, deprecated_fails, ours)


@dataclass(frozen=True)
class Raw:
    """A keyword we accept and keep verbatim (``other``); unless ``implemented`` (read from
    ``other`` by whoever acts on it), we do not act on it and report it as not-implemented."""

    name: str
    min_args: int = 0
    max_args: int | None = None
    block: bool | None = False  # None: block optional
    deprecated: str | None = None
    # no not-implemented report: a compat no-op, or one core.checks reports more precisely
    quiet: bool = False
    # acted on although kept verbatim (the virtual_server flags netd's IPVS backend sends)
    implemented: bool = False
    deprecated_fails: bool = True


class BlockSchema:
    def __init__(self, name: str, cls: type[Any], entries: Sequence[Kw | Raw]) -> None:
        self.name = name
        self.cls = cls
        self.kws = [e for e in entries if isinstance(e, Kw)]
        self.raws = {e.name: e for e in entries if isinstance(e, Raw)}
        self.by_name: dict[str, Kw] = {k.name: k for k in self.kws}
        self.names = sorted(set(self.by_name) | set(self.raws))
        self.defaults: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                self.defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                self.defaults[f.name] = f.default_factory()

    def hint(self, word: str) -> str | None:
        for n in self.names:
            if n.lower() == word.lower():
                return n
        m = difflib.get_close_matches(word, self.names, 1, 0.6)
        return m[0] if m else None


def _report_unknown(node: Node, schema: BlockSchema, ctx: Ctx) -> None:
    """An unknown keyword: where it belongs if another block takes it, else a close spelling."""
    word = node.keyword
    hint = schema.hint(word)
    where = f" in {schema.name}" if schema.name else ""
    homes = [h for h in ctx.known_in.get(word, ()) if h != schema.name]
    if homes:
        where += f" (it belongs in {' or '.join(homes)})"
        hint = None
    ctx.report(
        "error",
        "unknown-keyword",
        f"Unknown keyword '{word}'{where}",
        node.words[0],
        hint=hint,
    )


def _brace_fits(kw: Kw, node: Node, ctx: Ctx) -> bool:
    """A block keyword needs `{`, any other must not have one; says which when not."""
    word = node.keyword
    if kw.vtype.block and node.children is None:
        ctx.report(
            "error",
            "missing-brace",
            f"Missing '{{' at beginning of '{word}' block",
            node.words[0],
        )
        return False
    if not kw.vtype.block and node.children is not None:
        ctx.report(
            "error",
            "unexpected-brace",
            f"'{word}' does not take a block - ignoring it",
            node.words[0],
        )
        return False
    return True


def parse_block(
    nodes: Sequence[Node], schema: BlockSchema, ctx: Ctx, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Parse the statements of one block into a dict of field values (plus `other`)."""
    values: dict[str, Any] = dict(base or {})
    other: list[RawOption] = list(values.get("other", ()))
    set_here: set[str] = set()
    for node in nodes:
        word = node.keyword
        kw = schema.by_name.get(word)
        raw = schema.raws.get(word) if kw is None else None
        if kw is None and raw is None:
            _report_unknown(node, schema, ctx)
            continue
        spec = kw or raw
        assert spec is not None
        deprecated = spec.deprecated
        if deprecated:
            ctx.report(
                "warning",
                "deprecated" if spec.deprecated_fails else "deprecated-synonym",
                f"'{word}' is deprecated; use '{deprecated}'",
                node.words[0],
            )
        if raw is not None:
            ctx.locs.setdefault((*ctx.owner, word), node.loc)  # for core.checks' reports
            _parse_raw(node, raw, ctx, other)
            continue
        assert kw is not None
        if not _brace_fits(kw, node, ctx):
            continue
        ctx.locs.setdefault((*ctx.owner, word), node.loc)
        try:
            value = kw.vtype.parse(node, ctx)
        except ArgError as exc:
            ctx.report(
                "error", "bad-value", f"{word}: {exc}", exc.token or node.words[0], hint=exc.hint
            )
            continue
        if not kw.implemented:
            ctx.report(
                "not-implemented",
                "not-implemented",
                f"'{word}' is accepted but not implemented yet",
                node.words[0],
            )
        if kw.ours:
            ctx.report(
                "warning",
                "pykeepalived-only",
                f"'{word}' is a pykeepalived-only keyword (keepalived reports it as unknown)",
                node.words[0],
            )
        if len(kw.fields) > 1:
            for f, v in zip(kw.fields, value, strict=True):
                values[f] = v
            continue
        f = kw.fields[0]
        if kw.mode == "set" and f in set_here:
            ctx.report(
                "warning",
                "duplicate-keyword",
                f"'{word}' is set more than once in this block; the last value wins",
                node.words[0],
            )
        set_here.add(f)
        if kw.mode == "append":
            values[f] = (*values.get(f, ()), value)
        elif kw.mode == "extend":
            values[f] = (*values.get(f, ()), *value)
        else:
            values[f] = value
    if "other" in schema.defaults:
        values["other"] = tuple(other)
    return values


def _parse_raw(node: Node, raw: Raw, ctx: Ctx, other: list[RawOption]) -> None:
    n = len(node.args)
    if n < raw.min_args or (raw.max_args is not None and n > raw.max_args):
        ctx.report(
            "error", "bad-value", f"'{node.keyword}': wrong number of values ({n})", node.words[0]
        )
        return
    if raw.block is True and node.children is None:
        ctx.report(
            "error",
            "missing-brace",
            f"Missing '{{' at beginning of '{node.keyword}' block",
            node.words[0],
        )
        return
    if raw.block is False and node.children is not None:
        ctx.report(
            "error",
            "unexpected-brace",
            f"'{node.keyword}' does not take a block - ignoring it",
            node.words[0],
        )
        return
    other.append(raw_option(node))
    if not (raw.quiet or raw.implemented):
        ctx.report(
            "not-implemented",
            "not-implemented",
            f"'{node.keyword}' is accepted but not implemented yet",
            node.words[0],
        )


def raw_option(node: Node) -> RawOption:
    kids = None if node.children is None else tuple(raw_option(c) for c in node.children)
    return RawOption(node.keyword, tuple(t.text for t in node.args), kids)


def render_raw(opt: RawOption, indent: str) -> list[str]:
    head = " ".join([f"{indent}{quote(opt.keyword)}", *map(quote, opt.args)])
    if opt.children is None:
        return [head]
    lines = [head + " {"]
    for c in opt.children:
        lines.extend(render_raw(c, indent + "  "))
    lines.append(f"{indent}}}")
    return lines


def render_block(obj: Any, schema: BlockSchema, indent: str) -> list[str]:
    lines: list[str] = []
    for kw in schema.kws:
        if not kw.canonical:
            continue
        vals = tuple(getattr(obj, f) for f in kw.fields)
        if all(v == schema.defaults.get(f, None) for f, v in zip(kw.fields, vals, strict=True)):
            continue
        value: Any = vals if len(vals) > 1 else vals[0]
        if kw.mode == "append":
            for item in value:
                lines.extend(kw.vtype.render(kw.name, item, indent))
        else:
            lines.extend(kw.vtype.render(kw.name, value, indent))
    for opt in getattr(obj, "other", ()):
        lines.extend(render_raw(opt, indent))
    return lines


def report_extra_parameters(ctx: Ctx, keyword: str, first_extra: Token) -> None:
    """keepalived's complaint about words after a block keyword that takes none (or fewer)."""
    ctx.report("error", "extra-parameters", f"Block {keyword} has extra parameters", first_extra)


@dataclass(frozen=True)
class SubBlock:
    """A nested block with its own schema, e.g. `authentication { ... }`."""

    schema: BlockSchema
    block: bool = True

    def parse(self, node: Node, ctx: Ctx) -> Any:
        if node.args:
            report_extra_parameters(ctx, node.keyword, node.args[0])
        saved = ctx.owner
        ctx.owner = (*saved, node.keyword)
        try:
            return self.schema.cls(**parse_block(node.children or [], self.schema, ctx))
        finally:
            ctx.owner = saved

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [f"{indent}{kw} {{", *render_block(value, self.schema, indent + "  "), f"{indent}}}"]


@dataclass(frozen=True)
class NamedBlock:
    """`KEYWORD NAME { ... }` producing `schema.cls(name=NAME, ...)`."""

    schema: BlockSchema
    block: bool = True

    def parse(self, node: Node, ctx: Ctx) -> Any:
        if not node.args:
            raise ArgError(f"'{node.keyword}' needs a name", node.words[0])
        if len(node.args) > 1:
            report_extra_parameters(ctx, node.keyword, node.args[1])
        name = node.args[0].text
        saved = ctx.owner
        ctx.owner = (node.keyword, name)
        ctx.locs.setdefault(ctx.owner, node.loc)
        try:
            values = parse_block(node.children or [], self.schema, ctx)
        finally:
            ctx.owner = saved
        values["name"] = name
        return self.schema.cls(**values)

    def render(self, kw: str, value: Any, indent: str) -> list[str]:
        return [
            f"{indent}{kw} {quote(value.name)} {{",
            *render_block(value, self.schema, indent + "  "),
            f"{indent}}}",
        ]
