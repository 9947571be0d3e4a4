"""SMTP alerts (``smtp_alert``): keepalived's mail, sent without ever delaying VRRP.

The expected wire text below is what keepalived 2.2.7 sent to a capturing server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

import mail as smtp_mail
from core import loads
from tests.daemon import JSON_LOGS, daemon_group
from tests.lab import Lab, wait_until
from tests.smtp_servers import free_port, hanging_server, smtp_server
from vrrpd import mail

GLOBALS = """
global_defs {{
    router_id node1
    notification_email {{
        ops@example.org
        "On Call <oncall@example.org>"
    }}
    notification_email_from ka@example.org
    smtp_server {server} {port}
    smtp_helo_name helo.example.org
    smtp_connect_timeout {timeout}
    {extra}
}}
"""

INSTANCE = """
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority 150
    advert_int 1
    virtual_ipaddress {{
        192.0.2.170/24
    }}
    {extra}
}}
"""


def settings_for(text: str, hostname: str = "host1") -> mail.MailSettings | None:
    result = loads(text, script_env=None)
    assert result.ok, result.problems
    return mail.mail_settings(result.config, hostname=hostname)


def config(
    server: str = "192.0.2.1",
    port: int = 25,
    timeout: int = 30,
    global_extra: str = "smtp_alert",
    inst_extra: str = "",
    vrid: int = 51,
    tail: str = "",
) -> str:
    return (
        GLOBALS.format(server=server, port=port, timeout=timeout, extra=global_extra)
        + INSTANCE.format(vrid=vrid, extra=inst_extra)
        + tail
    )


# ---- pure: settings and message -----------------------------------------------------------


def test_compose_matches_keepalived_byte_for_byte() -> None:
    s = settings_for(config())
    assert s is not None
    when = datetime(2026, 11, 26, 0, 39, 16, tzinfo=UTC)
    master = mail.compose(s, "INSTANCE", "VI_1", "MASTER", when)
    assert master.text == (
        b"Date: Thu, 26 Nov 2026 00:39:16 +0000\r\n"
        b"From: ka@example.org\r\n"
        b"Subject: [node1] VRRP Instance VI_1 - Entering MASTER state\r\n"
        b"X-Mailer: Keepalived\r\n"
        b"To: ops@example.org, On Call <oncall@example.org>\r\n"
        b"\r\n"
        b"=> VRRP Instance is now owning VRRP VIPs <=\r\n"
        b"\r\n"
    )
    fault = mail.compose(s, "INSTANCE", "VI_1", "FAULT", when)
    assert b"Subject: [node1] VRRP Instance VI_1 - Entering FAULT state\r\n" in fault.text
    assert b"=> VRRP Instance is no longer owning VRRP VIPs <=\r\n" in fault.text
    group = mail.compose(s, "GROUP", "G1", "BACKUP", when)
    assert group.subject == "[node1] VRRP Group G1 - Entering BACKUP state"
    assert b"=> All VRRP group instances are now in BACKUP state <=\r\n" in group.text


def test_defaults_are_keepalived_ones_hostname_and_user_at_host() -> None:
    text = (
        "global_defs {\n notification_email {\n a@example.org\n }\n"
        " smtp_server 192.0.2.1\n smtp_alert\n}\n" + INSTANCE.format(vrid=51, extra="")
    )
    s = settings_for(text, hostname="box")
    assert s is not None
    smtp = s.smtp
    assert (smtp.server, smtp.port, smtp.helo, s.router_id, smtp.timeout) == (
        "192.0.2.1",
        25,
        "box",
        "box",
        30,
    )
    assert smtp.sender.endswith("@box") and len(smtp.sender) > len("@box")


def test_nothing_is_mailed_without_a_server_or_recipients() -> None:
    no_rcpt = "global_defs {\n smtp_server 192.0.2.1\n smtp_alert\n}\n" + INSTANCE.format(
        vrid=51, extra=""
    )
    no_server = "global_defs {\n notification_email {\n a@example.org\n }\n smtp_alert\n}\n"
    assert settings_for(no_rcpt) is None
    assert settings_for(no_server + INSTANCE.format(vrid=51, extra="")) is None


GROUP = """
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.0.2.171/24
    }
}
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
    %s
}
"""


@pytest.mark.parametrize(
    ("global_extra", "inst_extra", "group_extra", "instances", "groups"),
    [
        ("smtp_alert", "", "", {"VI_1", "VI_2"}, {"G1"}),
        ("", "", "", set(), set()),
        ("smtp_alert", "smtp_alert off", "", {"VI_2"}, {"G1"}),
        ("smtp_alert\n smtp_alert_vrrp off", "", "", set(), set()),
        ("smtp_alert_vrrp", "", "", {"VI_1", "VI_2"}, {"G1"}),
        ("", "smtp_alert", "smtp_alert", {"VI_1"}, {"G1"}),
        ("smtp_alert", "", "smtp_alert off", {"VI_1", "VI_2"}, set()),
    ],
)
def test_smtp_alert_inherits_like_keepalived(
    global_extra: str, inst_extra: str, group_extra: str, instances: set[str], groups: set[str]
) -> None:
    s = settings_for(
        config(global_extra=global_extra, inst_extra=inst_extra, tail=GROUP % group_extra)
    )
    assert s is not None
    assert (set(s.instances), set(s.groups)) == (instances, groups)


def test_only_master_backup_fault_mail_and_no_email_faults_silences_fault() -> None:
    s = settings_for(config())
    assert s is not None
    assert [
        st for st in ("MASTER", "BACKUP", "FAULT", "STOP") if s.wants("INSTANCE", "VI_1", st)
    ] == [
        "MASTER",
        "BACKUP",
        "FAULT",
    ]
    assert not s.wants("INSTANCE", "VI_9", "MASTER")
    quiet = settings_for(config(global_extra="smtp_alert\n no_email_faults"))
    assert quiet is not None
    assert not quiet.wants("INSTANCE", "VI_1", "FAULT")
    assert quiet.wants("INSTANCE", "VI_1", "MASTER")


def test_rcpt_gets_the_bare_address_of_a_named_recipient() -> None:
    assert smtp_mail.envelope_address("On Call <oncall@example.org>") == "oncall@example.org"
    assert smtp_mail.envelope_address("ops@example.org") == "ops@example.org"


def test_checker_and_vrrp_mail_keywords_are_implemented() -> None:
    text = """
global_defs {
    smtp_alert_checker
}
virtual_server 192.0.2.5 80 {
    protocol TCP
    lb_kind NAT
    lb_algo rr
    smtp_alert
    real_server 192.0.2.6 80 {
        smtp_alert
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
""" + INSTANCE.format(vrid=51, extra="smtp_alert")
    result = loads(text, script_env=None)
    flagged = [(p.line, p.text) for p in result.problems if p.code == "not-implemented"]
    # global smtp_alert_checker, the virtual and real server's smtp_alert (checkd mails,
    # tests/checkd/test_mail.py), the vrrp_instance's smtp_alert and the LVS datapath keywords
    # (netd programs them) are all acted on.
    assert sorted(flagged) == []


# ---- a real SMTP server -----------------------------------------------------------------------


def _settings(port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> mail.MailSettings:
    s = settings_for(config(server=host, port=port))
    assert s is not None
    return dataclasses.replace(s, smtp=dataclasses.replace(s.smtp, timeout=timeout))


def test_mail_reaches_a_real_server_with_keepalived_headers() -> None:
    with smtp_server() as (inbox, port):
        s = _settings(port)
        m = mail.compose(s, "INSTANCE", "VI_1", "MASTER")
        reply = asyncio.run(
            smtp_mail.send(m, s.smtp.server, s.smtp.port, s.smtp.helo, s.smtp.timeout)
        )
        assert "queued as 42" in reply
    ((helo, env),) = inbox.envelopes
    assert helo == "helo.example.org"
    assert env.mail_from == "ka@example.org"
    assert env.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    (msg,) = inbox.messages()
    assert msg["From"] == "ka@example.org"
    assert msg["To"] == "ops@example.org, On Call <oncall@example.org>"
    assert msg["Subject"] == "[node1] VRRP Instance VI_1 - Entering MASTER state"
    assert msg["X-Mailer"] == "Keepalived"
    assert msg.get_content().strip() == "=> VRRP Instance is now owning VRRP VIPs <="


def test_refused_connection_fails_at_connect() -> None:
    port = free_port("127.0.0.1")  # nothing listens there any more
    s = _settings(port)
    m = mail.compose(s, "INSTANCE", "VI_1", "MASTER")
    with pytest.raises(smtp_mail.SmtpFailure) as info:
        asyncio.run(smtp_mail.send(m, s.smtp.server, port, s.smtp.helo, s.smtp.timeout))
    assert info.value.stage == "connect"
    assert "refused" in info.value.detail.lower()


def test_rejected_recipient_fails_with_the_servers_reply() -> None:
    with smtp_server() as (inbox, port):
        inbox.reject_rcpt.add("oncall@example.org")
        s = _settings(port)
        m = mail.compose(s, "INSTANCE", "VI_1", "MASTER")
        with pytest.raises(smtp_mail.SmtpFailure) as info:
            asyncio.run(smtp_mail.send(m, s.smtp.server, port, s.smtp.helo, s.smtp.timeout))
    assert (info.value.stage, info.value.code) == ("RCPT", 550)
    assert "no such user here" in info.value.detail
    assert inbox.envelopes == []


def test_mailer_logs_a_hanging_server_as_failed_after_the_timeout_without_blocking() -> None:
    async def scenario(port: int) -> tuple[float, list[MutableMapping[str, Any]]]:
        mailer = mail.Mailer()
        mailer.configure(_settings(port, timeout=0.5))
        loop = asyncio.get_running_loop()
        with capture_logs() as logs:
            started = loop.time()
            mailer.alert("INSTANCE", "VI_1", "BACKUP")
            mailer.alert("INSTANCE", "VI_1", "MASTER")
            returned = loop.time() - started
            await mailer.drain(5)
        await mailer.close()
        assert returned < 0.05  # alert() only queues
        return returned, logs

    with hanging_server() as port:
        _, logs = asyncio.run(scenario(port))
    failed = [e for e in logs if e["event"] == "vrrpd.mail.failed"]
    assert [e["subject"].split(" - ")[1] for e in failed] == [
        "Entering BACKUP state",
        "Entering MASTER state",
    ]
    assert all(e["stage"] == "greeting" and "no reply within 0.5 s" in e["reply"] for e in failed)
    assert all(0.4 < e["duration"] < 2 for e in failed)


def test_mailer_sends_in_transition_order_and_logs_the_servers_reply() -> None:
    async def scenario(s: mail.MailSettings) -> list[MutableMapping[str, Any]]:
        mailer = mail.Mailer()
        mailer.configure(s)
        with capture_logs() as logs:
            for state in ("BACKUP", "MASTER", "STOP", "FAULT", "BACKUP"):
                mailer.alert("INSTANCE", "VI_1", state)
            mailer.alert("INSTANCE", "NOT_ALERTING", "MASTER")
            await mailer.drain(5)
        await mailer.close()
        return logs

    with smtp_server() as (inbox, port):
        logs = asyncio.run(scenario(_settings(port)))
    subjects = [m["Subject"].split(" - ")[1] for m in inbox.messages()]
    assert subjects == [
        "Entering BACKUP state",
        "Entering MASTER state",
        "Entering FAULT state",
        "Entering BACKUP state",
    ]
    sent = [e for e in logs if e["event"] == "vrrpd.mail.sent"]
    assert len(sent) == 4 and all("queued as 42" in e["reply"] for e in sent)


# ---- the daemon in a namespace --------------------------------------------------------------


def _state_times(log_text: str, instance: str) -> list[tuple[str, datetime]]:
    """(new state, timestamp) of each vrrp.state log line of ``instance``."""
    out = []
    for line in log_text.splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line[line.index("{") :])
            if rec.get("event") == "vrrp.state" and rec.get("instance") == instance:
                out.append((rec["new"], datetime.fromisoformat(rec["timestamp"])))
    return out


def _events(log_text: str, name: str) -> list[dict[str, Any]]:
    out = []
    for line in log_text.splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line[line.index("{") :])
            if rec.get("event") == name:
                out.append(rec)
    return out


@pytest.mark.netns
def test_daemon_mails_instance_and_group_transitions(make_lab: Any) -> None:
    lab: Lab = make_lab(1)
    node = lab.node(0)
    with smtp_server(node.ip4, node) as (inbox, port):
        text = config(server=node.ip4, port=port, vrid=71, tail=GROUP % "")
        with daemon_group(node, text, env=JSON_LOGS) as group:
            group.wait_started()
            wait_until(lambda: len(inbox.envelopes) >= 6, 20, message="six mails")
            # The server has a mail before vrrpd has read its final reply and logged it.
            log_text = wait_until(
                lambda: t if (t := group.log_text()).count('"vrrpd.mail.sent"') >= 6 else None,
                10,
                message="six vrrpd.mail.sent logs",
            )
    subjects = sorted(m["Subject"] for m in inbox.messages())
    assert subjects == [
        "[node1] VRRP Group G1 - Entering BACKUP state",
        "[node1] VRRP Group G1 - Entering MASTER state",
        "[node1] VRRP Instance VI_1 - Entering BACKUP state",
        "[node1] VRRP Instance VI_1 - Entering MASTER state",
        "[node1] VRRP Instance VI_2 - Entering BACKUP state",
        "[node1] VRRP Instance VI_2 - Entering MASTER state",
    ]
    for msg in inbox.messages():
        assert msg["From"] == "ka@example.org"
        assert msg["To"] == "ops@example.org, On Call <oncall@example.org>"
    bodies = {m["Subject"]: m.get_content().strip() for m in inbox.messages()}
    assert bodies["[node1] VRRP Instance VI_1 - Entering MASTER state"] == (
        "=> VRRP Instance is now owning VRRP VIPs <="
    )
    assert bodies["[node1] VRRP Group G1 - Entering MASTER state"] == (
        "=> All VRRP group instances are now in MASTER state <="
    )
    assert len(_events(log_text, "vrrpd.mail.sent")) >= 6


@pytest.mark.netns
@pytest.mark.parametrize("dead", ["refused", "hanging"])
def test_dead_smtp_server_does_not_delay_the_takeover(make_lab: Any, dead: str) -> None:
    lab: Lab = make_lab(1)
    node = lab.node(0)
    # The hanging server holds the BACKUP mail for 5 s: longer than the master-down
    # interval (3 x 1 s + skew), so the MASTER transition happens while a mail is stuck.
    with (
        hanging_server(node.ip4, node)
        if dead == "hanging"
        else contextlib.nullcontext(2525) as port
    ):
        text = config(server=node.ip4, port=port, timeout=5, vrid=72)
        with daemon_group(node, text, env=JSON_LOGS) as group:
            group.wait_started()
            wait_until(
                lambda: len(_events(group.log_text(), "vrrpd.mail.failed")) >= 2,
                25,
                message="both mails to fail",
            )
            log_text = group.log_text()
    states = _state_times(log_text, "VI_1")
    assert [s for s, _ in states[:2]] == ["BACKUP", "MASTER"]
    took = (states[1][1] - states[0][1]).total_seconds()
    # master_down = 3 * advert_int + skew (0.41 s for priority 150); the timer alone decides.
    assert 3.0 < took < 3.9, took
    failed = _events(log_text, "vrrpd.mail.failed")
    expected = "greeting" if dead == "hanging" else "connect"
    assert {e["stage"] for e in failed} == {expected}
    assert all(e["server"] == f"[{node.ip4}]:2525" for e in failed)
    if dead == "hanging":
        assert all("no reply within 5 s" in e["reply"] for e in failed)
    else:
        assert all("refused" in e["reply"].lower() for e in failed)
