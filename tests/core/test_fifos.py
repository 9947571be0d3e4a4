"""Which notify FIFOs vrrpd and checkd open, with which readers (core.fifos; docs/operations.md,
"Notify FIFOs"): keepalived's checker rules, and one reader per path in the daemon."""

from __future__ import annotations

import pytest

from core import Config, ScriptEnv, checker_fifos, loads, vrrp_fifos
from tests.core.conftest import no_scripts_env

VS = """
virtual_server 192.0.2.10 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    real_server 198.51.100.1 80 {
    }
}
"""


def _config(global_defs: str, *, vs: bool = True) -> Config:
    text = f"global_defs {{\n{global_defs}\n}}\n" + (VS if vs else "")
    return loads(text, script_env=None).config


Opened = tuple[tuple[str, str, str | None], ...]


def _checker(config: Config, *, with_vrrpd: bool) -> Opened:
    return tuple(
        (s.keyword, s.path, s.reader.command if s.reader is not None else None)
        for s in checker_fifos(config, with_vrrpd=with_vrrpd)
    )


G = "notify_fifo /run/g.fifo\nnotify_fifo_script /bin/g"
L = "lvs_notify_fifo /run/l.fifo\nlvs_notify_fifo_script /bin/l"
V = "vrrp_notify_fifo /run/v.fifo\nvrrp_notify_fifo_script /bin/v"

# (global_defs, with vrrpd, without vrrpd (-C)): what checkd opens, each as (keyword, path,
# the reader it starts)
CASES: list[tuple[str, Opened, Opened]] = [
    ("", (), ()),
    # vrrpd opens the global FIFO (no vrrp_notify_fifo) and starts its reader: not twice.
    (G, (("notify_fifo", "/run/g.fifo", None),), (("notify_fifo", "/run/g.fifo", "/bin/g"),)),
    (
        L,
        (("lvs_notify_fifo", "/run/l.fifo", "/bin/l"),),
        (("lvs_notify_fifo", "/run/l.fifo", "/bin/l"),),
    ),
    # keepalived's checker opens both, global first; every line goes to each.
    (
        f"{G}\n{L}",
        (("notify_fifo", "/run/g.fifo", None), ("lvs_notify_fifo", "/run/l.fifo", "/bin/l")),
        (("notify_fifo", "/run/g.fifo", "/bin/g"), ("lvs_notify_fifo", "/run/l.fifo", "/bin/l")),
    ),
    # The LVS FIFO at the global FIFO's path is dropped, its script with it.
    (
        f"{G}\nlvs_notify_fifo /run/g.fifo\nlvs_notify_fifo_script /bin/l",
        (("notify_fifo", "/run/g.fifo", None),),
        (("notify_fifo", "/run/g.fifo", "/bin/g"),),
    ),
    # vrrpd opens the global FIFO beside vrrp_notify_fifo (keepalived's VRRP process opens
    # both) and starts the global reader.
    (
        f"{G}\n{V}",
        (("notify_fifo", "/run/g.fifo", None),),
        (("notify_fifo", "/run/g.fifo", "/bin/g"),),
    ),
    # LVS and VRRP FIFO the same, both with scripts: keepalived runs the VRRP one only.
    (
        f"{V}\nlvs_notify_fifo /run/v.fifo\nlvs_notify_fifo_script /bin/l",
        (("lvs_notify_fifo", "/run/v.fifo", None),),
        (("lvs_notify_fifo", "/run/v.fifo", "/bin/l"),),
    ),
    # ... but the LVS script runs when the VRRP FIFO has none.
    (
        "vrrp_notify_fifo /run/v.fifo\nlvs_notify_fifo /run/v.fifo\nlvs_notify_fifo_script /bin/l",
        (("lvs_notify_fifo", "/run/v.fifo", "/bin/l"),),
        (("lvs_notify_fifo", "/run/v.fifo", "/bin/l"),),
    ),
    # A FIFO without a script is opened all the same.
    (
        "notify_fifo /run/g.fifo\nlvs_notify_fifo /run/l.fifo",
        (("notify_fifo", "/run/g.fifo", None), ("lvs_notify_fifo", "/run/l.fifo", None)),
        (("notify_fifo", "/run/g.fifo", None), ("lvs_notify_fifo", "/run/l.fifo", None)),
    ),
]


@pytest.mark.parametrize(("global_defs", "with_vrrpd", "without_vrrpd"), CASES)
def test_checker_opens_the_global_and_lvs_fifos_with_one_reader_per_path(
    global_defs: str, with_vrrpd: Opened, without_vrrpd: Opened
) -> None:
    config = _config(global_defs)
    assert _checker(config, with_vrrpd=True) == with_vrrpd
    assert _checker(config, with_vrrpd=False) == without_vrrpd


def test_checker_opens_no_fifo_without_a_virtual_server() -> None:
    # keepalived runs no checker process then; checkd may run for vrrp_scripts alone.
    assert checker_fifos(_config(f"{G}\n{L}", vs=False), with_vrrpd=False) == ()


@pytest.mark.parametrize(
    ("global_defs", "expected"),
    [
        ("", ()),
        (G, (("notify_fifo", "/run/g.fifo", "/bin/g"),)),
        # both, global first, each with its own reader; every line goes to each
        (
            f"{G}\n{V}",
            (
                ("notify_fifo", "/run/g.fifo", "/bin/g"),
                ("vrrp_notify_fifo", "/run/v.fifo", "/bin/v"),
            ),
        ),
        (f"{G}\n{L}", (("notify_fifo", "/run/g.fifo", "/bin/g"),)),
        (
            "notify_fifo_script /bin/g\nvrrp_notify_fifo /run/v.fifo",
            (("vrrp_notify_fifo", "/run/v.fifo", None),),
        ),
        # a VRRP FIFO at the global path is dropped, script and all
        (
            f"{G}\nvrrp_notify_fifo /run/g.fifo\nvrrp_notify_fifo_script /bin/v",
            (("notify_fifo", "/run/g.fifo", "/bin/g"),),
        ),
    ],
)
def test_vrrpd_opens_the_global_and_vrrp_fifos_as_keepalived_s_vrrp_process(
    global_defs: str, expected: Opened
) -> None:
    got = tuple(
        (s.keyword, s.path, s.reader.command if s.reader is not None else None)
        for s in vrrp_fifos(_config(global_defs, vs=False))
    )
    assert got == expected


@pytest.mark.parametrize(
    ("global_defs", "owner"),
    [
        ("lvs_notify_fifo /run/l.fifo", (None, None, "script")),
        ("lvs_notify_fifo /run/l.fifo nobody nogroup", ("nobody", "nogroup", "script")),
        ("script_user nobody\nlvs_notify_fifo /run/l.fifo", ("nobody", None, "script_user")),
        ("script_user nobody\nlvs_notify_fifo /run/l.fifo daemon", ("daemon", None, "script")),
    ],
)
def test_a_fifo_belongs_to_its_own_user_else_script_user(
    global_defs: str, owner: tuple[str | None, str | None, str]
) -> None:
    # keepalived gives a FIFO it creates to the FIFO's user, else the default script user.
    (setup,) = checker_fifos(_config(global_defs))
    assert (setup.user, setup.group, setup.user_source) == owner


def test_config_test_reports_lvs_notify_fifo_script_as_implemented() -> None:
    r = loads(f"global_defs {{\n{G}\n{L}\n}}\n{VS}", script_env=no_scripts_env({"/bin/l"}))
    assert not [p for p in r.problems if p.severity == "not-implemented"], r.problems


def test_config_test_checks_lvs_notify_fifo_script_security() -> None:
    # As for the other FIFO scripts: an insecure reader run as root, and one whose user does
    # not exist, are reported where they are configured (and not run).
    env = ScriptEnv(
        lambda c: c if c == "/opt/l" else None,
        lambda u: u == "root",
        lambda path: "/opt is world-writable",
    )
    head = (
        "global_defs {\n enable_script_security\n script_user root\n lvs_notify_fifo /run/l.fifo\n"
    )
    for script, code in (
        ("/opt/l", "script-insecure"),
        ("/opt/l nosuchuser", "script-user-missing"),
    ):
        r = loads(f"{head} lvs_notify_fifo_script {script}\n}}\n{VS}", script_env=env)
        assert [(p.code, p.line) for p in r.problems] == [(code, 5)]
