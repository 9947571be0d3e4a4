"""A kernel that refuses protodown (macvlan before Linux 5.1): netd logs it, reports it per
item in net.applied, and does not retry until what it asks for changes. No kernel needed:
the VMAC manager is a stand-in that refuses."""

from __future__ import annotations

import asyncio
import errno
import time
from typing import Any

from netd.daemon import NetDaemon
from netd.desired import DesiredSet
from netd.errors import VmacError
from netd.kernel import ApplyResult


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


class RefusingVmacs:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.refuse = True

    def set_protodown(self, ifname: str, on: bool) -> None:
        self.calls.append((ifname, on))
        if self.refuse:
            raise VmacError(f"protodown {ifname}", errno.EOPNOTSUPP, "EOPNOTSUPP", "not supported")


def test_refused_protodown_is_a_per_item_failure_not_retried_until_asked_otherwise() -> None:
    async def scenario() -> None:
        comp = Comp()
        # Stubs with only what the daemon touches, so the refusal comes from a known place.
        daemon = NetDaemon(comp)  # type: ignore[arg-type]
        vmacs = RefusingVmacs()
        daemon.vmacs.manager = vmacs  # type: ignore[assignment]  # the stub above
        try:
            daemon.store.offer(DesiredSet("vrrp:VI_1", 3, ()), time.monotonic(), boot="b")
            await daemon.vmacs.protodown("vrrp:VI_1", "vrrp1.51", True)
            await daemon.vmacs.protodown("vrrp:VI_1", "vrrp1.51", True)  # every reconcile
            assert vmacs.calls == [("vrrp1.51", True)]
            daemon._report(ApplyResult())
            applied = comp.publisher.retained["net.applied.vrrp:VI_1"]
            assert applied["failures"] == [
                {
                    "item": {"kind": "vmac", "ifname": "vrrp1.51"},
                    "action": "protodown on",
                    "errno": "EOPNOTSUPP",
                    "reason": "not supported",
                }
            ]
            # MASTER now: protodown off is asked, tried, and succeeds; the failure clears.
            vmacs.refuse = False
            await daemon.vmacs.protodown("vrrp:VI_1", "vrrp1.51", False)
            assert vmacs.calls[-1] == ("vrrp1.51", False)
            daemon._report(ApplyResult())
            assert comp.publisher.retained["net.applied.vrrp:VI_1"]["failures"] == []
        finally:
            daemon._netlink.shutdown(wait=True)
            daemon.monitor.close()

    asyncio.run(scenario())
