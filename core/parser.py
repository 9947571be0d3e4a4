"""From text to `Config`: preprocess, build the block tree, apply the keyword tables."""

from __future__ import annotations

from core.keywords import KNOWN_IN, ROOT
from core.model import Config
from core.preprocess import Preprocessed
from core.problems import Location, Problem
from core.schema import Ctx, parse_block
from core.tree import Node, build_tree


def _merge_global_defs(nodes: list[Node]) -> list[Node]:
    # keepalived accepts several global_defs blocks and merges them; one node keeps the order
    # of their statements.
    first: Node | None = None
    out: list[Node] = []
    for n in nodes:
        if n.keyword == "global_defs" and n.children is not None:
            if first is None:
                first = Node(n.words, list(n.children), n.close)
                out.append(first)
            else:
                assert first.children is not None
                first.children.extend(n.children)
            continue
        out.append(n)
    return out


def parse_preprocessed(
    pre: Preprocessed,
) -> tuple[Config, list[Problem], dict[tuple[str, ...], Location]]:
    """Parse preprocessed lines: the config, the problems (preprocessing included), and where
    each named block and keyword was written (for semantic checks)."""
    problems = list(pre.problems)
    tree = _merge_global_defs(build_tree(pre.lines, problems))
    ctx = Ctx(problems)
    ctx.known_in = KNOWN_IN
    values = parse_block(tree, ROOT, ctx)
    return Config(**values), problems, ctx.locs
