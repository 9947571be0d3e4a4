"""The ``Global definitions`` section of keepalived_check.data (checkd.dump_globals).

The expected texts are what Debian's keepalived 2.2.7 wrote for the same ``global_defs``,
captured on SIGUSR1 in a network namespace (keepalived's checker process does not start on a
kernel without IPVS, so from its parent, ``keepalived_parent.data``, and its VRRP process,
``keepalived.data``, which print the same function's lines). Where the processes differ, the
checker's is what keepalived's source gives it: no ``Default interface`` (VRRP's only), no
start-up or shutdown script (the parent's), the GARP lower-priority values left unset (the
VRRP process fills them in), and the global and LVS notify FIFOs' scripts as the checker runs
them (resolved path, FIFO name appended) where the VRRP process shows its own and the global.
The last test runs the installed keepalived and compares its parent's and VRRP process's
sections with ours for those processes.
"""

from __future__ import annotations

import os
import pwd
import signal
from dataclasses import replace
from pathlib import Path

import pytest

import core
from checkd.dump_globals import Process, global_section
from checkd.dumps import data_text
from checkd.lvs_service import dump_context
from tests.lab import Lab, wait_until


def root_ids(user: str | None, group: str | None) -> tuple[int, int]:
    return (0, 0)


def section(text: str) -> str:
    config = core.loads(text, script_env=None).config
    g = config.global_defs
    assert g.router_id is not None
    lines = global_section(
        g, router_id=g.router_id, hostname="lb1.example.test", ids=root_ids, script_user=None
    )
    return "\n".join(lines) + "\n"


# keepalived_parent.data for ``global_defs { router_id lb1 }``
DEFAULTS = """\
------< Global definitions >------
 Network namespace = (default)
 Network namespace ipvs = (main namespace)
 Router ID = lb1
 Default smtp_alert = unset
 Default smtp_alert_vrrp = unset
 Default smtp_alert_checker = unset
 Checkers log all failures = false
 No test config before reload
 Dynamic interfaces = false
 Disable local IGMP = no
 LVS flush = false
 LVS flush on stop = disabled
 FIFO write vrrp states on reload = false
 VRRP notify priority changes = false
 VRRP IPv4 mcast group = 224.0.0.18
 VRRP IPv6 mcast group = ff02::12
 Gratuitous ARP delay = 5
 Gratuitous ARP repeat = 5
 Gratuitous ARP refresh timer = 0
 Gratuitous ARP refresh repeat = 1
 Gratuitous ARP lower priority delay = 4294967295
 Gratuitous ARP lower priority repeat = 4294967295
 Num adverts before down = 3
 Gratuitous ARP for each secondary VMAC = 0s
 Send advert after receive lower priority advert = true
 Send advert after receive higher priority advert = false
 Gratuitous ARP interval = 0.000000
 Gratuitous NA interval = 0.000000
 VRRP default protocol version = 2
 nftables without counters
 libnftnl version 1.2.3
 VRRP check unicast_src = false
 VRRP skip check advert addresses = false
 VRRP strict mode = false
 Max auto priority = 0
 Min auto priority delay = 1000000 usecs
 VRRP process priority = 0
 VRRP don't swap = false
 VRRP realtime priority = 0
 VRRP realtime limit = 10000
 Checker process priority = 0
 Checker don't swap = false
 Checker realtime priority = 0
 Checker realtime limit = 10000
 BFD process priority = 0
 BFD don't swap = false
 BFD realtime priority = 0
 BFD realtime limit = 10000
 SNMP vrrp disabled
 SNMP checker disabled
 SNMP RFCv2 disabled
 SNMP RFCv3 disabled
 SNMP traps disabled
 SNMP socket = default (unix:/var/agentx/master)
 DBus disabled
 DBus service name =\x20
 Script security disabled
 Default script uid:gid 0:0
 vrrp_netlink_cmd_rcv_bufs = 0
 vrrp_netlink_cmd_rcv_bufs_force = 0
 vrrp_netlink_monitor_rcv_bufs = 0
 vrrp_netlink_monitor_rcv_bufs_force = 0
 process_monitor_rcv_bufs = 0
 process_monitor_rcv_bufs_force = 0
 lvs_netlink_cmd_rcv_bufs = 0
 lvs_netlink_cmd_rcv_bufs_force = 0
 lvs_netlink_monitor_rcv_bufs = 0
 lvs_netlink_monitor_rcv_bufs_force = 0
 rs_init_notifies = 0
 no_checker_emails = 0
 rx_bufs_multiples = 3
 umask = 0177
"""


DEFAULT_GLOBALS = "global_defs {\n    router_id lb1\n}\n"


def test_defaults_are_keepalived_227s() -> None:
    assert section(DEFAULT_GLOBALS) == DEFAULTS


EVERY_SETTING = """
global_defs {
    router_id lb-rich
    notification_email {
        ops@example.test
        oncall@example.test
    }
    notification_email_from lb@example.test
    smtp_server 192.0.2.25 2525
    smtp_helo_name lb.example.test
    smtp_connect_timeout 20
    smtp_alert true
    smtp_alert_checker false
    checker_log_all_failures
    startup_script "/bin/true start now"
    startup_script_timeout 15
    shutdown_script /bin/true
    shutdown_script_timeout 4
    dynamic_interfaces allow_if_changes
    no_email_faults
    lvs_flush
    lvs_flush_onstop VS
    notify_fifo /run/pk-test/global.fifo
    notify_fifo_script "/bin/true fifo"
    vrrp_notify_fifo /run/pk-test/vrrp.fifo
    vrrp_notify_fifo_script "/bin/echo v"
    lvs_notify_fifo /run/pk-test/lvs.fifo
    lvs_notify_fifo_script "/bin/echo l"
    vrrp_garp_master_delay 3
    vrrp_garp_master_repeat 2
    vrrp_garp_master_refresh 60
    vrrp_garp_master_refresh_repeat 2
    vrrp_garp_lower_prio_delay 7
    vrrp_garp_lower_prio_repeat 1
    vrrp_garp_interval 0.01
    vrrp_gna_interval 0.02
    vrrp_garp_extra_if all 5
    vrrp_version 3
    vrrp_check_unicast_src
    vrrp_higher_prio_send_advert
    vrrp_lower_prio_no_advert
    vrrp_startup_delay 1.5
    log_unknown_vrids
    vrrp_priority -5
    checker_priority 3
    checker_no_swap
    vrrp_rx_bufs_policy MTU
    vrrp_rx_bufs_multiplier 4
    rs_init_notifies
    no_checker_emails
    max_auto_priority 10
    min_auto_priority_delay 2000
    disable_local_igmp
    vrrp_netlink_cmd_rcv_bufs 1048576
    lvs_netlink_monitor_rcv_bufs 524288
    lvs_netlink_monitor_rcv_bufs_force
    umask 0022
}
"""

# keepalived.data's section for EVERY_SETTING, as the checker process has it (see above)
EVERY_SETTING_DUMP = """\
------< Global definitions >------
 Network namespace = (default)
 Network namespace ipvs = (main namespace)
 Router ID = lb-rich
 Smtp server = 192.0.2.25
 Smtp server port = 2525
 Smtp HELO name = lb.example.test
 Smtp server connection timeout = 20
 Email notification from = lb@example.test
 Email notification to:
   ops@example.test
   oncall@example.test
 Default smtp_alert = on
 Default smtp_alert_vrrp = unset
 Default smtp_alert_checker = off
 Checkers log all failures = true
 No test config before reload
 Dynamic interfaces = true
 Allow interface changes = true
 Send emails for fault transitions = off
 Disable local IGMP = yes
 LVS flush = true
 LVS flush on stop = VS
 Global notify fifo = /run/pk-test/global.fifo, uid:gid 0:0
 Global notify fifo script = '{true}' 'fifo' '/run/pk-test/global.fifo', uid:gid 0:0
 VRRP notify fifo = /run/pk-test/vrrp.fifo, uid:gid 0:0
 VRRP notify fifo script = '/bin/echo' 'v', uid:gid 0:0
 LVS notify fifo = /run/pk-test/lvs.fifo, uid:gid 0:0
 LVS notify fifo script = '{echo}' 'l' '/run/pk-test/lvs.fifo', uid:gid 0:0
 FIFO write vrrp states on reload = false
 VRRP notify priority changes = false
 VRRP IPv4 mcast group = 224.0.0.18
 VRRP IPv6 mcast group = ff02::12
 Gratuitous ARP delay = 3
 Gratuitous ARP repeat = 2
 Gratuitous ARP refresh timer = 60
 Gratuitous ARP refresh repeat = 2
 Gratuitous ARP lower priority delay = 7
 Gratuitous ARP lower priority repeat = 1
 Num adverts before down = 3
 Gratuitous ARP for each secondary i/f = 5s
 Send advert after receive lower priority advert = false
 Send advert after receive higher priority advert = true
 Gratuitous ARP interval = 0.010000
 Gratuitous NA interval = 0.020000
 VRRP default protocol version = 3
 nftables without counters
 libnftnl version 1.2.3
 VRRP check unicast_src = true
 VRRP skip check advert addresses = false
 VRRP strict mode = false
 Max auto priority = 10
 Min auto priority delay = 2000 usecs
 VRRP process priority = -5
 VRRP don't swap = false
 VRRP realtime priority = 0
 VRRP realtime limit = 10000
 Checker process priority = 3
 Checker don't swap = true
 Checker realtime priority = 0
 Checker realtime limit = 10000
 BFD process priority = 0
 BFD don't swap = false
 BFD realtime priority = 0
 BFD realtime limit = 10000
 SNMP vrrp disabled
 SNMP checker disabled
 SNMP RFCv2 disabled
 SNMP RFCv3 disabled
 SNMP traps disabled
 SNMP socket = default (unix:/var/agentx/master)
 DBus disabled
 DBus service name =\x20
 Script security disabled
 Default script uid:gid 0:0
 vrrp_netlink_cmd_rcv_bufs = 1048576
 vrrp_netlink_cmd_rcv_bufs_force = 0
 vrrp_netlink_monitor_rcv_bufs = 0
 vrrp_netlink_monitor_rcv_bufs_force = 0
 process_monitor_rcv_bufs = 0
 process_monitor_rcv_bufs_force = 0
 lvs_netlink_cmd_rcv_bufs = 0
 lvs_netlink_cmd_rcv_bufs_force = 0
 lvs_netlink_monitor_rcv_bufs = 524288
 lvs_netlink_monitor_rcv_bufs_force = 1
 rs_init_notifies = 1
 no_checker_emails = 1
 rx_bufs_policy = MTU
 rx_bufs_multiples = 4
 umask = 022
 vrrp_startup_delay = 1.5
 log_unknown_vrids
"""


def test_every_setting_as_keepalived_prints_it() -> None:
    expected = EVERY_SETTING_DUMP.format(
        true=os.path.realpath("/bin/true"), echo=os.path.realpath("/bin/echo")
    )
    assert section(EVERY_SETTING) == expected


def test_smtp_defaults_come_from_the_host_name() -> None:
    text = section(
        "global_defs {\n    router_id lb1\n    smtp_server 192.0.2.25\n"
        "    notification_email {\n        ops@example.test\n    }\n}\n"
    )
    user = pwd.getpwuid(os.getuid()).pw_name
    assert (
        " Smtp server = 192.0.2.25\n Smtp server port = 25\n"
        " Smtp HELO name = lb1.example.test\n Smtp server connection timeout = 30\n"
        f" Email notification from = {user}@lb1.example.test\n"
        " Email notification to:\n   ops@example.test\n"
    ) in text


def test_the_daemons_dump_opens_with_the_whole_section() -> None:
    config = core.loads(EVERY_SETTING, script_env=None).config
    ctx = replace(dump_context(config, "lb-rich", {}), ids=root_ids)
    text = data_text([], ctx)
    assert text.startswith("------< Global definitions >------\n Network namespace = (default)\n")
    assert " LVS flush on stop = VS\n" in text and text.endswith(" log_unknown_vrids\n")


# --- against a running keepalived ------------------------------------------------------------

KEEPALIVED = Path("/usr/sbin/keepalived")
INSTANCE = """
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


@pytest.mark.netns
@pytest.mark.skipif(not KEEPALIVED.exists(), reason=f"{KEEPALIVED} is not installed")
@pytest.mark.parametrize("config", [DEFAULT_GLOBALS, EVERY_SETTING], ids=["defaults", "every"])
def test_what_a_running_keepalived_writes(lab: Lab, tmp_path: Path, config: str) -> None:
    """keepalived 2.2.7 in a namespace, SIGUSR1: its parent's and its VRRP process's sections
    are ours for those processes, line for line (the checker's differs from them only as the
    module says; keepalived's checker process does not run without IPVS)."""
    text = config.replace("/run/pk-test/", f"{tmp_path}/") + INSTANCE
    (tmp_path / "keepalived.conf").write_text(text)
    log = (tmp_path / "keepalived.log").open("wb")
    pids = [f"-{flag}{tmp_path / name}" for flag, name in (("p", "k.pid"), ("r", "v.pid"))]
    argv = [str(KEEPALIVED), "-n", "-l", "-D", "-f", str(tmp_path / "keepalived.conf"), *pids]
    argv += [f"-c{tmp_path / 'c.pid'}"]
    node = lab.node(0)
    proc = node.popen(["env", f"TMPDIR={tmp_path}", *argv], stdout=log, stderr=log)
    try:
        wait_until((tmp_path / "v.pid").exists, 10, message="keepalived's VRRP process")
        files = [tmp_path / "keepalived_parent.data", tmp_path / "keepalived.data"]

        def dumped() -> bool:
            pid = int((tmp_path / "k.pid").read_text())
            os.kill(pid, signal.SIGUSR1)  # the parent passes it on to its children
            return all(f.exists() and "Global definitions" in f.read_text() for f in files)

        wait_until(dumped, 10, interval=0.2, message="keepalived's dump files")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    parent, vrrp = (f.read_text() for f in files)
    g = core.loads(text, script_env=None).config.global_defs
    assert g.router_id is not None

    def ours(process: Process) -> str:
        return "\n".join(
            global_section(
                g,
                router_id=g.router_id or "",
                hostname="unused",
                ids=root_ids,
                script_user=None,
                process=process,
            )
        )

    assert parent.rstrip("\n") == ours("parent")
    assert vrrp.split("\n------< VRRP Topology >------")[0].split("\n------< ")[0] == ours("vrrp")
