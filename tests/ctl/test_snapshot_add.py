"""``pykeepalivedctl status`` files each retained message only after its message class has
checked it: a malformed one is left out and the status says which field was wrong."""

from __future__ import annotations

import pytest

from bus import MessageRejected
from ctl.snapshot import Snapshot, status_table


def test_messages_are_filed_by_their_typed_keys_and_kept_as_sent() -> None:
    snap = Snapshot()
    state = {"instance": "VI_1", "state": "MASTER", "priority": 150, "newer_field": 1}
    snap.add("vrrp.state.VI_1", state, 10)
    snap.add("hb.vrrpd", {"name": "vrrpd", "uptime": 3.0}, 10)
    assert snap.instances == {"VI_1": state}
    assert snap.components == {"vrrpd": {"name": "vrrpd", "uptime": 3.0, "pid": 10}}


def test_a_malformed_message_names_its_field() -> None:
    snap = Snapshot()
    with pytest.raises(MessageRejected, match="'faults'"):
        snap.add(
            "vrrp.state.VI_1",
            {"instance": "VI_1", "state": "MASTER", "priority": 150, "faults": "none"},
            10,
        )
    assert snap.instances == {}
    snap.rejected.append("vrrp.state.VI_1: field 'faults' is str, expected list")
    assert "left out 1 malformed message(s)" in status_table(snap)
