"""The config generation number, kept across core restarts.

A restarted core that loads the same file must announce the same generation, so that nothing
downstream mistakes "core came back" for "the config changed". The pair (generation, hash) is
kept in the runtime directory; a new hash bumps the generation.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class GenerationStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.generation = 0
        self.hash = ""
        with contextlib.suppress(FileNotFoundError, ValueError):
            gen, _, digest = path.read_text().strip().partition(" ")
            self.generation, self.hash = int(gen), digest

    def next(self, digest: str) -> int:
        """The generation for a config with this hash (unchanged if the hash is the same)."""
        if digest != self.hash or self.generation == 0:
            self.generation += 1
            self.hash = digest
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(f"{self.generation} {digest}\n")
            os.replace(tmp, self.path)
        return self.generation
