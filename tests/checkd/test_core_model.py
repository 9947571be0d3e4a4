"""checkd reads what core really publishes: keepalived.conf -> core -> wire -> check specs."""

from __future__ import annotations

import pytest

import core
from checkd.plan import FileSpec, ProcessSpec, ScriptSpec, normalize, plan_from_wire

CONF = """
global_defs {
    script_user nobody
    enable_script_security
}
vrrp_script chk {
    script "/bin/true 'two words' x"
    interval 2
    timeout 1
    rise 2
    fall 3
    weight -20
    user daemon
    init_fail
}
vrrp_script spare {
    script /bin/true
}
vrrp_script chk_global {
    script /bin/false
}
vrrp_track_process pr {
    process nginx -g
    param_match partial
    quorum 2
    quorum_max 4
    delay 1.5
    weight 10
}
track_file tf {
    file /run/pk-tf
    weight -3 reverse
    init_file 5 overwrite
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.1/24
    }
    track_script {
        chk
        chk_global
    }
    track_process {
        pr
    }
    track_file {
        tf
    }
}
"""


@pytest.mark.parametrize("omit_defaults", [False, True])
def test_plan_from_a_parsed_keepalived_conf(omit_defaults: bool) -> None:
    result = core.loads(CONF, script_env=None)
    kwargs = {"omit_defaults": True} if omit_defaults else {}
    model = core.to_wire(result.config, **kwargs)
    plan = plan_from_wire(normalize(model))
    assert plan.unused == ("script spare",)
    assert plan.problems == ()
    chk, chk_global, tf, pr = plan.checks
    assert chk == ScriptSpec(
        name="chk",
        command="/bin/true 'two words' x",
        interval=2.0,
        timeout=1.0,
        weight=-20,
        rise=2,
        fall=3,
        init_fail=True,
        user="daemon",
        script_security=True,
    )
    assert isinstance(chk_global, ScriptSpec)
    assert (chk_global.user, chk_global.user_source) == ("nobody", "script_user")
    assert tf == FileSpec(
        "tf", "/run/pk-tf", weight=-3, reverse=True, init_value=5, init_overwrite=True
    )
    assert pr == ProcessSpec(
        "pr",
        ("nginx", "-g"),
        param_match="partial",
        quorum=2,
        quorum_max=4,
        fork_delay=1.5,
        terminate_delay=1.5,
        weight=10,
    )


def test_core_rejects_a_malformed_model() -> None:
    from checkd.errors import PlanError

    with pytest.raises(PlanError, match="config model rejected"):
        normalize({"vrrp_scripts": [{"name": "x", "interval": "soon"}]})
