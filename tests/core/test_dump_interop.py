"""Our model and resolved settings equal what keepalived 2.2.7 itself parsed (its `-d` dump).

keepalived runs for real (`-n -l -d -P`) inside a throw-away namespace whose interfaces have no
IPv4 address, so every instance stays in FAULT: nothing is advertised and no VIP is installed.
Only documentation addresses are used. We read the "VRRP Topology" dump and stop it at once.
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import core
from core.checks import tracker_weight
from tests.core.test_samples_interop import KEEPALIVED

pytestmark = [
    pytest.mark.netns,
    pytest.mark.interop,
    pytest.mark.skipif(not os.path.exists(KEEPALIVED), reason="keepalived not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

CONFIG_ID = "pkcfgtest"
IFACES = ("eth0", "eth1", "eth2", "eth3")

# A case is the main file's text, or {relative path: text} with "keepalived.conf" the main file.
CASES: dict[str, str | dict[str, str]] = {
    "includes": {
        "keepalived.conf": "$IF=eth0\ninclude conf.d/*.conf\ninclude vips/{b,a}.inc\n",
        "conf.d/20-vi2.conf": "vrrp_instance VI_2 {\n interface eth1\n virtual_router_id 97\n"
        " virtual_ipaddress {\n  include ../vips/c.inc\n }\n}\n",
        "conf.d/10-vi1.conf": "vrrp_instance VI_1 {\n interface $IF\n virtual_router_id 96\n"
        " virtual_ipaddress {\n  192.0.2.96\n }\n}\n",
        "vips/a.inc": "vrrp_instance VI_3 {\n interface eth2\n virtual_router_id 98\n"
        " virtual_ipaddress {\n  192.0.2.98\n }\n}\n",
        "vips/b.inc": "vrrp_instance VI_4 {\n interface eth3\n virtual_router_id 99\n"
        " virtual_ipaddress {\n  192.0.2.99\n }\n}\n",
        "vips/c.inc": "192.0.2.97\n198.51.100.97/25\n",
    },
    "inheritance": """
global_defs {
  vrrp_garp_master_delay 2
  vrrp_garp_master_refresh 30
  vrrp_version 3
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  advert_int 0.5
  nopreempt
  virtual_ipaddress {
    192.0.2.10/24 dev eth1 label eth1:vip
    192.0.2.11
  }
  virtual_ipaddress_excluded {
    2001:db8::5/64
    198.51.100.7/24 dev eth2 scope link label eth2:x
    198.51.100.8/24 label eth2:abcdefghijklmn
  }
}
vrrp_instance VI_2 {
  interface eth1
  virtual_router_id 52
  version 2
  priority 90
  authentication {
    auth_type PASS
    auth_pass 123456789
  }
  virtual_ipaddress {
    198.51.100.1
  }
  garp_master_repeat 3
  garp_lower_prio_delay 7
  no_accept
}
vrrp_instance VI_3 {
  interface eth2
  virtual_router_id 53
  strict_mode
  virtual_ipaddress {
    2001:db8::1
  }
}
vrrp_instance VI_4 {
  interface eth3
  virtual_router_id 54
  advert_int 2.4
  priority 255
  down_timer_adverts 5
  higher_prio_send_advert
  virtual_ipaddress {
    203.0.113.4
  }
}
""",
    "preprocessor": """
$NET=192.0.2
$IF=eth0
$VIPS= \\
  ${NET}.20 \\
@pkcfgtest  ${NET}.21 \\
@^pkcfgtest ${NET}.22 \\
  ${NET}.23
@pkcfgtest $PRIO=150
@^pkcfgtest $PRIO=50
vrrp_instance VI_1 { interface $IF ; virtual_router_id 61
priority $PRIO
  virtual_ipaddress {
$VIPS
~SEQ(X,1,3) ${NET}.10${X}/32
~LST(Y,7,9) 198.51.100.${Y}
  198.51.100.50 # comment ! more
  }
}
vrrp_instance VI_2
{
  interface eth1
  virtual_router_id 62
  virtual_ipaddress { 203.0.113.1 }
  state MASTER }
""".replace(" ; ", "\n"),
    "min-garp": """
global_defs {
  vrrp_min_garp
  vrrp_garp_master_repeat 4
  vrrp_garp_lower_prio_delay 9
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 81
  garp_master_delay 3
  lower_prio_no_advert
  virtual_ipaddress {
    192.0.2.40
  }
}
vrrp_instance VI_2 {
  interface eth1
  virtual_router_id 82
  strict_mode
  garp_lower_prio_repeat 3
  virtual_ipaddress {
    192.0.2.41
  }
}
""",
    "trackers-unicast": """
vrrp_script chk {
  script "/bin/true"
  weight -20
  interval 5
}
track_file tf {
  file /tmp/pk-cfg-nonexistent-tf
  weight 3
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 91
  priority 150
  unicast_src_ip 192.0.2.2
  unicast_peer {
    192.0.2.3
    192.0.2.4 min_ttl 250
  }
  track_interface {
    eth1 weight -10
    eth2
    eth1 weight 4
  }
  track_script {
    chk
    chk weight 5
  }
  track_file {
    tf weight -2 reverse
  }
  virtual_ipaddress {
    192.0.2.1
  }
}
vrrp_instance VI_2 {
  interface eth1
  virtual_router_id 92
  track_script {
    chk weight 7 reverse
  }
  virtual_ipaddress {
    192.0.2.5
  }
}
""",
    "substitution-edges": """
$HOST=192.0.2.77
$OCT=7
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 95
  virtual_ipaddress {
    $HOST/32
    ${HOST}/32
    198.51.100.$OCT
~SEQ(N,5,-2,1) 203.0.113.${N}
  }
  virtual_ipaddress_excluded {
~SEQx(N,a,c) 2001:db8::${N}
~SEQx(M,0xa,0xc) 2001:db8::1:${M}
~LST({P,L},{24,x},{25,y}) 198.51.100.${P}/24 label eth0:${L}
  }
}
""",
    "script-quoting": r"""
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 93
  virtual_ipaddress {
    192.0.2.93
  }
  notify_master "/bin/echo 'p q' a\\x41 b\\ c \\101\\t"
  notify_backup "/bin/echo x\"y z\"w"
  notify_fault "/bin/echo \x44 \\x45"
  notify /bin/true root
}
""",
    "global-strict": """
global_defs {
  vrrp_strict
  vrrp_min_garp
  vrrp_mcast_group4 224.0.0.19
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 71
  priority 120
  virtual_ipaddress {
    192.0.2.30
  }
}
""",
    "strict-resets": """
global_defs {
  vrrp_strict
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 72
  state MASTER
  priority 120
  accept
  down_timer_adverts 5
  garp_lower_prio_repeat 3
  garp_lower_prio_delay 2
  lower_prio_no_advert false
  higher_prio_send_advert
  virtual_ipaddress {
    192.0.2.31
  }
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 73
  state BACKUP
  priority 255
  no_accept
  virtual_ipaddress {
    192.0.2.32
  }
}
vrrp_instance VI_3 {
  interface eth0
  virtual_router_id 74
  version 3
  priority 100
  accept
  virtual_ipaddress {
    192.0.2.33
  }
}
""",
}


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"pk-cfg-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        for i, ifname in enumerate(IFACES):
            subprocess.run(
                [
                    "ip",
                    "-n",
                    name,
                    "link",
                    "add",
                    ifname,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    f"pkd{i}",
                ],
                check=True,
                timeout=10,
            )
            subprocess.run(["ip", "-n", name, "link", "set", ifname, "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


_STAMP = re.compile(r"^\w{3} \w{3} +\d+ [\d:]+ \d{4}: ")


def keepalived_dump(netns: str, conf: Path, run: Path) -> list[str]:
    """The "VRRP Topology" lines keepalived logs at start-up with -d."""
    cmd = [
        "ip", "netns", "exec", netns, KEEPALIVED, "-n", "-l", "-d", "-P", "--no-syslog",
        "-f", str(conf), "-i", CONFIG_ID,
        "-p", str(run / "k.pid"), "-r", str(run / "v.pid"), "-c", str(run / "c.pid"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 15
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        in_topology = False
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            raw = proc.stdout.readline()
            if not raw:
                break
            line = _STAMP.sub("", raw.rstrip("\n"))
            if "VRRP Topology" in line:
                in_topology = True
            elif in_topology and line.startswith("------<"):
                return lines
            elif in_topology:
                lines.append(line)
        raise AssertionError(f"no complete VRRP dump from keepalived; got {lines[-5:]}")
    finally:
        sel.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        proc.stdout.close()


def parse_dump(lines: list[str]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    cur: dict[str, Any] = {}
    section = ""
    for line in lines:
        text = line.strip()
        if line.startswith(" VRRP Instance = "):
            cur = {"vips": [], "evips": []}
            out[text.split(" = ", 1)[1]] = cur
            section = ""
        elif text.startswith("Virtual IP Excluded"):
            section = "evips"
        elif text.startswith("Virtual IP ("):
            section = "vips"
        elif text.startswith("Unicast Peer"):
            section = "peers"
            cur["peers"] = []
        elif text.startswith(("Tracked interfaces", "Tracked scripts", "Tracked files")):
            section = {"i": "track_interface", "s": "track_script", "f": "track_file"}[
                text.split()[1][0]
            ]
            cur[section] = []
        elif section in ("vips", "evips") and line.startswith("     "):
            words = text.split()
            opts = dict(zip(words[1::2], words[2::2], strict=False))
            entry = (words[0], opts.get("dev"), opts.get("scope"), opts.get("label"))
            cur[section].append(entry)
        elif section == "peers" and line.startswith("     "):
            cur[section].append(text.split()[0])
        elif section.startswith("track_") and line.startswith("     "):
            # "eth1 weight -10", "tf, weight -2 reverse"
            words = text.replace(",", "").split()
            cur[section].append((words[0], int(words[2]), "reverse" in words[3:]))
        elif " state transition script = " in text:
            which, rest = text.split(" state transition script = ", 1)
            cur[f"script {which}"] = re.findall(r"'([^']*)'", rest.rsplit(", uid:gid", 1)[0])
        elif " = " in text:
            section = ""
            key, value = text.split(" = ", 1)
            cur[key] = value
        elif text.startswith("Check unicast src"):
            cur["Check unicast src"] = text.rsplit(None, 1)[1]
        elif text.startswith("Multicast address"):
            cur["Multicast address"] = text.split()[2].rstrip(",")
    return out


_NOTIFY = {
    "Master": "notify_master",
    "Backup": "notify_backup",
    "Fault": "notify_fault",
    "Stop": "notify_stop",
    "Generic": "notify",
}


def _interval(text: str) -> float:
    value, unit = text.split()
    return float(value) / (1000 if unit == "milli-sec" else 1)


def _vip(a: core.Address, inst: core.VrrpInstance) -> tuple[str, str | None, str, str | None]:
    """An address as keepalived's dump shows it: host prefixes dropped, defaults filled in."""
    address = a.address.removesuffix("/32").removesuffix("/128")
    return (address, a.dev or inst.interface, a.scope or "global", a.label)


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_matches_keepalived_dump(netns: str, tmp_path: Path, case: str) -> None:
    files = CASES[case]
    for rel, text in ({"keepalived.conf": files} if isinstance(files, str) else files).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    conf = tmp_path / "keepalived.conf"
    theirs = parse_dump(keepalived_dump(netns, conf, tmp_path))
    result = core.load(conf, config_id=CONFIG_ID, script_env=None)
    config = result.config
    assert sorted(theirs) == sorted(i.name for i in config.instances)
    for inst in config.instances:
        k = theirs[inst.name]
        s = core.vrrp_settings(config, inst)
        ours: dict[str, object] = {
            "VRRP Version": str(s.version),
            "Wantstate": s.state,
            "Interface": inst.interface,
            "Virtual Router ID": str(inst.virtual_router_id),
            "Priority": str(s.priority),
            "Advert interval": s.advert_int,
            "Accept": "enabled" if s.accept else "disabled",
            "Preempt": "disabled" if inst.nopreempt else "enabled",
            "Multicast address": s.mcast_group,
            "Gratuitous ARP delay": str(s.garp_master_delay),
            "Gratuitous ARP repeat": str(s.garp_master_repeat),
            "Gratuitous ARP refresh": str(s.garp_master_refresh),
            "Gratuitous ARP refresh repeat": str(s.garp_master_refresh_repeat),
            "Gratuitous ARP lower priority delay": str(s.garp_lower_prio_delay),
            "Gratuitous ARP lower priority repeat": str(s.garp_lower_prio_repeat),
            "Down timer adverts": str(s.down_timer_adverts),
            "Send advert after receive lower priority advert": str(
                not s.lower_prio_no_advert
            ).lower(),
            "Send advert after receive higher priority advert": str(
                s.higher_prio_send_advert
            ).lower(),
            "vips": [_vip(a, inst) for a in inst.virtual_ipaddress],
            "evips": [_vip(a, inst) for a in inst.virtual_ipaddress_excluded],
        }
        if inst.authentication is not None and inst.authentication.auth_pass is not None:
            ours["Password"] = inst.authentication.auth_pass
        if inst.unicast_peer:
            del ours["Multicast address"]  # not used, not printed, for unicast instances
            ours["peers"] = [p.address for p in inst.unicast_peer]
            ours["Check unicast src"] = "yes" if s.check_unicast_src else "no"
            ours["Using src_ip"] = f"{inst.unicast_src_ip} (from configuration)"
        for which, field in _NOTIFY.items():
            script = getattr(inst, field)
            if script is not None:
                argv = script.argv
                exe = shutil.which(argv[0])
                ours[f"script {which}"] = [os.path.realpath(exe) if exe else argv[0], *argv[1:]]
        for field in ("track_interface", "track_script", "track_file"):
            refs = getattr(inst, field)
            if refs:
                ours[field] = [(t.name, tracker_weight(config, field, t), t.reverse) for t in refs]
        got = {key: k.get(key) for key in ours}
        got["Advert interval"] = _interval(str(k["Advert interval"]))
        assert got == ours, f"{case}/{inst.name}"
