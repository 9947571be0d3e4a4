"""From the published configuration to the checks checkd runs.

The input is the ``model`` map of ``config.current``: core's ``Config`` in its wire form
(``core.to_wire``: dataclass fields by name, tuples as lists). ``normalize`` passes the map
through ``core.from_wire``/``core.to_wire``, so a malformed model is rejected by the same
validator everywhere and missing fields get core's defaults.

Like keepalived, only checks that something tracks are run ("script X is not used"); the
names of the others are in ``Plan.unused`` so they can be logged, not silently dropped. A
``vrrp_script`` without a ``script`` command is left to an external checker publishing
``health.<name>`` itself (``Plan.external``): checkd neither runs nor publishes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import scripts
from checkd.errors import PlanError
from core import WireFormatError, from_wire, to_wire

Kind = Literal["script", "file", "process"]


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """A vrrp_script check: the script to run (see :attr:`run`) and how its results count."""

    name: str
    command: str
    interval: float = 1.0
    timeout: float | None = None  # None: same as interval
    weight: int = 0
    reverse: bool = False
    rise: int = 1
    fall: int = 1
    init_fail: bool = False
    user: str | None = None
    group: str | None = None
    user_source: str = "script"  # script | script_user (global)
    script_security: bool = False
    kind: Kind = field(default="script", init=False)

    @property
    def effective_timeout(self) -> float:
        return self.interval if self.timeout is None else self.timeout

    @property
    def run(self) -> scripts.ScriptSpec:
        """What the ground-floor runner needs: the command and who runs it."""
        return scripts.ScriptSpec(
            name=self.name,
            command=self.command,
            user=self.user,
            group=self.group,
            user_source=self.user_source,
            script_security=self.script_security,
        )


@dataclass(frozen=True, slots=True)
class FileSpec:
    name: str
    path: str
    weight: int = 1
    reverse: bool = False
    init_value: int | None = None  # None: no init_file
    init_overwrite: bool = False
    kind: Kind = field(default="file", init=False)


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    process: tuple[str, ...]
    param_match: Literal["initial", "partial"] | None = None
    full_command: bool = False
    weight: int = 0
    reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay: float = 0.0
    terminate_delay: float = 0.0
    kind: Kind = field(default="process", init=False)


Spec = ScriptSpec | FileSpec | ProcessSpec


@dataclass(frozen=True, slots=True)
class Plan:
    checks: tuple[Spec, ...] = ()
    unused: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # checks that could not be planned, with why
    external: tuple[str, ...] = ()  # vrrp_scripts without a command: fed by external checkers

    def by_name(self) -> dict[str, Spec]:
        return {spec.name: spec for spec in self.checks}


def normalize(model: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and complete ``model`` with core's codec; PlanError when core rejects it."""
    try:
        out: dict[str, Any] = to_wire(from_wire(dict(model)))
    except WireFormatError as exc:
        raise PlanError(f"config model rejected: {exc}") from exc
    return out


def plan_from_wire(model: Mapping[str, Any]) -> Plan:
    """The checks a wire-form config asks for. Raises PlanError on a malformed model."""
    if not isinstance(model, Mapping):
        raise PlanError("config model is not a map")
    gdefs = _map(model.get("global_defs"), "global_defs")
    security = bool(gdefs.get("enable_script_security", False))
    script_user = _opt_map(gdefs.get("script_user"), "global_defs.script_user")
    used = _tracked(model)
    checks: list[Spec] = []
    unused: list[str] = []
    problems: list[str] = []
    external: list[str] = []
    names: set[str] = set()

    def take(kind: str, item: Mapping[str, Any], build: Any) -> None:
        name = _str(item.get("name"), f"{kind}.name")
        if name not in used[kind]:
            unused.append(f"{kind} {name}")
            return
        if name in names:
            problems.append(f"{kind} {name}: name already used by another check (health.{name})")
            return
        if kind == "script" and item.get("script") is None:
            # No command: an external checker publishes health.<name> (docs/bus.md).
            external.append(name)
            names.add(name)
            return
        try:
            spec = build(name, item)
        except PlanError as exc:
            problems.append(f"{kind} {name}: {exc}")
            return
        names.add(name)
        checks.append(spec)

    for item in _list(model.get("vrrp_scripts"), "vrrp_scripts"):
        take(
            "script",
            _map(item, "vrrp_scripts[]"),
            lambda n, i: _script(n, i, security, script_user),
        )
    for item in _list(model.get("track_files"), "track_files"):
        take("file", _map(item, "track_files[]"), _file)
    for item in _list(model.get("track_processes"), "track_processes"):
        take("process", _map(item, "track_processes[]"), _process)
    return Plan(tuple(checks), tuple(unused), tuple(problems), tuple(external))


def _tracked(model: Mapping[str, Any]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {"script": set(), "file": set(), "process": set()}
    trackers = [
        *_list(model.get("instances"), "instances"),
        *_list(model.get("sync_groups"), "sync_groups"),
    ]
    for raw in trackers:
        tracker = _map(raw, "tracker")
        for kind, key in (
            ("script", "track_script"),
            ("file", "track_file"),
            ("process", "track_process"),
        ):
            for ref in _list(tracker.get(key), key):
                used[kind].add(_str(_map(ref, key).get("name"), f"{key}.name"))
    # FILE_CHECK real-server checkers name a track_file too.
    for vs in _list(model.get("virtual_servers"), "virtual_servers"):
        for rs in _list(_map(vs, "virtual_server").get("real_servers"), "real_servers"):
            for checker in _list(_map(rs, "real_server").get("checkers"), "checkers"):
                ref = _map(checker, "checker").get("track_file")
                if isinstance(ref, str):
                    used["file"].add(ref)
    return used


def _script(
    name: str, item: Mapping[str, Any], security: bool, script_user: Mapping[str, Any] | None
) -> ScriptSpec:
    script = _opt_map(item.get("script"), "script")
    if script is None:
        raise PlanError("no script command configured")
    command = _str(script.get("command"), "script.command")
    interval = _num(item.get("interval", 1.0), "interval")
    timeout_raw = item.get("timeout")
    timeout = None if timeout_raw is None else _num(timeout_raw, "timeout")
    if interval <= 0:
        raise PlanError(f"interval must be positive, not {interval}")
    rise = _int(item.get("rise", 1), "rise")
    fall = _int(item.get("fall", 1), "fall")
    if rise < 1 or fall < 1:
        raise PlanError(f"rise and fall must be at least 1 (rise {rise}, fall {fall})")
    user, group, source = scripts.choose_user(
        _user_group(item.get("user"), "user") or _user_group(script, "script"),
        _user_group(script_user, "script_user"),
    )
    return ScriptSpec(
        name=name,
        command=command,
        interval=interval,
        timeout=timeout,
        weight=_int(item.get("weight", 0), "weight"),
        reverse=bool(item.get("weight_reverse", False)),
        rise=rise,
        fall=fall,
        init_fail=bool(item.get("init_fail", False)),
        user=user,
        group=group,
        user_source=source,
        script_security=security,
    )


def _user_group(value: Any, what: str) -> scripts.UserGroup | None:
    """A wire-form ``{user, group}`` (a vrrp_script's ``user``, a script's own, or
    ``script_user``) as the runner's plain pair; None when it names no user."""
    found = _opt_map(value, what)
    if found is None or found.get("user") is None:
        return None
    return (_str(found.get("user"), f"{what}.user"), _opt_str(found.get("group"), f"{what}.group"))


def _file(name: str, item: Mapping[str, Any]) -> FileSpec:
    path = _opt_str(item.get("file"), "file")
    if not path:
        raise PlanError("no file configured")
    init = _opt_map(item.get("init_file"), "init_file")
    return FileSpec(
        name=name,
        path=path,
        weight=_int(item.get("weight", 1), "weight"),
        reverse=bool(item.get("weight_reverse", False)),
        init_value=None if init is None else _int(init.get("value", 0), "init_file.value"),
        init_overwrite=False if init is None else bool(init.get("overwrite", False)),
    )


def _process(name: str, item: Mapping[str, Any]) -> ProcessSpec:
    process = tuple(_str(p, "process[]") for p in _list(item.get("process"), "process"))
    if not process or not process[0]:
        raise PlanError("no process configured")
    param_match = item.get("param_match")
    if param_match not in (None, "initial", "partial"):
        raise PlanError(f"param_match must be initial or partial, not {param_match!r}")
    quorum = _int(item.get("quorum", 1), "quorum")
    quorum_max_raw = item.get("quorum_max")
    quorum_max = None if quorum_max_raw is None else _int(quorum_max_raw, "quorum_max")
    if quorum_max is not None and quorum_max < quorum:
        raise PlanError(f"quorum_max {quorum_max} is below quorum {quorum}")
    fork = item.get("fork_delay")
    term = item.get("terminate_delay")
    return ProcessSpec(
        name=name,
        process=process,
        param_match=param_match,
        full_command=bool(item.get("full_command", False)),
        weight=_int(item.get("weight", 0), "weight"),
        reverse=bool(item.get("weight_reverse", False)),
        quorum=quorum,
        quorum_max=quorum_max,
        fork_delay=0.0 if fork is None else _num(fork, "fork_delay"),
        terminate_delay=0.0 if term is None else _num(term, "terminate_delay"),
    )


# Small typed readers: the model arrived over the bus, so nothing in it is trusted.


def _map(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PlanError(f"{what}: expected a map, got {type(value).__name__}")
    return value


def _opt_map(value: Any, what: str) -> Mapping[str, Any] | None:
    return None if value is None else _map(value, what)


def _list(value: Any, what: str) -> Iterable[Any]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise PlanError(f"{what}: expected a list, got {type(value).__name__}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise PlanError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanError(f"{what}: expected an integer, got {value!r}")
    return value


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlanError(f"{what}: expected a number, got {value!r}")
    return float(value)
