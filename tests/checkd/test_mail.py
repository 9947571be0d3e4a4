"""checkd's smtp_alert mails: keepalived's checker and quorum mails, delivered through the
ground-floor mail queue (``mail``) to a real SMTP server (docs/checkers.md, "Notifications").
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from structlog.testing import capture_logs

import core
from checkd.lvs_service import LvsService
from checkd.pool_actions import ActionRunner
from checkd.pool_messages import Mail
from checkd.pool_topics import rs_topic
from tests.checkd.support import FakePublisher, until
from tests.smtp_servers import Inbox, hanging_server, smtp_server

VS = "[192.0.2.10]:tcp:80"

CONF = """
global_defs {{
    router_id lb1
    notification_email {{
        ops@example.org
    }}
    notification_email_from checkd@example.org
    smtp_server 127.0.0.1 {smtp_port}
    smtp_helo_name lb1.example.org
    smtp_connect_timeout {smtp_timeout}
}}
virtual_server 192.0.2.10 80 {{
    protocol TCP
    quorum 1
    smtp_alert
    real_server 127.0.0.1 {rs_port} {{
        TCP_CHECK {{
            connect_timeout 1
            delay_loop 0.1
            retry 0
        }}
    }}
}}
"""


async def _serve(port: int) -> asyncio.Server:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(accept, "127.0.0.1", port)


def _subjects(inbox: Inbox) -> list[str]:
    return [str(m["Subject"]) for m in inbox.messages()]


def _sent(logs: list[MutableMapping[str, Any]]) -> set[str]:
    """The subjects the mailer logged as sent (``checkd.mail.sent``, after QUIT)."""
    return {e["subject"] for e in logs if e["event"] == "checkd.mail.sent"}


def test_a_real_server_going_down_and_up_mails_keepalived_subject_and_body() -> None:
    async def scenario(inbox: Inbox, smtp_port: int) -> list[MutableMapping[str, Any]]:
        real = await _serve(0)
        rs_port = real.sockets[0].getsockname()[1]
        rs = f"[127.0.0.1]:tcp:{rs_port}"
        down = f"[lb1] Realserver {rs} of virtual server {VS} - DOWN"
        up = f"[lb1] Realserver {rs} of virtual server {VS} - UP"
        conf = CONF.format(smtp_port=smtp_port, rs_port=rs_port, smtp_timeout=5)
        publisher = FakePublisher()
        service = LvsService(publisher, actions=ActionRunner())
        with capture_logs() as logs:
            assert service.apply_model(core.to_wire(core.loads(conf, script_env=None).config), 1)
            service.start()
            try:
                # The pool starts with quorum up: the virtual server's own mail.
                await until(lambda: len(inbox.envelopes) >= 1, 10, "the quorum-up mail")
                await until(lambda: service.runner.last, 10, "a first probe")
                real.close()
                await real.wait_closed()
                await until(lambda: down in _subjects(inbox), 10, "the DOWN mail")
                real = await _serve(rs_port)
                await until(lambda: up in _subjects(inbox), 10, "the UP mail")
                # The mailer logs a mail as sent after QUIT, which comes after the message
                # reached the inbox: wait for that too before stopping the mailer.
                await until(lambda: {down, up} <= _sent(logs), 10, "the mailer's sent lines")
            finally:
                real.close()
                await service.stop()
        return logs

    with smtp_server() as (inbox, smtp_port):
        logs = asyncio.run(scenario(inbox, smtp_port))
    messages = inbox.messages()
    by_subject = {str(m["Subject"]): m for m in messages}
    rs_mails = [s for s in _subjects(inbox) if "Realserver" in s]
    assert [s.rsplit(" - ", 1)[1] for s in rs_mails] == ["DOWN", "UP"]
    down_mail = by_subject[rs_mails[0]]
    assert down_mail.get_content().strip() == "=> TCP CHECK failed on service <="
    assert by_subject[rs_mails[1]].get_content().strip() == "=> TCP CHECK succeed on service <="
    # The only real server takes the quorum with it; the virtual server's own queue keeps
    # its mails in order.
    quorum = [
        (str(m["Subject"]), m.get_content().strip())
        for m in messages
        if "Virtualserver" in str(m["Subject"])
    ]
    assert quorum == [
        (f"[lb1] Virtualserver {VS} - UP", "=> Starting with quorum up 1+0=1 <= 1 <="),
        (f"[lb1] Virtualserver {VS} - DOWN", "=> Lost quorum 1+0=1 <= 0 <="),
        (f"[lb1] Virtualserver {VS} - UP", "=> Gained quorum 1+0=1 <= 1 <="),
    ]
    # keepalived's envelope and headers, as vrrpd's mails have them
    helo, envelope = inbox.envelopes[0]
    assert (helo, envelope.mail_from, envelope.rcpt_tos) == (
        "lb1.example.org",
        "checkd@example.org",
        ["ops@example.org"],
    )
    assert (down_mail["From"], down_mail["To"], down_mail["X-Mailer"]) == (
        "checkd@example.org",
        "ops@example.org",
        "Keepalived",
    )
    sent = [e for e in logs if e["event"] == "checkd.mail.sent"]
    assert _sent(logs) >= set(rs_mails)
    assert all("queued as 42" in e["reply"] for e in sent)
    assert not [e for e in logs if e["event"].startswith("vrrpd.")]


def test_without_a_server_nothing_is_mailed_and_nothing_fails() -> None:
    async def scenario() -> list[MutableMapping[str, Any]]:
        runner = ActionRunner()
        conf = "global_defs {\n notification_email {\n ops@example.org\n }\n}\n"
        runner.configure(core.loads(conf, script_env=None).config)
        with capture_logs() as logs:
            runner.perform([Mail("[lb1] Virtualserver x - UP", "=> Gained quorum <=", "VS x")])
            await runner.mailer.drain(1)
        await runner.stop()
        assert runner.mailer.sent == runner.mailer.failed == 0
        return logs

    logs = asyncio.run(scenario())
    assert not [e for e in logs if ".mail." in e["event"]]


def test_a_hanging_smtp_server_holds_no_probe_and_no_verdict() -> None:
    """The server accepts and never answers (each step would wait 30 s): the real server still
    goes down and up on the bus at its own pace while its mails wait in their queues, and
    checkd stops without waiting for them."""

    async def scenario(smtp_port: int) -> tuple[list[bool], int, int]:
        real = await _serve(0)
        rs_port = real.sockets[0].getsockname()[1]
        topic = rs_topic(VS, f"[127.0.0.1]:tcp:{rs_port}")
        conf = CONF.format(smtp_port=smtp_port, rs_port=rs_port, smtp_timeout=30)
        publisher = FakePublisher()
        actions = ActionRunner()
        service = LvsService(publisher, actions=actions)
        assert service.apply_model(core.to_wire(core.loads(conf, script_env=None).config), 1)
        service.start()

        def alive() -> list[bool]:
            states = [b["alive"] for t, b in publisher.sent if t == topic]
            return [a for i, a in enumerate(states) if i == 0 or states[i - 1] != a]

        try:
            await until(lambda: service.runner.last, 10, "a first probe")
            real.close()
            await real.wait_closed()
            await until(lambda: alive()[-1:] == [False], 10, "the real server down")
            real = await _serve(rs_port)
            await until(lambda: alive()[-1:] == [True], 10, "the real server up again")
            delivered = actions.mailer.sent, actions.mailer.failed
        finally:
            real.close()
            await service.stop()
        return alive(), *delivered

    with hanging_server() as smtp_port:
        alive, sent, failed = asyncio.run(scenario(smtp_port))
    assert alive == [True, False, True]
    assert (sent, failed) == (0, 0)  # every mail still waits for the server's greeting
