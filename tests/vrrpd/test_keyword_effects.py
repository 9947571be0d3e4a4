"""Instance keywords vrrpd acts on: unicast_ttl, track_src_ip, unicast_fault_no_peer,
notify_deleted, no_virtual_ipaddress, router_id (pure: plans and a runner on a stub engine)."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address
from types import SimpleNamespace

from core import loads
from tests.vrrpd.stub_runner import Retained, Wire
from vrrpd import dumps
from vrrpd.ah import AhSession
from vrrpd.links import Link
from vrrpd.machine import Shutdown, Startup, State
from vrrpd.mail import Mailer
from vrrpd.notify import Job
from vrrpd.packet import Advert, encode
from vrrpd.plan import InstancePlan, plan, startup_delay
from vrrpd.runner import Runner
from vrrpd.validate import Accepted, IpFacts, validate

ME = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")


def config(options: str, peers: str = "192.0.2.12", vips: str = "192.0.2.100/24") -> str:
    peer_block = f"unicast_peer {{\n        {peers}\n    }}" if peers else ""
    vip_block = f"virtual_ipaddress {{\n        {vips}\n    }}" if vips else ""
    return f"""
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    version 3
    {options}
    {peer_block}
    {vip_block}
}}
"""


def plan_of(text: str) -> InstancePlan:
    result = loads(text, script_env=None, interfaces=["eth0"])
    assert result.exit_code == 0, result.problems
    (p,) = plan(result.config)
    return p


class StubEngine:
    """What a Runner uses of the engine, recording notify jobs and FIFO lines."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.fifo: list[str] = []
        self.stopping = False
        self.timers = SimpleNamespace(set=lambda *a: None, cancel=lambda *a: None)
        self.comp = SimpleNamespace(publisher=Retained())
        self.notifier = SimpleNamespace(submit=self.jobs.extend)
        self.mailer = Mailer()  # unconfigured: smtp_alert is not what these tests are about
        self.receivers: dict[object, object] = {}

    def fifo_write(self, line: str) -> None:
        self.fifo.append(line)


def started(p: InstancePlan, link: Link) -> tuple[Runner, StubEngine]:
    engine = StubEngine()
    # StubEngine and Wire are stubs with only what a Runner calls.
    runner = Runner(engine, p, link, ME, Wire())  # type: ignore[arg-type]
    runner.feed(Startup(), 0.0)
    runner.trackers_changed(0.0)
    return runner, engine


def state_of(runner: Runner) -> State:
    return runner.machine.state


def link_with(*addresses: str) -> Link:
    return Link("eth0", 2, True, tuple(ipaddress.ip_interface(a) for a in addresses))


def test_unicast_ttl_reaches_the_plan_default_255() -> None:
    assert plan_of(config("unicast_ttl 64")).unicast_ttl == 64
    assert plan_of(config("")).unicast_ttl == 255


def test_ah_unicast_adverts_carry_unicast_ttl_multicast_ones_255() -> None:
    unicast = AhSession(auth_pass=b"pw", src=ME, unicast=True, ttl=64)
    (datagram,) = unicast.seal(b"\x21\x33", (PEER,))
    assert datagram[8] == 64
    multicast = AhSession(auth_pass=b"pw", src=ME, ttl=64)
    (datagram,) = multicast.seal(b"\x21\x33", (IPv4Address("224.0.0.18"),))
    assert datagram[8] == 255


def test_unicast_fault_no_peer_without_peers_is_a_fault_with_its_cause() -> None:
    p = plan_of(config("unicast_src_ip 192.0.2.11\n    unicast_fault_no_peer", peers=""))
    runner, engine = started(p, link_with("192.0.2.11/24"))
    assert state_of(runner) is State.FAULT
    assert any("unicast_fault_no_peer" in f for f in runner.faults)
    assert engine.fifo[-1] == 'INSTANCE "VI_1" FAULT 100\n'
    # With a peer the keyword changes nothing.
    p = plan_of(config("unicast_src_ip 192.0.2.11\n    unicast_fault_no_peer"))
    assert p.config_faults == ()
    runner, _ = started(p, link_with("192.0.2.11/24"))
    assert state_of(runner) is State.BACKUP


def test_track_src_ip_faults_while_the_source_is_missing_and_recovers() -> None:
    p = plan_of(config("unicast_src_ip 192.0.2.11\n    track_src_ip"))
    assert p.track_src_ip
    runner, _ = started(p, link_with("192.0.2.10/24", "192.0.2.11/24"))
    assert state_of(runner) is State.BACKUP
    runner.link = link_with("192.0.2.10/24")
    runner.trackers_changed(1.0)
    assert state_of(runner) is State.FAULT
    assert runner.faults == {"source address 192.0.2.11 on eth0 (track_src_ip)"}
    runner.link = link_with("192.0.2.10/24", "192.0.2.11/24")
    runner.trackers_changed(2.0)
    assert state_of(runner) is State.BACKUP and not runner.faults


def test_without_track_src_ip_a_missing_source_is_no_fault() -> None:
    p = plan_of(config("unicast_src_ip 192.0.2.11"))
    assert not p.track_src_ip
    runner, _ = started(p, link_with("192.0.2.10/24"))
    assert state_of(runner) is State.BACKUP


def removed(options: str) -> StubEngine:
    runner, engine = started(plan_of(config(options)), link_with("192.0.2.11/24"))
    engine.jobs.clear()
    engine.fifo.clear()
    runner.removed_as = "DELETED" if runner.plan.notify_deleted else "FAULT"
    runner.feed(Shutdown("removed from the configuration"), 5.0)
    return engine


def test_a_removed_instance_reports_deleted_with_notify_deleted() -> None:
    engine = removed('notify_deleted "/x/deleted d"\n    notify_fault /x/fault\n    notify /x/g')
    assert [j.argv for j in engine.jobs] == [
        ("/x/deleted", "d"),
        ("/x/g", "INSTANCE", "VI_1", "DELETED", "100"),
    ]
    assert engine.fifo == ['INSTANCE "VI_1" DELETED 100\n']


def test_a_bare_notify_deleted_only_changes_what_is_reported() -> None:
    engine = removed("notify_deleted\n    notify /x/g")
    assert [j.argv for j in engine.jobs] == [("/x/g", "INSTANCE", "VI_1", "DELETED", "100")]
    assert engine.fifo == ['INSTANCE "VI_1" DELETED 100\n']


def test_a_removed_instance_reports_fault_without_notify_deleted() -> None:
    engine = removed("notify_fault /x/fault\n    notify /x/g")
    assert [j.argv for j in engine.jobs] == [
        ("/x/fault",),
        ("/x/g", "INSTANCE", "VI_1", "FAULT", "100"),
    ]
    assert engine.fifo == ['INSTANCE "VI_1" FAULT 100\n']


def test_no_virtual_ipaddress_sends_and_accepts_adverts_without_addresses() -> None:
    p = plan_of(config("no_virtual_ipaddress", vips=""))
    assert p.vips == ()
    runner, _ = started(p, link_with("192.0.2.11/24"))
    wire = encode(Advert(3, 51, 120, (), 100), src=PEER, dst=ME)
    result = validate(wire, IpFacts(src=PEER, dst=ME, ttl=255), runner.expect)
    assert isinstance(result, Accepted) and result.advert.addresses == ()


def test_keepalived_data_dump_names_the_router_id() -> None:
    text = dumps.data_text([], "lb-1")
    assert text.splitlines()[:3] == [
        "------< Global definitions >------",
        " Router ID = lb-1",
        "------< VRRP Topology >------",
    ]
    assert dumps.data_text([]).startswith("------< VRRP Topology >------")


def test_startup_waits_for_the_later_of_startup_delay_and_delay_after_boot() -> None:
    def delay(options: str, uptime: float) -> float:
        result = loads(f"global_defs {{\n{options}\n}}\n" + config(""), script_env=None)
        assert result.exit_code == 0 and not result.problems, result.problems
        return startup_delay(result.config.global_defs, uptime)

    assert delay("", 5.0) == 0.0
    assert delay("vrrp_startup_delay 3", 1000.0) == 3.0
    assert delay("vrrp_delay_after_boot 60", 45.0) == 15.0
    assert delay("vrrp_delay_after_boot 60", 600.0) == 0.0
    assert delay("vrrp_delay_after_boot 60\nvrrp_startup_delay 20", 45.0) == 20.0


def test_mcast_src_ip_is_the_source_of_multicast_adverts() -> None:
    p = plan_of(config("mcast_src_ip 192.0.2.7", peers=""))
    assert not p.unicast and p.unicast_src == IPv4Address("192.0.2.7")
