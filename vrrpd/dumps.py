"""keepalived's three dump files, written by vrrpd on a signal (keepalived 2.2.7).

USR1 writes ``keepalived.data`` (human-readable), USR2 ``keepalived.stats`` (counters), and
SIGRTMIN+2 ``keepalived.json`` (json_version 1: one ``{"data", "stats"}`` object per
instance), all in ``$TMPDIR`` (if absolute) or ``/tmp``, mode 0600, written atomically
(``bus.dumpfiles``).
Tools that parse keepalived's files keep working; ``pykeepalivedctl status --json`` is the
stable interface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bus.dumpfiles import write as write  # noqa: PLC0414 (re-exported: vrrpd.engine uses it)
from vrrpd.machine import State
from vrrpd.validate import DropReason, ReceiveCounters

_STATE_NUMBERS = {State.INIT: 0, State.BACKUP: 1, State.MASTER: 2, State.FAULT: 3}


@dataclass(slots=True)
class SendCounters:
    advert_sent: int = 0
    pri_zero_sent: int = 0
    become_master: int = 0
    release_master: int = 0

    def clear(self) -> None:
        self.advert_sent = self.pri_zero_sent = self.become_master = self.release_master = 0


@dataclass(frozen=True, slots=True)
class InstanceView:
    """What a dump needs to know about one running instance."""

    name: str
    version: int
    state: State
    vrid: int
    base_priority: int
    effective_priority: int
    interface: str
    src_ip: str
    mcast: str
    interval: float
    master_adver_int: float
    master_down: float
    master_priority: int
    preempt: bool
    preempt_delay: float
    accept: bool
    vips: tuple[str, ...]
    vips_set: bool
    auth_type: int
    track_scripts: tuple[str, ...]
    last_transition: float
    received: ReceiveCounters
    sent: SendCounters


def _drops(c: ReceiveCounters, *reasons: DropReason) -> int:
    return sum(c.drops[r] + c.notes[r] for r in reasons)


def stats_fields(v: InstanceView) -> dict[str, int]:
    c = v.received
    return {
        "advert_rcvd": c.accepted,
        "advert_sent": v.sent.advert_sent,
        "become_master": v.sent.become_master,
        "release_master": v.sent.release_master,
        "packet_len_err": _drops(c, DropReason.TOO_SHORT, DropReason.LENGTH),
        "advert_interval_err": _drops(c, DropReason.INTERVAL),
        "ip_ttl_err": _drops(c, DropReason.TTL),
        "invalid_type_rcvd": _drops(c, DropReason.TYPE),
        "addr_list_err": _drops(c, DropReason.ADDR_COUNT, DropReason.ADDR_MISMATCH),
        "invalid_authtype": _drops(c, DropReason.AUTH_TYPE),
        "authtype_mismatch": 0,
        "auth_failure": _drops(c, DropReason.AUTH),
        "pri_zero_rcvd": c.priority_zero,
        "pri_zero_sent": v.sent.pri_zero_sent,
    }


def stats_text(views: list[InstanceView]) -> str:
    out = []
    for v in views:
        s = stats_fields(v)
        out += [
            f"VRRP Instance: {v.name}",
            "  Advertisements:",
            f"    Received: {s['advert_rcvd']}",
            f"    Sent: {s['advert_sent']}",
            f"  Became master: {s['become_master']}",
            f"  Released master: {s['release_master']}",
            "  Packet Errors:",
            f"    Length: {s['packet_len_err']}",
            f"    TTL: {s['ip_ttl_err']}",
            f"    Invalid Type: {s['invalid_type_rcvd']}",
            f"    Advertisement Interval: {s['advert_interval_err']}",
            f"    Address List: {s['addr_list_err']}",
            "  Authentication Errors:",
            f"    Invalid Type: {s['invalid_authtype']}",
            f"    Type Mismatch: {s['authtype_mismatch']}",
            f"    Failure: {s['auth_failure']}",
            "  Priority Zero:",
            f"    Received: {s['pri_zero_rcvd']}",
            f"    Sent: {s['pri_zero_sent']}",
        ]
    return "\n".join(out) + "\n"


def json_text(views: list[InstanceView]) -> str:
    records: list[dict[str, Any]] = []
    for v in views:
        data: dict[str, Any] = {
            "iname": v.name,
            "ifp_ifname": v.interface,
            "vrid": v.vrid,
            "base_priority": v.base_priority,
            "effective_priority": v.effective_priority,
            "master_priority": v.master_priority,
            "state": _STATE_NUMBERS[v.state],
            "wantstate": _STATE_NUMBERS[v.state],
            "version": v.version,
            "last_transition": v.last_transition,
            "adver_int": v.interval,
            "master_adver_int": v.master_adver_int,
            "accept": int(v.accept),
            "nopreempt": not v.preempt,
            "preempt_delay": int(v.preempt_delay),
            "vipset": v.vips_set,
            "auth_type": v.auth_type,
        }
        if v.vips:
            data["vips"] = [
                f"{vip} dev {v.interface}{' set' if v.vips_set else ''}" for vip in v.vips
            ]
        if v.track_scripts:
            data["track_script"] = list(v.track_scripts)
        records.append({"data": data, "stats": stats_fields(v)})
    return json.dumps(records, separators=(",", ":"))


def data_text(views: list[InstanceView], router_id: str | None = None) -> str:
    out = []
    if router_id is not None:
        # keepalived.data opens with the global definitions; router_id is the one vrrpd knows
        out += ["------< Global definitions >------", f" Router ID = {router_id}"]
    out.append("------< VRRP Topology >------")
    for v in views:
        out += [
            f" VRRP Instance = {v.name}",
            f"   VRRP Version = {v.version}",
            f"   State = {v.state.value}",
            f"   Wantstate = {v.state.value}",
            f"   Last transition = {v.last_transition:.6f}",
            f"   Master down timer = {round(v.master_down * 1_000_000)} usecs",
            f"   Interface = {v.interface}",
            f"   Using src_ip = {v.src_ip}",
            f"   Multicast address {v.mcast}",
            f"   Virtual Router ID = {v.vrid}",
            f"   Priority = {v.base_priority}",
            f"   Effective priority = {v.effective_priority}",
            f"   Advert interval = {v.interval:g} sec",
            f"   Accept = {'enabled' if v.accept else 'disabled'}",
            f"   Preempt = {'enabled' if v.preempt else 'disabled'}",
            f"   Virtual IP ({len(v.vips)}):",
            *(f"     {vip} dev {v.interface}{' set' if v.vips_set else ''}" for vip in v.vips),
        ]
        if v.track_scripts:
            out += ["   Tracked scripts :", *(f"     {s}" for s in v.track_scripts)]
    return "\n".join(out) + "\n"
