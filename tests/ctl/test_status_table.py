"""``pykeepalivedctl status`` says why an instance is in FAULT."""

from __future__ import annotations

from ctl.snapshot import Snapshot, status_table


def test_fault_reasons_are_listed() -> None:
    snap = Snapshot()
    snap.instances["VI_1"] = {
        "instance": "VI_1",
        "state": "FAULT",
        "priority": 200,
        "faults": ["link-local fe80::1 on eth0 is tentative (DAD)"],
    }
    snap.instances["VI_2"] = {"instance": "VI_2", "state": "BACKUP", "priority": 100, "faults": []}
    text = status_table(snap)
    reasons = [ln.split() for ln in text.splitlines() if "tentative" in ln]
    assert reasons == [["VI_1", "link-local", "fe80::1", "on", "eth0", "is", "tentative", "(DAD)"]]
    assert text.count("FAULT") == 2  # the state column and the reasons' heading
