"""``pykeepalivedctl demo --lvs``: the director demo runs to its end in a namespace lab."""

from __future__ import annotations

import io
import shutil

import pytest

import core
from ctl.lvsdemo import director_config, run_lvs_demo


def test_the_director_config_is_a_sync_group_and_a_virtual_server_over_checked_servers() -> None:
    result = core.loads(director_config(1, 100), script_env=None)
    assert result.exit_code == 0, result.problems
    (vs,) = result.config.virtual_servers
    assert [rs.checkers[0].kind for rs in vs.real_servers] == ["HTTP_GET"] * 3
    (group,) = result.config.sync_groups
    assert group.group == ("VI_OUT", "VI_IN")
    assert {i.priority for i in result.config.instances} == {100}


@pytest.mark.netns
@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian nftables)")
def test_demo_shows_a_real_server_leaving_and_coming_back_and_a_director_failing_over() -> None:
    out = io.StringIO()
    result = run_lvs_demo(out, timeout=30)
    assert result.withdrawn
    text = out.getvalue()
    assert "rs1 left the pool" in text and "back after" in text
    assert "director1 took the VIP and the gateway over" in text and result.takeover > 0
    # the line that ended the wait (just above "rs1 left") shows only rs0 and rs2 answering
    after = text.split("rs1 left the pool")[0].splitlines()[-2]
    assert "rs0" in after and "rs2" in after and "rs1" not in after
