"""Build a block tree from logical token lines (`{`/`}` handling as in keepalived)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.lexer import Token
from core.problems import Location, Problem


@dataclass(slots=True)
class Node:
    """A statement: its words, and its children if a `{ ... }` block followed it."""

    words: list[Token]
    children: list[Node] | None = None
    close: Location | None = None

    @property
    def keyword(self) -> str:
        return self.words[0].text

    @property
    def loc(self) -> Location:
        return self.words[0].loc

    @property
    def args(self) -> list[Token]:
        return self.words[1:]


@dataclass(slots=True)
class _Frame:
    nodes: list[Node] = field(default_factory=list)
    owner: Node | None = None


def build_tree(lines: list[list[Token]], problems: list[Problem]) -> list[Node]:
    stack: list[_Frame] = [_Frame()]
    last_leaf: Node | None = None
    for line in lines:
        pending: list[Token] = []
        for tok in line:
            if tok.is_open:
                if pending:
                    node = Node(pending, [])
                    stack[-1].nodes.append(node)
                    pending = []
                elif last_leaf is not None and last_leaf.children is None:
                    # `{` on its own line opens a block for the previous statement.
                    node = last_leaf
                    node.children = []
                else:
                    problems.append(
                        Problem(
                            "error",
                            "unexpected-brace",
                            "Unexpected '{' - ignoring",
                            tok.loc.file,
                            tok.loc.line,
                            tok.loc.col,
                            "{",
                        )
                    )
                    continue
                stack.append(_Frame(owner=node))
                last_leaf = None
            elif tok.is_close:
                if pending:
                    stack[-1].nodes.append(Node(pending))
                    pending = []
                if len(stack) == 1:
                    problems.append(
                        Problem(
                            "error",
                            "extra-brace",
                            "Extra '}' found",
                            tok.loc.file,
                            tok.loc.line,
                            tok.loc.col,
                            "}",
                        )
                    )
                    continue
                frame = stack.pop()
                assert frame.owner is not None
                frame.owner.children = frame.nodes
                frame.owner.close = tok.loc
                last_leaf = None
            else:
                pending.append(tok)
        if pending:
            node = Node(pending)
            stack[-1].nodes.append(node)
            last_leaf = node
    while len(stack) > 1:
        frame = stack.pop()
        assert frame.owner is not None
        frame.owner.children = frame.nodes
        loc = frame.owner.loc
        problems.append(
            Problem(
                "error",
                "missing-brace",
                f"Missing '}}' closing block '{frame.owner.keyword}'",
                loc.file,
                loc.line,
                loc.col,
                frame.owner.keyword,
            )
        )
    return stack[0].nodes
