from collections.abc import Callable
from typing import Any

import pytest

import core
from core.scriptcheck import ScriptEnv

MINIMAL = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.1/24
    }
}
"""


def no_scripts_env(existing: set[str] | None = None, users: set[str] | None = None) -> ScriptEnv:
    found = existing or set()
    known_users = users or set()
    return ScriptEnv(lambda cmd: cmd if cmd in found else None, lambda u: u in known_users)


@pytest.fixture
def parse() -> Callable[..., core.LoadResult]:
    def _parse(text: str, **kw: Any) -> core.LoadResult:
        kw.setdefault("config_id", "node1")
        kw.setdefault("script_env", no_scripts_env())
        return core.loads(text, **kw)

    return _parse
