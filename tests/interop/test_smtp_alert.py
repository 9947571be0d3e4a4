"""smtp_alert: the same keepalived.conf makes Debian's keepalived and pykeepalived send the same
mails (envelope, headers and body; only the Date differs), with keepalived's defaults for the
HELO name, the sender and the router id."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

from tests.daemon import daemon_group
from tests.interop.peers import KeepalivedPeer
from tests.lab import Lab, wait_until
from tests.smtp_servers import Inbox, smtp_server

pytestmark = [pytest.mark.netns, pytest.mark.interop]


def _config(server: str, port: int) -> str:
    return f"""
global_defs {{
    notification_email {{
        ops@example.org
        noc@example.org
    }}
    smtp_server {server} {port}
    smtp_connect_timeout 5
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 91
    priority 150
    advert_int 1
    smtp_alert
    virtual_ipaddress {{
        192.0.2.191/24
    }}
}}
"""


def _mails(inbox: Inbox) -> list[tuple[Any, ...]]:
    out = []
    for helo, env in inbox.envelopes:
        lines = (env.original_content or b"").split(b"\r\n")
        assert lines[0].startswith(b"Date: ")
        assert email.utils.parsedate_to_datetime(lines[0][6:].decode()) is not None
        out.append((helo, env.mail_from, tuple(env.rcpt_tos), b"\r\n".join(lines[1:])))
    return out


def test_pykeepalived_mails_what_keepalived_mails(make_lab: Any) -> None:
    lab: Lab = make_lab(1)
    node = lab.node(0)
    with smtp_server(node.ip4, node) as (inbox, port):
        config = _config(node.ip4, port)
        with KeepalivedPeer(node, config) as peer:
            wait_until(lambda: len(inbox.envelopes) >= 2, 15, message="keepalived's two mails")
            peer.stop()
        theirs = _mails(inbox)
        inbox.envelopes.clear()
        with daemon_group(node, config) as group:
            group.wait_started()
            wait_until(lambda: len(inbox.envelopes) >= 2, 15, message="our two mails")
        ours = _mails(inbox)
    subjects = [m[3].split(b"\r\n")[1].decode() for m in theirs]
    assert [s.split("] ", 1)[1] for s in subjects] == [
        "VRRP Instance VI_1 - Entering BACKUP state",
        "VRRP Instance VI_1 - Entering MASTER state",
    ]
    assert ours == theirs
