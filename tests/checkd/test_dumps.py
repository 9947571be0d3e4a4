"""keepalived_check.data: keepalived 2.2.7's SIGUSR1 layout with checkd's live state in it.

The expected texts were written from keepalived's own dump functions (``dump_vs``,
``dump_rs``, ``dump_checker``, ``dump_connection_opts`` and each checker's ``dump_*_check``),
line by line, with the values this configuration gives there (an HTTP_GET that failed keeps
its retry counter past ``retry`` and names its failed url, as keepalived's ``epilog`` leaves
them).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import core
from checkd.checkplan import CheckPlan, build_plan
from checkd.dumps import DumpContext, Kept, PoolDump, data_text, kept_by_reload
from checkd.lvs_service import dump_context
from checkd.pool import apply_event, reload_pool, start_pool
from checkd.pool_messages import ProbeResult
from checkd.pool_state import PoolState
from checkd.pool_topics import LastResult
from tests.daemon import python_module, running_bus, runtime_dir, stop
from tests.lab import wait_until

TWO_SERVERS = """
global_defs {
    router_id lb1
}
virtual_server 192.0.2.10 80 {
    delay_loop 10
    lvs_sched rr
    protocol TCP
    quorum 2
    hysteresis 1
    sorry_server 203.0.113.9 8080
    real_server 198.51.100.1 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 198.51.100.2 80 {
        inhibit_on_failure
        notify_down "/usr/local/bin/rs-down web2"
        HTTP_GET {
            url {
                path /health
                status_code 200 301-302
            }
            retry 2
            delay_before_retry 2
        }
    }
}
"""

EXPECTED = """\
------< Global definitions >------
 Router ID = lb1
------< LVS Topology >------
 System is compiled with LVS v1.2.1
 ------< Virtual server >------
 VS VIP = 192.0.2.10, VPORT = 80
   Address family = inet
   connection timeout = 5.000000
   delay_loop = 10.000000
   lvs_sched = rr
   Hashed = disabled
   flag-1 = disabled
   flag-2 = disabled
   flag-3 = disabled
   One packet scheduling = disabled
   protocol = TCP
   alpha is OFF
   omega is OFF
   Inhibit on failure is OFF
   quorum = 2, hysteresis = 1
   Using smtp notification = no
   default forwarding method = NAT
   sorry server = [203.0.113.9]:tcp:8080
     forwarding method = NAT
     Inhibit on failure is OFF
   alive = 0
   quorum_state_up = 1
   reloaded = 0
   ------< Real server >------
   RIP = 198.51.100.1, RPORT = 80, WEIGHT = 2 EFF WEIGHT = 2
   forwarding method = NAT
   Alpha is OFF
   connection timeout = 5.000000
   connection limit range = 0 -> 0
   Delay loop = 10.000000
   Inhibit on failure is OFF
   Using smtp notification = yes
   initial weight = 2
   effective weight = 2
   previous effective_weight = 0
   alive = 1
   num failed checkers = 0
   RS set = 1
   reloaded = 0
   ------< Real server >------
   RIP = 198.51.100.2, RPORT = 80, WEIGHT = 1 EFF WEIGHT = 1
   forwarding method = NAT
   Alpha is OFF
   connection timeout = 5.000000
   connection limit range = 0 -> 0
   Delay loop = 10.000000
   Inhibit on failure is ON
     RS down notify script = '/usr/local/bin/rs-down' 'web2', uid:gid 0:0
   Using smtp notification = yes
   initial weight = 1
   effective weight = 1
   previous effective_weight = 0
   alive = 0
   num failed checkers = 1
   RS set = 1
   reloaded = 0
------< Health checkers >------
 [192.0.2.10]:tcp:80 -> [198.51.100.1]:tcp:80
   Enabled = yes
   Up = yes
   Has run = yes
   Current weight = 0
   Alpha = no
   Delay loop = 10000000 us
   Warmup = 10000000 us
   Retries = 1
   Delay before retry = 1000000 us
   Retries iterations = 0
   Default delay before retry = 1000000 us
   Log all failures = no
   Connection
     Dest = [198.51.100.1]:80
     Timeout = 3.000000
   Keepalive method = TCP_CHECK
 [192.0.2.10]:tcp:80 -> [198.51.100.2]:tcp:80
   Enabled = yes
   Up = no
   Has run = yes
   Current weight = 0
   Alpha = no
   Delay loop = 10000000 us
   Warmup = 10000000 us
   Retries = 2
   Delay before retry = 2000000 us
   Retries iterations = 3
   Default delay before retry = 3000000 us
   Log all failures = no
   Connection
     Dest = [198.51.100.2]:80
     Timeout = 5.000000
   Keepalive method = HTTP_GET, http protocol 1.0
   Enable SNI unset
   Fast recovery unset
   Checked url = /health
     HTTP Status Code(s)
       200
       301-302
   Failed URL = /health
"""


def plan_of(text: str) -> CheckPlan:
    return build_plan(core.loads(text, script_env=None).config, hostname="unused")


def root_ids(user: str | None, group: str | None) -> tuple[int, int]:
    return (0, 0) if user is None else (1000, 1001)


def probed(state: PoolState, *results: bool) -> PoolState:
    """Each real server's first checker reports one result, in order."""
    for member, ok in zip(state.members, results, strict=True):
        state = apply_event(state, ProbeResult(member.rs.checkers[0].id, ok)).state
    return state


def test_two_real_servers_one_down_and_a_sorry_server() -> None:
    plan = plan_of(TWO_SERVERS)
    state = probed(start_pool(plan.virtual_servers[0], router_id=plan.router_id).state, True, False)
    text = data_text([PoolDump(state)], DumpContext(ids=root_ids, router_id=plan.router_id))
    assert text == EXPECTED


def test_a_reload_marks_what_it_kept_with_the_weights_before_it() -> None:
    plan = plan_of(TWO_SERVERS)
    before = probed(start_pool(plan.virtual_servers[0], router_id="lb1").state, True, False)
    again = plan_of(TWO_SERVERS.replace("weight 2", "weight 5"))
    after = reload_pool(before, again.virtual_servers[0], router_id="lb1").state
    kept = kept_by_reload({before.vs.id: before}, {after.vs.id: after})
    assert kept == Kept(
        frozenset({"[192.0.2.10]:tcp:80"}),
        {
            "[192.0.2.10]:tcp:80 [198.51.100.1]:tcp:80": 2,
            "[192.0.2.10]:tcp:80 [198.51.100.2]:tcp:80": 1,
        },
    )
    text = data_text([PoolDump(after, suspended=True, kept=kept)], DumpContext(ids=root_ids))
    rs1 = text[text.index("RIP = 198.51.100.1") : text.index("RIP = 198.51.100.2")]
    assert "   quorum_state_up = 1\n   reloaded = 1\n" in text
    assert "EFF WEIGHT = 5\n" in rs1 and "   previous effective_weight = 2\n" in rs1
    assert "   reloaded = 1\n" in rs1
    assert text.count("   Enabled = no\n") == 2  # ha_suspend holds both checkers
    assert not text.startswith("------< Global definitions >------")


OTHER_KINDS = """
global_defs {
    script_user nobody
}
track_file flag {
    file /run/flag
    weight 3
}
virtual_server fwmark 7 {
    delay_loop 4
    lvs_sched sh
    sh-port
    ha_suspend
    retry 4
    real_server 2001:db8::5 53 {
        weight 0
        SMTP_CHECK {
            connect_port 25
            bindto 2001:db8::1
            fwmark 9
        }
        DNS_CHECK {
            type a
            name example.org
        }
        UDP_CHECK {
            payload 0a0b
            require_reply 0a0x
        }
        MISC_CHECK {
            misc_path "/bin/check web"
            misc_timeout 3
            misc_dynamic
        }
        FILE_CHECK {
            track_file flag
        }
    }
}
"""


def test_each_kind_of_checker_with_its_own_lines() -> None:
    config = core.loads(OTHER_KINDS, script_env=None).config
    plan = build_plan(config, hostname="unused")
    state = start_pool(plan.virtual_servers[0], router_id="lb1").state
    misc = state.members[0].rs.checkers[3].id
    last = {misc: LastResult(False, "exited with status 3", 1_700_000_000.25, 3)}
    # the daemon's context (script_user, track files), with user ids the test chooses
    ctx = replace(dump_context(config, "lb1", last), ids=root_ids)
    text = data_text([PoolDump(state)], ctx)
    assert "\n VS FWMARK = 7\n   Address family = inet6\n" in text
    assert "   lvs_sched = sh\n   Hashed = disabled\n   sh-port = enabled\n" in text
    assert "   sh-fallback = disabled\n   One packet scheduling = disabled\n" in text
    assert "   protocol = none\n" in text and "   Retry count = 4\n" in text
    assert "HA suspend" not in text  # keepalived clears it on a fwmark service
    assert "   RIP = 2001:db8::5, RPORT = 53, WEIGHT = 0 EFF WEIGHT = 0\n" in text
    assert "   Retry count = 4\n   Inhibit on failure is OFF\n" in text  # the RS inherits it
    assert "   Tracked Files\n     flag, weight 3\n" in text
    checkers = text[text.index("------< Health checkers >------") :]
    assert checkers.count(" FWM 7 -> [2001:db8::5]:none:53\n") == 5
    assert (
        "   Connection\n     Dest = [2001:db8::5]:25\n     Bind to = [2001:db8::1]:0\n"
        "     Mark = 9\n     Timeout = 5.000000\n   Keepalive method = SMTP_CHECK\n"
        "   helo = smtpchecker.keepalived.org\n"
    ) in checkers
    assert "   Keepalive method = DNS_CHECK\n   Type = A\n   Name = example.org\n" in checkers
    assert "   Retries = 4\n" in checkers  # DNS's own default (3) gives way to the VS's retry
    assert (
        "   Keepalive method = UDP_CHECK\n   Payload len = 2\n   Require reply = yes\n"
        "     Min reply length = 0\n     Max reply length = 255\n     Reply data len = 2\n"
        "     Reply data mask = yes\n"
    ) in checkers
    ran = time.ctime(1_700_000_000)
    assert (
        "   Log all failures = no\n   Keepalive method = MISC_CHECK\n"
        "   script = '/bin/check' 'web'\n   timeout = 3\n   dynamic = YES\n"
        f"   uid:gid = 1000:1001\n   Last ran = 1700000000.250000 ({ran}.250000)\n"
        "   Last status = 3\n"
    ) in checkers
    file_check = checkers[checkers.rindex(" FWM 7 ->") :]
    assert file_check == (
        " FWM 7 -> [2001:db8::5]:none:53\n   Enabled = yes\n   Up = yes\n   Has run = no\n"
        "   Current weight = 0\n   Log all failures = no\n   Keepalive method = FILE_CHECK\n"
        "     Tracked file = flag\n     Reloaded = No\n"
    )


# --- the daemon ------------------------------------------------------------------------------

DAEMON_CONF = """
virtual_server 192.0.2.10 80 {{
    delay_loop 1
    protocol TCP
    real_server 127.0.0.1 {up} {{
        TCP_CHECK {{
            warmup 0
        }}
    }}
    real_server 127.0.0.1 {down} {{
        TCP_CHECK {{
            warmup 0
        }}
    }}
}}
"""


@contextmanager
def listening() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_sigusr1_writes_keepalived_check_data(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    with listening() as up, runtime_dir() as rt, running_bus(rt):
        conf = tmp_path / "keepalived.conf"
        conf.write_text(DAEMON_CONF.format(up=up, down=closed_port()))
        args = ("--runtime-dir", str(rt.path))
        logs = tmp_path / "procs.log"
        with logs.open("wb") as out:
            kw: dict[str, Any] = {"stdout": out, "stderr": subprocess.STDOUT}
            checkd = python_module("checkd", *args, env={"TMPDIR": str(dumps)}, **kw)
            core_proc = python_module("core", "-f", str(conf), *args, **kw)
            dump = dumps / "keepalived_check.data"

            def judged() -> bool:
                # ask again until the checkers have run: each signal rewrites the file
                checkd.send_signal(signal.SIGUSR1)
                text = dump.read_text() if dump.exists() else ""
                return "Has run = no" not in text and "num failed checkers = 1" in text

            try:
                # before its handler is installed, USR1 would end checkd as it ends any process
                applied = "checkd.lvs.applied"
                wait_until(lambda: applied in logs.read_text(), 20, message="the virtual server")
                wait_until(judged, 20, interval=0.2, message="a dump with both checkers run")
            finally:
                codes = stop(core_proc), stop(checkd)
        assert codes == (0, 0), logs.read_text()
    text = dump.read_text()
    assert " VS VIP = 192.0.2.10, VPORT = 80\n" in text
    assert f"   RIP = 127.0.0.1, RPORT = {up}, WEIGHT = 1 EFF WEIGHT = 1\n" in text
    first, second = text.split("   ------< Real server >------\n")[1:]
    assert "   alive = 1\n   num failed checkers = 0\n" in first
    assert "   alive = 0\n   num failed checkers = 1\n" in second
    assert dump.stat().st_mode & 0o777 == 0o600
    assert "checkd.dump.written" in logs.read_text()


def test_a_virtual_server_group_lists_its_entries_ranges_first() -> None:
    plan = plan_of(
        "virtual_server_group web {\n  fwmark 9\n  192.0.2.1-3 80\n  2001:db8::10 443\n}\n"
        "virtual_server group web {\n  protocol TCP\n  real_server 198.51.100.1 80 {\n  }\n}\n"
    )
    state = start_pool(plan.virtual_servers[0], router_id="lb1").state
    text = data_text([PoolDump(state)], DumpContext(ids=root_ids))
    assert text.startswith(
        "------< LVS Topology >------\n"
        " System is compiled with LVS v1.2.1\n"
        " ------< Virtual server group >------\n"
        " Virtual Server Group = web, IPv4 = yes, IPv6 = yes\n"
        "   VIP Range = 192.0.2.1-192.0.2.3, VPORT = 80\n"
        "     Alive: 1 tcp, 0 udp, 0 sctp\n"
        "     reloaded = False\n"
        "   VIP = 2001:db8::10, VPORT = 443\n"
        "     Alive: 1 tcp, 0 udp, 0 sctp\n"
        "     reloaded = False\n"
        "   FWMARK = 9\n"
        "     Alive: 1 IPv4, 0 IPv6\n"
        "     reloaded = False\n"
        " ------< Virtual server >------\n"
        " VS GROUP = [web]:0\n"
        "   Address family = inet\n"  # from its real server, as keepalived takes it
    )
