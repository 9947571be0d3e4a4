"""``net.applied`` names a failed item as the intent gave it: ``{"kind", "spec"}`` with the core
model part, the one wire form for items (docs/bus.md). No kernel needed: the failure is made up
as the kernel adapter reports one."""

from __future__ import annotations

import errno
import time
from typing import Any

import msgpack

import core
from bus.messages import Applied, Intent
from netd.daemon import NetDaemon
from netd.desired import DesiredSet
from netd.fromconfig import intent_items, static_items
from netd.kernel import ApplyResult, Failure
from netd.reconcile import Action, Operation

CONFIG = """
static_routes {
    198.51.100.0/24 via 192.0.2.1 dev eth0
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100/24 dev eth1
    }
}
"""


class Publisher:
    def __init__(self) -> None:
        self.retained: dict[str, dict[str, Any]] = {}

    def retain(self, topic: str, body: dict[str, Any]) -> None:
        self.retained[topic] = body

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        pass


class Comp:
    def __init__(self) -> None:
        self.publisher = Publisher()


def refused(item: Any) -> Failure:
    return Failure(Operation(Action.ADD, item), errno.ENODEV, "ENODEV", "No such device")


def test_failures_name_the_item_as_the_intent_and_the_config_gave_it() -> None:
    config = core.loads(CONFIG, config_id="n", script_env=None).config
    spec = core.part_to_wire(config.instances[0].virtual_ipaddress[0])
    body = {
        "instance": "VI_1",
        "generation": 3,
        "lease": 3,
        "items": [{"kind": "vip", "spec": spec}],
    }
    intent = Intent.decode("vrrp.intent.VI_1", msgpack.unpackb(msgpack.packb(body)))
    (vip,) = intent_items(intent.items, "eth0")
    (route,) = static_items(config)
    comp = Comp()
    # Comp is a stub with only what the failure path touches, not a bus Component
    daemon = NetDaemon(comp)  # type: ignore[arg-type]
    try:
        now = time.monotonic()
        daemon.store.offer(DesiredSet("vrrp:VI_1", 3, (vip,), 10.0), now, boot="b")
        daemon.store.offer(DesiredSet("static", 1, (route,)), now, boot="b")
        daemon._set_merged(daemon.store.merged())
        daemon._report(ApplyResult(failures=(refused(vip), refused(route))))
        reports = {
            owner: Applied.decode(f"net.applied.{owner}", comp.publisher.retained[topic])
            for owner in ("vrrp:VI_1", "static")
            if (topic := f"net.applied.{owner}") in comp.publisher.retained
        }
    finally:
        daemon._netlink.shutdown(wait=True)
        daemon.monitor.close()
    (vip_failure,) = reports["vrrp:VI_1"].failures
    assert vip_failure.item == {"kind": "vip", "spec": spec}
    assert (vip_failure.action, vip_failure.errno) == ("add", "ENODEV")
    (route_failure,) = reports["static"].failures
    assert route_failure.item == {
        "kind": "route",
        "spec": core.part_to_wire(config.static_routes[0]),
    }
