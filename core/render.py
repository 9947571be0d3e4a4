"""Print a `Config` back as keepalived.conf text (driven by the same keyword tables)."""

from __future__ import annotations

from core.keywords import ROOT
from core.model import Config
from core.schema import render_block


def render(config: Config) -> str:
    """keepalived.conf text for `config`; `loads(render(c)).config == c` for parsed configs."""
    lines = render_block(config, ROOT, "")
    return "\n".join(lines) + "\n"
