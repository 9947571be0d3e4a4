"""The entry points: load a config file or text into a checked `Config` with problems."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.checks import check
from core.ifcheck import check_interfaces
from core.model import Config
from core.parser import parse_preprocessed
from core.preprocess import Preprocessed, Preprocessor
from core.problems import Location, Problem
from core.scriptcheck import SECURITY_CODE, SYSTEM, ScriptEnv, check_scripts

EXIT_OK = 0
EXIT_CANNOT_RUN = 4
EXIT_ERRORS = 5
EXIT_SCRIPT_SECURITY = 6

# Warnings on which keepalived 2.2.7 -t also exits 5 (it logs them as config errors). They stay
# warnings here because the config works, but the exit code keeps keepalived's verdict.
FAILS_KEEPALIVED_TEST = frozenset({"deprecated", "rule-no-preference"})


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded config. `files` lists every file read (main first), e.g. to watch for reloads;
    `locations` maps ("vrrp_instance", NAME[, keyword]) and similar keys to where they were
    written, for tools that report on the model (see `core.election`)."""

    config: Config
    problems: tuple[Problem, ...]
    files: tuple[str, ...] = ()
    locations: Mapping[tuple[str, ...], Location] = field(default_factory=dict, compare=False)

    @property
    def exit_code(self) -> int:
        """keepalived `-t` codes: 4 cannot run, 6 script security, 5 errors, 0 clean.

        keepalived 2.2.7 reports 6 even when there are other errors, so 6 wins over 5.
        """
        sev = {p.severity for p in self.problems}
        if "fatal" in sev:
            return EXIT_CANNOT_RUN
        if any(p.code == SECURITY_CODE for p in self.problems):
            return EXIT_SCRIPT_SECURITY
        if "error" in sev or any(p.code in FAILS_KEEPALIVED_TEST for p in self.problems):
            return EXIT_ERRORS
        return EXIT_OK

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    def by_severity(self, severity: str) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == severity)


def _finish(
    pre: Preprocessed, env: ScriptEnv | None, interfaces: Collection[str] | None
) -> LoadResult:
    config, problems, locs = parse_preprocessed(pre)
    config, more = check(config, locs)
    problems.extend(more)
    if env is not None:
        problems.extend(check_scripts(config, env, locs))
    if interfaces is not None:
        problems.extend(check_interfaces(config, interfaces, locs))
    out = []
    for p in problems:
        src = pre.sources.get(p.file)
        if src is not None and 0 < p.line <= len(src) and not p.source_line:
            out.append(replace(p, source_line=src[p.line - 1].rstrip("\n")))
        else:
            out.append(p)
    return LoadResult(config, tuple(out), tuple(pre.files), locs)


def load(
    path: str | Path,
    *,
    config_id: str | None = None,
    script_env: ScriptEnv | None = SYSTEM,
    interfaces: Collection[str] | None = None,
    strict_includes: bool = False,
) -> LoadResult:
    """Read, preprocess, parse and check a config file. Never raises for config mistakes.

    `script_env=None` skips the host-dependent script checks (exit code 6 needs them).
    `interfaces`: names that exist (e.g. `system_interfaces()`); when given, a config naming
    another interface is an error, as in `keepalived -t`. None skips that check.
    `strict_includes`: keepalived's -e, a missing included file is an error.
    """
    path = os.fspath(path)
    pre = Preprocessor(config_id, strict_includes=strict_includes).run_file(path)
    if any(p.severity == "fatal" for p in pre.problems):
        return LoadResult(Config(), tuple(pre.problems), ())
    return _finish(pre, script_env, interfaces)


def loads(
    text: str,
    *,
    path: str = "<string>",
    config_id: str | None = None,
    script_env: ScriptEnv | None = SYSTEM,
    interfaces: Collection[str] | None = None,
) -> LoadResult:
    """Like `load` for text; `include` paths resolve against `path`'s directory."""
    pre = Preprocessor(config_id).run_text(text, path)
    return _finish(pre, script_env, interfaces)
