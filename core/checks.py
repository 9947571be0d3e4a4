"""Semantic checks on a parsed `Config`, and keepalived's own corrections.

`check(config)` returns the corrected config (what keepalived would actually run: e.g. auth_pass
truncated to 8 bytes, unknown tracked names dropped) plus the problems found. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final, TypeVar

from core.model import (
    Config,
    RealServer,
    SyncGroup,
    TrackFile,
    TrackProcess,
    TrackRef,
    VirtualServer,
    VrrpInstance,
    VrrpScript,
)
from core.problems import Location, Problem, Severity, find_location
from core.strict import strict_changes
from core.vsnames import quorum_script_names

T = TypeVar("T")
# (owner name, block, where) -> the track_* fields to replace
_FixTracks = Callable[[str, Any, tuple[str, ...]], dict[str, Any]]


class _Report:
    def __init__(self, locs: Mapping[tuple[str, ...], Location]) -> None:
        self.problems: list[Problem] = []
        self.locs = locs

    def __call__(
        self, severity: Severity, code: str, message: str, text: str = "", at: tuple[str, ...] = ()
    ) -> None:
        loc = find_location(self.locs, at)
        self.problems.append(Problem(severity, code, message, loc.file, loc.line, loc.col, text))


def effective_version(config: Config, inst: VrrpInstance) -> int:
    if inst.family == 6:
        return 3
    return inst.version if inst.version is not None else config.global_defs.vrrp_version


_BLOCK_OF = {
    "track_script": "vrrp_script",
    "track_file": "track_file",
    "track_process": "vrrp_track_process",
    "track_bfd": "bfd_instance",
}


def _first_of_each(items: tuple[T, ...]) -> tuple[T, ...]:
    seen: set[str] = set()
    out = []
    for item in items:
        name = getattr(item, "name")  # noqa: B009 - every named block has a name
        if name not in seen:
            seen.add(name)
            out.append(item)
    return tuple(out)


def _dups(names: list[str]) -> list[str]:
    return [n for n, c in Counter(names).items() if c > 1]


def _check_trackables(
    config: Config, r: _Report
) -> tuple[list[VrrpScript], list[TrackFile], list[TrackProcess]]:
    """vrrp_script, track_file and vrrp_track_process blocks keepalived keeps."""
    scripts = []
    quorums = quorum_script_names(config)
    for s in config.vrrp_scripts:
        if s.script is None and s.name in quorums:
            pass  # checkd publishes this virtual server's quorum (core.vsnames)
        elif s.script is None:
            # keepalived removes such a script; pykeepalived keeps it for an external checker
            # (docs/design.md: a vrrp_script can be fed over the bus instead of by checkd).
            r(
                "warning",
                "external-script",
                f"vrrp_script {s.name} has no script: its verdicts must come from an external "
                f"checker publishing health.{s.name} (keepalived would remove it)",
                s.name,
                at=("vrrp_script", s.name),
            )
        scripts.append(s)
    files = []
    for f in config.track_files:
        if f.file is None:
            r(
                "error",
                "no-file",
                f"No file set for track_file {f.name} - removing",
                f.name,
                at=("track_file", f.name),
            )
            continue
        files.append(f)
    procs = []
    for p in config.track_processes:
        if not p.process:
            r(
                "error",
                "no-process",
                f"No process set for vrrp_track_process {p.name} - removing",
                p.name,
                at=("vrrp_track_process", p.name),
            )
            continue
        procs.append(p)
    return scripts, files, procs


def _track_fixer(names: dict[str, set[str]], r: _Report) -> _FixTracks:
    """Drops duplicate and unknown tracked names from a block's track_* lists, saying so."""

    def fix_tracks(owner: str, obj: Any, where: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, tuple[TrackRef, ...]] = {}
        for field, known in (*names.items(), ("track_interface", None)):
            refs: tuple[TrackRef, ...] = getattr(obj, field)
            kept: list[TrackRef] = []
            for idx, ref in enumerate(refs):
                if any(k.name == ref.name for k in kept):
                    r(
                        "error",
                        "duplicate-track",
                        f"({owner}) duplicate {field} {ref.name} - ignoring it (the first entry "
                        "counts)",
                        ref.name,
                        at=(*where, field, f"#{idx}"),
                    )
                    continue
                if known is not None and ref.name not in known:
                    what = field.removeprefix("track_")
                    r(
                        "error",
                        "unknown-track",
                        f"({owner}) track {what} {ref.name} not found, ignoring it: "
                        f"no {_BLOCK_OF[field]} {ref.name} is defined",
                        ref.name,
                        at=(*where, field, f"#{idx}"),
                    )
                    continue
                kept.append(ref)
            if len(kept) != len(refs):
                out[field] = tuple(kept)
        return out

    return fix_tracks


def _check_sync_groups(
    config: Config, instances: list[VrrpInstance], r: _Report, fix_tracks: _FixTracks
) -> tuple[list[SyncGroup], dict[str, str], set[str]]:
    """The sync groups kept, each instance's group, and the scripts instances or groups track."""
    inst_names = {i.name for i in instances}
    used_scripts = {t.name for i in instances for t in i.track_script}
    groups: list[SyncGroup] = []
    member_of: dict[str, str] = {}
    for g in config.sync_groups:
        members = []
        for m in g.group:
            if m not in inst_names:
                r(
                    "error",
                    "unknown-instance",
                    f"Virtual router {m} specified in sync group {g.name} doesn't exist - ignoring",
                    m,
                    at=("vrrp_sync_group", g.name, "group"),
                )
                continue
            if m in member_of:
                r(
                    "error",
                    "instance-in-two-groups",
                    f"vrrp_instance {m} is in sync groups {member_of[m]} and {g.name}",
                    m,
                    at=("vrrp_sync_group", g.name, "group"),
                )
                continue
            member_of[m] = g.name
            members.append(m)
        if not members:
            r(
                "error",
                "empty-sync-group",
                f"Sync group {g.name} has no virtual router(s). removing",
                g.name,
                at=("vrrp_sync_group", g.name),
            )
            continue
        if len(members) == 1:
            r(
                "error",
                "sync-group-one-member",
                f"Sync group {g.name} has only 1 virtual "
                f"router(s) - this probably isn't what you want",
                g.name,
                at=("vrrp_sync_group", g.name),
            )
        used_scripts |= {t.name for t in g.track_script}
        groups.append(
            replace(g, group=tuple(members), **fix_tracks(g.name, g, ("vrrp_sync_group", g.name)))
        )
    return groups, member_of, used_scripts


def check(
    config: Config, locs: Mapping[tuple[str, ...], Location] | None = None
) -> tuple[Config, list[Problem]]:
    r = _Report(locs or {})
    for what, items in (
        ("vrrp_instance", config.instances),
        ("vrrp_script", config.vrrp_scripts),
        ("track_file", config.track_files),
        ("vrrp_track_process", config.track_processes),
        ("vrrp_sync_group", config.sync_groups),
        ("bfd_instance", config.bfd_instances),
        ("virtual_server_group", config.virtual_server_groups),
        ("virtual_server", config.virtual_servers),
    ):
        for d in _dups([i.name for i in items]):
            r(
                "error",
                "duplicate-name",
                f"{what} '{d}' is defined more than once; the first is used",
                d,
                at=(what, d),
            )

    config = replace(
        config,
        instances=_first_of_each(config.instances),
        vrrp_scripts=_first_of_each(config.vrrp_scripts),
        track_files=_first_of_each(config.track_files),
        track_processes=_first_of_each(config.track_processes),
        sync_groups=_first_of_each(config.sync_groups),
        bfd_instances=_first_of_each(config.bfd_instances),
        virtual_server_groups=_first_of_each(config.virtual_server_groups),
        virtual_servers=_first_of_each(config.virtual_servers),
    )
    scripts, files, procs = _check_trackables(config, r)
    names: dict[str, set[str]] = {
        "track_script": {s.name for s in scripts},
        "track_file": {f.name for f in files},
        "track_process": {p.name for p in procs},
        "track_bfd": {b.name for b in config.bfd_instances},
    }

    fix_tracks = _track_fixer(names, r)
    instances = [_check_instance(config, i, r, fix_tracks) for i in config.instances]

    groups, member_of, used_scripts = _check_sync_groups(config, instances, r, fix_tracks)
    group_by_name = {g.name: g for g in groups}
    instances = [
        _sync_member_weights(config, i, group_by_name[member_of[i.name]], r)
        if member_of.get(i.name) in group_by_name
        else i
        for i in instances
    ]
    for s in scripts:
        if s.name not in used_scripts:
            r(
                "warning",
                "unused-script",
                f"vrrp_script {s.name} is not used by any instance or sync group",
                s.name,
                at=("vrrp_script", s.name),
            )

    _check_vrids(instances, r)

    for idx, rule in enumerate(config.static_rules):
        if rule.preference is None:
            r(
                "warning",
                "rule-no-preference",
                "static rule has no preference specified; keepalived assigns one",
                str(rule.from_ or rule.to or ""),
                at=("static_rules", f"#{idx}"),
            )
    vsg_names = {g.name for g in config.virtual_server_groups}
    servers = [
        _check_virtual_server(vs, vsg_names, names["track_file"], r, config.global_defs.lvs_backend)
        for vs in config.virtual_servers
    ]

    fixed = replace(
        config,
        vrrp_scripts=tuple(scripts),
        track_files=tuple(files),
        track_processes=tuple(procs),
        instances=tuple(instances),
        sync_groups=tuple(groups),
        virtual_servers=tuple(vs for vs in servers if vs is not None),
    )
    return fixed, r.problems


def _check_instance(
    config: Config, inst: VrrpInstance, r: _Report, fix_tracks: Any
) -> VrrpInstance:
    changes: dict[str, Any] = fix_tracks(inst.name, inst, ("vrrp_instance", inst.name))
    # In keepalived's order: a later check sees what an earlier one corrected.
    for step in (
        _check_addressing,
        _check_preempt,
        _check_auth,
        _check_advert_int,
        _check_weights,
        _check_peers_routes_rules,
    ):
        step(config, inst, r, changes)
    return replace(inst, **changes) if changes else inst


def _strict(config: Config, inst: VrrpInstance) -> bool:
    return inst.strict_mode if inst.strict_mode is not None else config.global_defs.vrrp_strict


def _check_addressing(
    config: Config, inst: VrrpInstance, r: _Report, changes: dict[str, Any]
) -> None:
    """Own interface tracked, VRID, interface, VIPs and their family."""
    n = inst.name
    inst_at = ("vrrp_instance", n)
    if inst.interface is not None and any(t.name == inst.interface for t in inst.track_interface):
        r(
            "error",
            "track-own-interface",
            f"({n}) Ignoring track_interface {inst.interface} since own interface: the "
            "instance already goes to FAULT when its own interface is down",
            inst.interface,
            at=(*inst_at, "track_interface"),
        )
        # On top of what fix_tracks already dropped (duplicates), not instead of it.
        tracked = changes.get("track_interface", inst.track_interface)
        changes["track_interface"] = tuple(t for t in tracked if t.name != inst.interface)
    if inst.virtual_router_id is None:
        r(
            "error",
            "missing-vrid",
            f"({n}) the virtual router id must be set (virtual_router_id 1..255)",
            n,
            at=inst_at,
        )
    if inst.interface is None and inst.unicast_src_ip is None:
        r(
            "error",
            "no-interface",
            f"({n}) Unknown interface! (set 'interface', or 'unicast_src_ip' for unicast)",
            n,
            at=inst_at,
        )
    if not inst.virtual_ipaddress and not inst.no_virtual_ipaddress:
        r(
            "error",
            "no-vip",
            f"({n}) No VIP specified; at least one is sensible (or say no_virtual_ipaddress)",
            n,
            at=(*inst_at, "virtual_ipaddress"),
        )
    if inst.virtual_ipaddress:
        fam = inst.virtual_ipaddress[0].family
        kept = []
        for idx, a in enumerate(inst.virtual_ipaddress):
            if a.family != fam:
                r(
                    "error",
                    "mixed-family",
                    f"({n}) address family must match VRRP instance [{a.address}] - ignoring; "
                    "put the other family in virtual_ipaddress_excluded",
                    a.address,
                    at=(*inst_at, "virtual_ipaddress", f"#{idx}"),
                )
                continue
            kept.append(a)
        if len(kept) != len(inst.virtual_ipaddress):
            changes["virtual_ipaddress"] = tuple(kept)


def _check_preempt(config: Config, inst: VrrpInstance, r: _Report, changes: dict[str, Any]) -> None:
    """nopreempt and preempt_delay against the initial state, priority and strict mode."""
    n = inst.name
    inst_at = ("vrrp_instance", n)
    if inst.state == "MASTER" and inst.nopreempt:
        r(
            "error",
            "nopreempt-master",
            f"({n}) nopreempt will not work with initial state MASTER - clearing it; "
            "use state BACKUP on every node for nopreempt",
            "nopreempt",
            at=(*inst_at, "nopreempt"),
        )
        changes["nopreempt"] = False
    if inst.nopreempt and inst.priority == 255:
        r(
            "error",
            "nopreempt-owner",
            f"({n}) nopreempt is incompatible with priority 255 - clearing",
            "nopreempt",
            at=(*inst_at, "nopreempt"),
        )
        changes["nopreempt"] = False
    strict = _strict(config, inst)
    if inst.preempt_delay:
        why = (
            "nopreempt"
            if changes.get("nopreempt", inst.nopreempt)
            else "initial state MASTER"
            if inst.state == "MASTER"
            else "strict mode"
            if strict
            else None
        )
        if why:
            r(
                "error",
                "preempt-delay-ignored",
                f"({n}) preempt_delay is incompatible with {why} - resetting",
                "preempt_delay",
                at=(*inst_at, "preempt_delay"),
            )
            changes["preempt_delay"] = 0.0


def _check_auth(config: Config, inst: VrrpInstance, r: _Report, changes: dict[str, Any]) -> None:
    """Authentication against strict mode and the VRRP version; strict mode's own changes."""
    n = inst.name
    inst_at = ("vrrp_instance", n)
    version = effective_version(config, inst)
    strict = _strict(config, inst)
    if strict and inst.authentication is not None:
        r(
            "error",
            "strict-auth",
            f"({n}) Strict mode does not support authentication - ignoring it "
            "(RFC 5798 removed authentication)",
            "authentication",
            at=(*inst_at, "authentication"),
        )
        changes["authentication"] = None
    if strict:
        changes.update(strict_changes(inst, version, r, inst_at))
    auth = changes.get("authentication", inst.authentication)
    if auth is not None:
        if version == 3:
            r(
                "error",
                "auth-v3",
                f"({n}) authentication is not supported with VRRP version 3 - ignoring",
                "authentication",
                at=(*inst_at, "authentication"),
            )
        if auth.auth_type is None:
            r(
                "error",
                "auth-type",
                f"({n}) authentication block without auth_type",
                "authentication",
                at=(*inst_at, "authentication"),
            )
        if auth.auth_pass is not None and len(auth.auth_pass.encode()) > 8:
            r(
                "error",
                "auth-pass-long",
                f"({n}) auth_pass is longer than 8 characters; "
                f"keepalived truncates it to '{auth.auth_pass[:8]}'",
                auth.auth_pass,
                at=(*inst_at, "authentication", "auth_pass"),
            )
            changes["authentication"] = replace(
                auth, auth_pass=auth.auth_pass.encode()[:8].decode(errors="ignore")
            )
        if auth.auth_type == "AH" and inst.state == "MASTER" and inst.effective_priority != 255:
            r(
                "error",
                "ah-master",
                f"({n}) Initial state master is incompatible with AH authentication - clearing",
                "AH",
                at=(*inst_at, "authentication"),
            )
            changes["state"] = "BACKUP"


def _check_advert_int(
    config: Config, inst: VrrpInstance, r: _Report, changes: dict[str, Any]
) -> None:
    """The advertisement interval each VRRP version can carry."""
    n = inst.name
    inst_at = ("vrrp_instance", n)
    version = effective_version(config, inst)
    adv = inst.advert_int
    if version == 2 and adv != int(adv):
        r(
            "error",
            "advert-int-fraction",
            f"({n}) VRRPv2 advertisement interval {adv}s must be an integer - rounding; "
            "use version 3 for sub-second or fractional intervals",
            str(adv),
            at=(*inst_at, "advert_int"),
        )
        changes["advert_int"] = float(max(1, round(adv)))
    if version == 3:
        if adv > 40.95:
            r(
                "error",
                "advert-int-range",
                f"({n}) VRRPv3 advertisement interval {adv}s is above 40.95s",
                str(adv),
                at=(*inst_at, "advert_int"),
            )
            changes["advert_int"] = 40.95
        elif round(adv * 100) != adv * 100:
            changes["advert_int"] = round(adv * 100) / 100


def _check_weights(config: Config, inst: VrrpInstance, r: _Report, changes: dict[str, Any]) -> None:
    """Tracker weights an address owner or nopreempt make useless."""
    n = inst.name
    inst_at = ("vrrp_instance", n)
    weighted = [w for w in _weights(config, inst, changes) if w]
    if weighted and inst.effective_priority == 255:
        for field in ("track_interface", "track_script", "track_file", "track_process"):
            kept = []
            for ref in changes.get(field, getattr(inst, field)):
                if tracker_weight(config, field, ref):
                    r(
                        "error",
                        "weight-owner",
                        f"({n}) ignoring {ref.name} ({field}) due to address owner: "
                        "tracking weights cannot change priority 255",
                        ref.name,
                        at=(*inst_at, field),
                    )
                    continue
                kept.append(ref)
            changes[field] = tuple(kept)
        weighted = []
    if weighted and inst.nopreempt and all(w > 0 for w in weighted):
        r(
            "warning",
            "weight-nopreempt",
            f"({n}) with nopreempt, positive weights "
            f"can never take the VIP back from a live master",
            n,
            at=(*inst_at, "nopreempt"),
        )


def _check_peers_routes_rules(
    config: Config, inst: VrrpInstance, r: _Report, changes: dict[str, Any]
) -> None:
    """Unicast peers, virtual routes and rules, native_ipv6, VMAC with unicast."""
    n = inst.name
    inst_at = ("vrrp_instance", n)
    peers = [p.address for p in inst.unicast_peer]
    for d in _dups(peers):
        r(
            "warning",
            "duplicate-peer",
            f"({n}) unicast_peer {d} is listed more than once",
            d,
            at=(*inst_at, "unicast_peer"),
        )
    for idx, route in enumerate(inst.virtual_routes):
        if route.dev is None and not route.no_track:
            r(
                "error",
                "route-no-dev",
                f"({n}) cannot track route {route.dest} with no interface specified "
                "(add 'dev IF', or 'no_track'); keepalived will not track it",
                route.dest,
                at=(*inst_at, "virtual_routes", f"#{idx}"),
            )
    if inst.native_ipv6 and any(a.family == 4 for a in inst.virtual_ipaddress):
        r(
            "error",
            "native-ipv6-v4",
            f"({n}) Cannot specify native_ipv6 with IPv4 addresses",
            "native_ipv6",
            at=(*inst_at, "native_ipv6"),
        )
    for idx, rule in enumerate(inst.virtual_rules):
        if rule.preference is None:
            r(
                "warning",
                "rule-no-preference",
                f"({n}) Rule has no preference specified; keepalived assigns one",
                str(rule.from_ or rule.to),
                at=(*inst_at, "virtual_rules", f"#{idx}"),
            )
    if inst.use_vmac is not None and inst.unicast_peer and not inst.vmac_xmit_base:
        r(
            "warning",
            "vmac-unicast",
            f"({n}) use_vmac with unicast peers needs vmac_xmit_base",
            n,
            at=inst_at,
        )


def _check_vrids(instances: list[VrrpInstance], r: _Report) -> None:
    seen: dict[tuple[str, int, int], str] = {}
    by_key: defaultdict[tuple[str, int, int], list[str]] = defaultdict(list)
    for i in instances:
        if i.virtual_router_id is None or i.interface is None or i.unicast_peer:
            continue
        key = (i.interface, i.family, i.virtual_router_id)
        if key in seen:
            r(
                "error",
                "duplicate-vrid",
                f"{seen[key]} and {i.name} both use VRID {i.virtual_router_id} "
                f"with IPv{i.family} on interface {i.interface}",
                str(i.virtual_router_id),
                at=("vrrp_instance", i.name, "virtual_router_id"),
            )
        else:
            seen[key] = i.name
        by_key[key].append(i.name)


def tracker_weight(config: Config, field: str, ref: TrackRef) -> int:
    """The weight a tracker applies: its own, else the tracked object's (interfaces: 0)."""
    if ref.weight is not None:
        return ref.weight
    objs: tuple[Any, ...] = {
        "track_script": config.vrrp_scripts,
        "track_file": config.track_files,
        "track_process": config.track_processes,
    }.get(field, ())
    return next((int(o.weight) for o in objs if o.name == ref.name), 0)


_TRACK_FIELDS = ("track_interface", "track_script", "track_file", "track_process")


def _weights(config: Config, inst: VrrpInstance, changes: dict[str, Any]) -> list[int]:
    """The weight each tracker of `inst` applies."""
    return [
        tracker_weight(config, field, ref)
        for field in _TRACK_FIELDS
        for ref in changes.get(field, getattr(inst, field))
    ]


def _sync_member_weights(
    config: Config, inst: VrrpInstance, group: SyncGroup, r: _Report
) -> VrrpInstance:
    """keepalived zeroes the tracker weights of sync-group members unless the group allows them."""
    if group.sync_group_tracking_weight or group.global_tracking:
        return inst
    changes: dict[str, Any] = {}
    for field in _TRACK_FIELDS:
        refs = getattr(inst, field)
        new = []
        for ref in refs:
            if tracker_weight(config, field, ref):
                r(
                    "error",
                    "sync-group-weight",
                    f"({inst.name}) ignoring {ref.name} tracked weight due to SYNC group "
                    f"{group.name} (set sync_group_tracking_weight in the group to allow it)",
                    ref.name,
                    at=("vrrp_instance", inst.name, field),
                )
                new.append(replace(ref, weight=0, reverse=False))
            else:
                new.append(ref)
        if new != list(refs):
            changes[field] = tuple(new)
    return replace(inst, **changes) if changes else inst


def _check_virtual_server(
    vs: VirtualServer,
    vsg_names: set[str],
    track_files: set[str],
    r: _Report,
    backend: str = "auto",
) -> VirtualServer | None:
    """Checks keepalived 2.2.7 makes on LVS blocks; returns the server as keepalived keeps it."""
    at = ("virtual_server", vs.name)

    def err(code: str, message: str, text: str = vs.name, where: str | None = None) -> None:
        r(
            "error",
            code,
            f"Virtual server {vs.name}: {message}",
            text,
            at=(*at, where) if where else at,
        )

    if vs.fwmark is not None and vs.protocol is not None:
        err(
            "fwmark-protocol",
            "protocol specified for fwmark - protocol will be ignored",
            where="protocol",
        )
    if vs.fwmark is None and vs.protocol is None:
        err(
            "vs-no-protocol",
            "no protocol set - keepalived defaults to UDP (set protocol TCP|UDP|SCTP)",
        )
    if vs.lvs_method is None:
        err(
            "vs-no-method", "no forwarding method set, keepalived uses NAT (set lb_kind/lvs_method)"
        )
    if vs.lvs_sched is None:
        err("vs-no-scheduler", "no scheduler set, keepalived uses 'wlc' (set lb_algo/lvs_sched)")
    if vs.group is not None and vs.group not in vsg_names:
        err("unknown-vsg", f"virtual_server_group {vs.group} does not exist", vs.group)
    _check_datapath(vs, r, backend)
    family = 6 if vs.ip is not None and ":" in vs.ip else 4 if vs.ip is not None else None
    kept: list[RealServer] = []
    seen: set[tuple[str, int | None]] = set()
    for rs in vs.real_servers:
        rs_family = 6 if ":" in rs.ip else 4
        if family is not None and rs_family != family:
            err(
                "rs-family",
                f"address family of real server {rs.ip} does not match - skipping it",
                rs.ip,
                "real_server",
            )
            continue
        if (rs.ip, rs.port) in seen:
            err(
                "rs-duplicate",
                f"real server {rs.ip} {rs.port or ''} is duplicated - removing the second",
                rs.ip,
                "real_server",
            )
            continue
        seen.add((rs.ip, rs.port))
        kept.append(rs)
        _check_checkers(rs, track_files, err)
    if not kept:
        err("no-real-servers", "has no real servers - ignoring")
        return None
    total = sum(vs.real_server_weight(rs) for rs in kept)
    if vs.quorum > total:
        err(
            "quorum-weight",
            f"quorum {vs.quorum} exceeds the total weight of real servers {total}",
            where="quorum",
        )
    return replace(vs, real_servers=tuple(kept)) if len(kept) != len(vs.real_servers) else vs


# Schedulers that need per-server connection counts, which nftables does not keep
# (netd.lvs.model.FALLBACK_SCHEDULERS; docs/lvs.md).
_RANDOM_BY_WEIGHT = frozenset({"lc", "wlc", "sed", "nq", "lblc", "lblcr", "ovf", "twos"})


def _methods(vs: VirtualServer) -> set[str]:
    """The forwarding methods of the real servers and the sorry server."""
    out = {vs.forwarding_of(rs) for rs in vs.real_servers}
    if vs.sorry_server is not None:
        out.add(vs.sorry_forwarding())
    return out


def _datapath_name(backend: str) -> str:
    """How -t names the nftables datapath for ``lvs_backend`` ("" when it is not in use)."""
    if backend == "ipvs":
        return ""  # IPVS forwards every method and has every scheduler
    if backend == "nftables":
        return "the nftables datapath"
    return "the nftables datapath (lvs_backend auto, on a kernel without IPVS)"


def _unforwarded(vs: VirtualServer, backend: str) -> tuple[str | None, bool]:
    """Why netd's datapath will not forward ``vs`` (None: it will), and whether the reason
    is its forwarding method (reported at the lvs_method line)."""
    nft = _datapath_name(backend)
    method = (vs.lvs_method or "NAT").upper()
    if method == "TUN" and nft:
        return f"lvs_method TUN is not supported by {nft} (no IP-in-IP encapsulation)", True
    if len(mixed := _methods(vs)) > 1:
        return (
            f"its real servers (and sorry server) mix lvs_method {' and '.join(sorted(mixed))}, "
            "which netd cannot program in one virtual server (one method per virtual server)"
        ), True
    if method == "DR" and vs.fwmark is not None and nft:
        return f"lvs_method DR with a fwmark service is not supported by {nft}", True
    if vs.group is None and vs.fwmark is None and not vs.port and nft:
        return f"port 0 services are not supported by {nft}", False
    return None, False


def _check_datapath(vs: VirtualServer, r: _Report, backend: str) -> None:
    """What netd's datapath does differently, or not at all (docs/lvs.md): the nftables one
    (``lvs_backend nftables``, or ``auto`` on a kernel without IPVS) has NAT and DR but no
    tunnels and no connection counts; IPVS has everything (a ``virtual_server_group`` is a
    service per entry there, one pool for the whole group in nftables)."""
    nft = _datapath_name(backend)
    at: tuple[str, ...] = ("virtual_server", vs.name)
    unforwarded, by_method = _unforwarded(vs, backend)
    if by_method:
        at = (*at, "lvs_method" if (*at, "lvs_method") in r.locs else "lb_kind")
    if unforwarded:
        r(
            "warning",
            "lvs-not-forwarded",
            f"Virtual server {vs.name}: {unforwarded}; it is checked but not forwarded",
            vs.name,
            at=at,
        )
    _check_flags(vs, r, backend)
    sched = vs.lvs_sched or "wlc"
    if sched in _RANDOM_BY_WEIGHT and nft:
        r(
            "warning",
            "lvs-sched-fallback",
            f"Virtual server {vs.name}: lvs_sched {sched} needs connection counts, which "
            f"{nft} does not keep: new connections are spread at random by weight",
            vs.name,
            at=(*at, "lvs_sched") if vs.lvs_sched else at,
        )


# keepalived's IPVS service flag keywords, which netd's IPVS backend sends (IPVS_SVC_F_*,
# netd.lvs.ipvs_encode.FLAG_BITS; persistence_engine as the service's PE_NAME): what each asks
# of IPVS, and why the nftables datapath ignores it (docs/lvs.md).
_IPVS_FLAGS: Final[dict[str, tuple[str, str]]] = {
    "ops": (
        "one-packet scheduling: each UDP datagram is scheduled on its own",
        "it schedules a flow's first packet and keeps the flow's other packets on that server",
    ),
    "flag-1": ("scheduler flag 1", "its schedulers take no flags"),
    "flag-2": ("scheduler flag 2", "its schedulers take no flags"),
    "flag-3": ("scheduler flag 3", "its schedulers take no flags"),
    "sh-port": ("sh hashes the client's port too", "its sh hashes the client's address only"),
    "sh-fallback": (
        "sh sends a client whose server is unavailable to another one",
        "its hash covers only servers of weight above 0, as if this were always set",
    ),
    "mh-port": ("mh hashes the client's port too", "its mh hashes the client's address only"),
    "mh-fallback": (
        "mh sends a client whose server is unavailable to another one",
        "its hash covers only servers of weight above 0, as if this were always set",
    ),
    "persistence_engine": (
        "persistence by the engine's key, for sip the Call-ID",
        "it keeps persistent clients by address only",
    ),
}


def _persistent(vs: VirtualServer) -> bool:
    """persistence_timeout, or a port 0 service (keepalived makes those persistent)."""
    port0 = vs.fwmark is None and vs.group is None and not vs.port
    return vs.persistence_timeout is not None or port0


def _check_flags(vs: VirtualServer, r: _Report, backend: str) -> None:
    """The IPVS flag keywords: used by the IPVS backend; the nftables datapath (when it is or
    may be the one) ignores them, and -t says so with why. ``hashed`` is ignored by both."""
    nft = _datapath_name(backend)
    at: tuple[str, ...] = ("virtual_server", vs.name)
    for opt in vs.other:
        word = opt.keyword
        where = (*at, word)
        if word == "hashed":
            r(
                "warning",
                "lvs-flag-ignored",
                f"Virtual server {vs.name}: 'hashed' is ignored by both datapaths: IPVS marks "
                "every service hashed itself (IP_VS_SVC_F_HASHED), netd never sends it",
                word,
                at=where,
            )
            continue
        if word not in _IPVS_FLAGS:
            continue
        what, why = _IPVS_FLAGS[word]
        if word == "persistence_engine" and not _persistent(vs):
            r(
                "warning",
                "lvs-flag-ignored",
                f"Virtual server {vs.name}: 'persistence_engine' is ignored without "
                "persistence_timeout (keepalived sends it for persistent services only)",
                word,
                at=where,
            )
            continue
        if nft:
            r(
                "warning",
                "lvs-flag-ignored",
                f"Virtual server {vs.name}: '{word}' ({what}) is used by IPVS only; {nft} "
                f"ignores it: {why}",
                word,
                at=where,
            )


def _check_checkers(rs: RealServer, track_files: set[str], err: Callable[..., None]) -> None:
    """What each checker of a real server needs: a url, a misc_path, a known track_file."""
    for c in rs.checkers:
        if c.kind in ("HTTP_GET", "SSL_GET") and not c.urls:
            err("no-url", f"{c.kind} for real_server {rs.ip} has no url", c.kind)
        if c.kind == "MISC_CHECK" and c.misc_path is None:
            err("no-misc-path", f"MISC_CHECK for real_server {rs.ip} has no misc_path", c.kind)
        if c.kind == "FILE_CHECK" and c.track_file not in track_files:
            err(
                "unknown-track",
                f"FILE_CHECK for real_server {rs.ip}: track_file {c.track_file} not found",
                str(c.track_file),
            )
