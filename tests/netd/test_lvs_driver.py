"""netd's LVS driver without a kernel: the configuration and checkd's pools become virtual
servers (netd.lvs.fromconfig), applied through a recording backend and reported on
net.applied.lvs:<key> (netd.lvs.driver)."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

import core
from bus import messages
from core.model import Config
from netd.errors import KernelError, LvsApplyError, LvsUnsupportedError, NftError
from netd.lvs import Forwarding, Member, Persistence, Service, VirtualServer
from netd.lvs.driver import POOL_GRACE, LvsDriver
from netd.lvs.fromconfig import desired_servers
from netd.lvs.ipvs_backend import IpvsBackend
from netd.lvs.ipvs_encode import Timeouts
from netd.lvs.nft_backend import Applied
from netd.lvs.nft_support import refuse_unsupported
from netd.lvs.settings import LvsSettings, lvs_settings
from tests.netd.ipvs_fake import FakeIpvs

KEY = "198.51.100.80:tcp:80"
KEY81 = "198.51.100.80:tcp:81"


def _config(extra: str = "", extra81: str = "", rs2: str = "") -> Config:
    text = f"""
virtual_server 198.51.100.80 80 {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    {extra}
    real_server 203.0.113.10 8080 {{
        weight 2
    }}
    real_server 203.0.113.11 {{
    }}
    {rs2}
}}
virtual_server 198.51.100.80 81 {{
    protocol TCP
    {extra81}
    real_server 203.0.113.12 8080 {{
    }}
}}
"""
    result = core.loads(text, script_env=None)
    assert not [p for p in result.problems if p.severity == "fatal"], result.problems
    return result.config


def _pool(
    weights: Mapping[tuple[str, int], int | None], *, sorry_active: bool = False
) -> messages.PoolReport:
    members = tuple(
        messages.PoolMember(
            id=f"[{ip}]:tcp:{port}", ip=ip, alive=w is not None, port=port, pool_weight=w
        )
        for (ip, port), w in weights.items()
    )
    return messages.PoolReport(
        vs="[198.51.100.80]:tcp:80",
        quorum_up=not sorry_active,
        members=members,
        sorry_active=sorry_active,
    )


# ---- fromconfig ------------------------------------------------------------------------------


def test_without_a_pool_every_real_server_is_in_with_its_weight() -> None:
    d = desired_servers(_config(), {})
    vs = d.servers[KEY]
    assert vs.service == Service("198.51.100.80", "tcp", 80) and vs.scheduler == "rr"
    # A NAT real server without a port takes the virtual server's (as keepalived).
    assert vs.members == (Member("203.0.113.10", 8080, 2), Member("203.0.113.11", 80, 1))
    assert d.servers[KEY81].scheduler == "wlc"  # keepalived's default
    assert d.names == {KEY: "198.51.100.80 80", KEY81: "198.51.100.80 81"}


def test_the_pool_decides_weights_and_who_is_out() -> None:
    pool = _pool({("203.0.113.10", 8080): 5, ("203.0.113.11", 80): None})
    vs = desired_servers(_config(), {KEY: pool}).servers[KEY]
    assert vs.members == (Member("203.0.113.10", 8080, 5),)
    inhibited = _pool({("203.0.113.10", 8080): 2, ("203.0.113.11", 80): 0})
    vs = desired_servers(_config(), {KEY: inhibited}).servers[KEY]
    assert vs.members == (Member("203.0.113.10", 8080, 2), Member("203.0.113.11", 80, 0))


def test_the_configuration_decides_who_exists() -> None:
    # The pool predates a reload: it lists .11 (now removed) and not .13 (just added).
    pool = _pool({("203.0.113.10", 8080): 2, ("203.0.113.11", 80): 1})
    config = _config(rs2="real_server 203.0.113.13 8080 {\n}")
    config = _drop_rs(config, "203.0.113.11")
    vs = desired_servers(config, {KEY: pool}).servers[KEY]
    assert vs.members == (Member("203.0.113.10", 8080, 2), Member("203.0.113.13", 8080, 1))


def _drop_rs(config: Config, ip: str) -> Config:
    vss = tuple(
        replace(vs, real_servers=tuple(r for r in vs.real_servers if r.ip != ip))
        for vs in config.virtual_servers
    )
    return replace(config, virtual_servers=vss)


def test_alpha_real_servers_wait_for_their_first_check() -> None:
    vs = desired_servers(_config(extra="alpha"), {}).servers[KEY]
    assert vs.members == ()


def test_sorry_server_stands_in_when_the_pool_says_so() -> None:
    config = _config(extra="sorry_server 203.0.113.12 8080")
    pool = _pool({("203.0.113.10", 8080): None, ("203.0.113.11", 80): None}, sorry_active=True)
    vs = desired_servers(config, {KEY: pool}).servers[KEY]
    assert vs.sorry_active and vs.pool() == (
        ("sorry-203.0.113.12-8080", Member("203.0.113.12", 8080, 1)),
    )


def test_persistence_and_its_granularity() -> None:
    config = _config(extra="persistence_timeout 60\n persistence_granularity 255.255.255.0")
    vs = desired_servers(config, {}).servers[KEY]
    assert vs.persistence is not None
    assert (vs.persistence.timeout, vs.persistence.prefix) == (60, 24)


def test_what_nftables_cannot_forward_is_its_own_refusal() -> None:
    # IPVS forwards TUN: the configuration's translation keeps it, the nftables backend
    # refuses it (the driver reports that virtual server alone, below); DR it forwards
    d = desired_servers(_config(extra="lb_kind TUN"), {})
    assert d.servers[KEY].forwarding is Forwarding.TUN and not d.errors
    with pytest.raises(LvsUnsupportedError, match="TUN"):
        refuse_unsupported(d.servers[KEY])
    refuse_unsupported(desired_servers(_config(extra="lb_kind DR"), {}).servers[KEY])


def test_a_port_0_service_is_persistent_as_keepalived_makes_it() -> None:
    text = (
        "virtual_server 198.51.100.80 0 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n"
        " real_server 203.0.113.10 0 {\n }\n}\n"
    )
    vs = desired_servers(core.loads(text, config_id="n").config, {}).servers["198.51.100.80:tcp:0"]
    assert vs.persistence == Persistence(360) and vs.service.port == 0
    with pytest.raises(LvsUnsupportedError, match="port 0"):
        refuse_unsupported(vs)


def test_thresholds_and_service_flags_reach_the_model() -> None:
    config = _config(extra="ops\n    sh-port")
    config = replace(
        config,
        virtual_servers=tuple(
            replace(
                vs,
                real_servers=tuple(
                    replace(rs, uthreshold=100, lthreshold=10) for rs in vs.real_servers
                ),
            )
            for vs in config.virtual_servers
        ),
    )
    vs = desired_servers(config, {}).servers[KEY]
    assert vs.flags == {"ops", "sh-port"}
    assert {(m.upper, m.lower) for m in vs.members} == {(100, 10)}


def test_what_cannot_be_programmed_is_an_error_of_that_virtual_server() -> None:
    d = desired_servers(_config(extra="persistence_timeout 60\n persistence_granularity 33"), {})
    assert KEY not in d.servers and "persistence_granularity /33" in str(d.errors[KEY])
    assert KEY81 in d.servers  # the others are not held back


def test_a_virtual_server_group_is_every_address_of_it_with_one_pool() -> None:
    text = """
virtual_server_group G {
    198.51.100.80-81 80
    fwmark 7
}
virtual_server group G {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    sorry_server 203.0.113.12 8080
    sorry_server_inhibit
    real_server 203.0.113.10 8080 {
    }
}
"""
    result = core.loads(text, script_env=None)
    assert not [p for p in result.problems if p.severity == "fatal"], result.problems
    (vs,) = desired_servers(result.config, {}).servers.values()
    assert [str(s) for s in (vs.service, *vs.aliases)] == [
        "tcp 198.51.100.80:80",
        "tcp 198.51.100.81:80",
        "fwmark 7",
    ]
    assert vs.sorry_inhibit and vs.pool()[-1][1] == Member("203.0.113.12", 8080, 0)
    assert vs.persistence is None  # no port of its own is no port 0 service: not persistent


def test_the_sorry_servers_own_method() -> None:
    dr = "lvs_method DR\n sorry_server 203.0.113.12 8080\n sorry_server_lvs_method DR"
    vs81 = desired_servers(_config(extra81=dr), {}).servers[KEY81]
    assert vs81.forwarding is Forwarding.DR and vs81.sorry == Member("203.0.113.12", 81, 1)
    mixed = "sorry_server 203.0.113.12 8080\n sorry_server_lvs_method DR"
    d = desired_servers(_config(extra81=mixed), {})
    assert "mix lvs_method DR and NAT" in str(d.errors[KEY81])


def test_real_servers_mixing_methods_are_an_error_of_that_virtual_server() -> None:
    d = desired_servers(_config(rs2="real_server 203.0.113.12 8080 {\n lvs_method DR\n }"), {})
    assert "mix lvs_method DR and NAT" in str(d.errors[KEY]) and KEY81 in d.servers


def test_a_real_servers_own_method_is_the_virtual_servers_when_they_all_agree() -> None:
    config = _config(extra81="lvs_method NAT")
    vs81 = replace(config.virtual_servers[1], lvs_method=None)
    rs = tuple(replace(r, lvs_method="DR") for r in vs81.real_servers)
    config = replace(
        config, virtual_servers=(config.virtual_servers[0], replace(vs81, real_servers=rs))
    )
    assert desired_servers(config, {}).servers[KEY81].forwarding is Forwarding.DR


@pytest.mark.parametrize("method", ["DR", "TUN"])
def test_dr_and_tun_go_to_the_backend_which_decides(method: str) -> None:
    # TUN is refused by the nftables layout, not here: IPVS does it.
    vs = desired_servers(_config(extra=f"lb_kind {method}"), {}).servers[KEY]
    assert vs.forwarding is Forwarding(method)


# ---- the driver ------------------------------------------------------------------------------


class FakeBackend:
    name = "fake"

    def __init__(self, refuse: Callable[[VirtualServer], bool] = lambda vs: False) -> None:
        self.calls: list[tuple[str, tuple[VirtualServer, ...]]] = []
        self.refuse = refuse

    def check(self, vs: VirtualServer) -> None:
        refuse_unsupported(vs)  # as the nftables backend

    def start(self) -> list[str]:
        self.calls.append(("start", ()))
        return []

    def apply(self, desired: Sequence[VirtualServer]) -> Applied:
        return self._do("apply", desired)

    def reconcile(self, desired: Sequence[VirtualServer]) -> Applied:
        return self._do("reconcile", desired)

    def _do(self, verb: str, desired: Sequence[VirtualServer]) -> Applied:
        if any(self.refuse(vs) for vs in desired):
            raise NftError("add element x", errno.E2BIG, "E2BIG", "too big")
        self.calls.append((verb, tuple(desired)))
        return Applied((), 1)

    def withdraw(self) -> None:
        self.calls.append(("withdraw", ()))

    def close(self) -> None:
        self.calls.append(("close", ()))


class FakeReports:
    def __init__(self) -> None:
        self.retained: dict[str, dict[str, Any]] = {}
        self.published: list[tuple[str, dict[str, Any]]] = []

    def retain(self, topic: str, body: Mapping[str, Any]) -> None:
        self.retained[topic] = dict(body)

    def forget(self, topic: str) -> None:
        self.retained.pop(topic, None)

    def publish(self, topic: str, body: Mapping[str, Any]) -> None:
        self.published.append((topic, dict(body)))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _driver(backend: FakeBackend, clock: Clock | None = None) -> tuple[LvsDriver, FakeReports]:
    reports = FakeReports()
    return LvsDriver(reports, _inline, lambda _: backend, clock=clock or Clock()), reports


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _applied(reports: FakeReports, key: str) -> messages.Applied:
    topic = f"net.applied.lvs:{key}"
    return messages.Applied.decode(topic, reports.retained[topic])


def test_the_first_apply_waits_for_the_pools_or_the_grace() -> None:
    async def main() -> None:
        backend, clock = FakeBackend(), Clock()
        driver, reports = _driver(backend, clock)
        driver.configure(_config(), 3)
        await _settle()
        assert backend.calls == []  # checkd has not published yet
        driver.pool(KEY, _pool({("203.0.113.10", 8080): 2, ("203.0.113.11", 80): None}))
        await _settle()
        assert backend.calls == []  # still waiting for :81's
        clock.now += POOL_GRACE
        driver.configure(_config(), 3)  # any wake-up after the grace applies
        await _settle()
        verb, servers = backend.calls[-1]
        assert verb == "apply"
        assert [vs.members for vs in servers] == [
            (Member("203.0.113.10", 8080, 2),),
            (Member("203.0.113.12", 8080, 1),),
        ]
        report = _applied(reports, KEY)
        assert (report.owner, report.generation, report.items, report.failures) == (
            f"lvs:{KEY}",
            3,
            1,
            (),
        )

    asyncio.run(main())


def test_a_disabled_driver_never_touches_the_kernel() -> None:
    async def main() -> None:
        backend = FakeBackend()
        reports = FakeReports()
        driver = LvsDriver(reports, _inline, lambda _: backend, enabled=False, clock=Clock())
        driver.start(watch=None)
        driver.configure(_config(), 1)
        driver.pool(KEY, _pool({}))
        await _settle()
        await driver.stop()
        assert backend.calls == [] and reports.retained == {}

    asyncio.run(main())


def test_a_pool_change_is_one_apply_and_a_resend_is_free() -> None:
    async def main() -> None:
        backend = FakeBackend()
        driver, _ = _driver(backend)
        driver.configure(_config(), 1)
        both = {("203.0.113.10", 8080): 2, ("203.0.113.11", 80): 1}
        driver.pool(KEY, _pool(both))
        driver.pool(KEY81, _pool({}))
        await _settle()
        n = len(backend.calls)
        driver.pool(KEY, _pool(both))  # the periodic re-send
        await _settle()
        assert len(backend.calls) == n
        driver.pool(KEY, _pool({**both, ("203.0.113.11", 80): None}))
        await _settle()
        assert len(backend.calls) == n + 1
        assert backend.calls[-1][1][0].members == (Member("203.0.113.10", 8080, 2),)

    asyncio.run(main())


def test_a_refused_virtual_server_is_reported_and_the_others_applied() -> None:
    async def main() -> None:
        backend = FakeBackend(refuse=lambda vs: vs.service.port == 81)
        driver, reports = _driver(backend)
        driver.configure(Config(), 1)  # no virtual server: leftovers go at once
        await _settle()
        assert backend.calls == [("start", ())]
        bad = "persistence_timeout 60\n persistence_granularity 33"
        driver.configure(_config(extra=bad), 2)
        driver.pool(KEY, _pool({}))
        driver.pool(KEY81, _pool({}))
        await _settle()
        dr = _applied(reports, KEY)
        assert dr.items == 0 and dr.failures[0].errno == "EINVAL"
        assert dr.failures[0].item == {
            "kind": "virtual_server",
            "key": KEY,
            "name": "198.51.100.80 80",
        }
        refused = _applied(reports, KEY81)
        assert refused.failures[0].errno == "E2BIG" and refused.failures[0].action == "apply"
        assert backend.calls[-1] == ("apply", ())  # the table holds what it could

    asyncio.run(main())


def test_a_removed_virtual_server_report_goes_and_stop_withdraws() -> None:
    async def main() -> None:
        backend = FakeBackend()
        driver, reports = _driver(backend)
        driver.configure(_config(), 1)
        driver.pool(KEY, _pool({("203.0.113.10", 8080): 2}))
        driver.pool(KEY81, _pool({}))
        await _settle()
        assert f"net.applied.lvs:{KEY81}" in reports.retained
        config = _config()
        driver.configure(replace(config, virtual_servers=config.virtual_servers[:1]), 2)
        await _settle()
        assert f"net.applied.lvs:{KEY81}" not in reports.retained
        assert reports.published[-1][1]["items"] == 0
        await driver.stop()
        assert backend.calls[-2:] == [("withdraw", ()), ("close", ())]

    asyncio.run(main())


def test_a_refused_change_keeps_what_the_kernel_held_for_that_virtual_server() -> None:
    async def main() -> None:
        backend = FakeBackend(refuse=lambda vs: any(m.weight == 7 for m in vs.members))
        driver, reports = _driver(backend)
        driver.configure(_config(), 1)
        both = {("203.0.113.10", 8080): 2, ("203.0.113.11", 80): 1}
        driver.pool(KEY, _pool(both))
        driver.pool(KEY81, _pool({("203.0.113.12", 8080): 1}))
        await _settle()
        old81 = backend.calls[-1][1][1]
        # :80 loses .11 (accepted), :81's new weight is refused by the kernel
        driver.pool(KEY, _pool({**both, ("203.0.113.11", 80): None}))
        driver.pool(KEY81, _pool({("203.0.113.12", 8080): 7}))
        await _settle()
        servers = backend.calls[-1][1]
        assert servers[0].members == (Member("203.0.113.10", 8080, 2),)
        assert servers[1] == old81
        assert _applied(reports, KEY81).failures[0].errno == "E2BIG"
        assert _applied(reports, KEY).failures == ()

    asyncio.run(main())


class FakeWatch:
    """A pipe standing in for the kernel's commit notifications."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()

    def fileno(self) -> int:
        return self.r

    def read(self) -> bool:
        return bool(os.read(self.r, 100))

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def test_a_foreign_commit_reads_the_table_back() -> None:
    async def main() -> None:
        backend, clock, watch = FakeBackend(), Clock(), FakeWatch()
        driver, _ = _driver(backend, clock)
        driver.start(watch=lambda: watch)
        driver.configure(_config(), 1)
        driver.pool(KEY, _pool({("203.0.113.10", 8080): 2}))
        driver.pool(KEY81, _pool({}))
        await _settle()
        assert [verb for verb, _ in backend.calls] == ["apply"]
        clock.now += 10  # well after the last read-back: no spacing to wait out
        os.write(watch.w, b"x")  # someone ran nft
        for _ in range(50):
            await asyncio.sleep(0.01)
            if backend.calls[-1][0] == "reconcile":
                break
        assert [verb for verb, _ in backend.calls] == ["apply", "reconcile"]
        await driver.stop()

    asyncio.run(main())


class PartialBackend(FakeBackend):
    """As the IPVS backend: no transactions, so it applies what it can and names the rest."""

    def _do(self, verb: str, desired: Sequence[VirtualServer]) -> Applied:
        self.calls.append((verb, tuple(desired)))
        bad = {
            vs.service: KernelError("add service x", errno.EINVAL, "EINVAL", "bad")
            for vs in desired
            if self.refuse(vs)
        }
        if bad:
            raise LvsApplyError(bad)
        return Applied((), 1)


def test_a_backend_that_names_its_refusals_is_not_retried_one_at_a_time() -> None:
    async def main() -> None:
        backend = PartialBackend(refuse=lambda vs: vs.service.port == 81)
        driver, reports = _driver(backend)
        driver.configure(_config(), 1)
        driver.pool(KEY, _pool({}))
        driver.pool(KEY81, _pool({}))
        await _settle()
        assert [verb for verb, _ in backend.calls] == ["apply"]  # one apply, no retries
        refused = _applied(reports, KEY81)
        assert refused.items == 0 and refused.failures[0].errno == "EINVAL"
        assert _applied(reports, KEY).failures == ()

    asyncio.run(main())


def test_the_backend_is_made_with_the_configurations_lvs_settings() -> None:
    async def main() -> None:
        made: list[LvsSettings] = []
        backend = FakeBackend()

        def factory(settings: LvsSettings) -> FakeBackend:
            made.append(settings)
            return backend

        driver = LvsDriver(FakeReports(), _inline, factory, clock=Clock())
        config = core.loads(
            "global_defs {\n    lvs_backend ipvs\n    lvs_flush\n    lvs_flush_on_stop VS\n"
            "    lvs_timeouts tcp 60 udp 5\n}\n",
            config_id="n",
        ).config
        driver.configure(replace(config, virtual_servers=_config().virtual_servers), 1)
        driver.pool(KEY, _pool({}))
        driver.pool(KEY81, _pool({}))
        await _settle()
        assert made == [LvsSettings("ipvs", True, "vs", Timeouts(tcp=60, udp=5))]
        assert lvs_settings(Config()) == LvsSettings()  # auto, nothing flushed or changed

    asyncio.run(main())


def test_with_ipvs_a_group_entry_claiming_another_services_address_fails_alone() -> None:
    """The IPVS backend (on its fake kernel) refuses a service two virtual servers claim before
    sending anything; the driver retries one at a time and reports the group alone."""
    text = """
virtual_server_group G {
    198.51.100.81 80
    198.51.100.80 80
}
virtual_server 198.51.100.80 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 203.0.113.10 8080 {
    }
}
virtual_server group G {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 203.0.113.11 8080 {
    }
}
"""

    async def main() -> None:
        kernel = FakeIpvs()
        reports = FakeReports()
        driver = LvsDriver(reports, _inline, lambda _: IpvsBackend(kernel), clock=Clock())
        driver.configure(core.loads(text, script_env=None).config, 1)
        for key in (KEY, "group:G:0"):
            driver.pool(key, messages.PoolReport(vs=key, quorum_up=True, members=()))
        await _settle()
        refused = _applied(reports, "group:G:0")
        assert (
            refused.failures[0].errno == "EINVAL" and "defined twice" in refused.failures[0].reason
        )
        assert _applied(reports, KEY).failures == ()
        assert list(kernel.table()) == ["6/198.51.100.80/80"]  # the plain one, programmed
        await driver.stop()

    asyncio.run(main())
