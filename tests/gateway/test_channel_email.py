"""Email destinations (gateway/channels/email.py) against an aiosmtpd server on 127.0.0.1
(STARTTLS, implicit TLS, AUTH), through a real Outbox over a real store where it matters."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest

from gateway.channels.email import EmailChannel, message_id
from gateway.outbox import DeliveryError
from starpod_cron import CronStore, DeliveryStatus
from tests.conftest import eventually
from tests.gateway.outboxkit import (
    Planner,
    delivery,
    finish_runs,
    payload,
    running_outbox,
    settled,
)
from tests.gateway.smtpserver import PASSWORD, USER, Mailbox, smtp_server

NAME = "dest:mail"
TO = "me@example.org"
SENDER = "Cron <cron@example.org>"
RESULT = "<b>5 > 3 & done</b>\nsecond line"


def channel(mailbox: Mailbox, security: Any = "starttls", **options: Any) -> EmailChannel:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": mailbox.port,
        "security": security,
        "username": USER,
        "password": PASSWORD,
        "sender": SENDER,
        "tls_context": mailbox.client_tls,
        "timeout_secs": 5,
    }
    return EmailChannel(NAME, **(settings | options))


def parts(mail: EmailMessage) -> tuple[str, str]:
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and html is not None
    crlf = "\r\n"
    return str(plain.get_content()).replace(crlf, "\n"), str(html.get_content()).replace(crlf, "\n")


async def _no_progress(parts: int) -> None:
    raise AssertionError("an email is one piece: no progress to record")


@pytest.fixture
async def planned(url: str) -> AsyncIterator[tuple[CronStore, Planner]]:
    planner = Planner(f"{NAME}:{TO}")
    store = await CronStore.open(url, delivery_planner=planner)
    try:
        yield store, planner
    finally:
        await store.close()


async def test_a_result_arrives_with_both_parts_over_starttls_and_auth(
    planned: tuple[CronStore, Planner],
) -> None:
    store, planner = planned
    async with smtp_server("starttls") as mailbox:
        await finish_runs(store, planner, [payload(result=RESULT, cost_usd=0.5)])
        async with running_outbox(store, {f"{NAME}:": channel(mailbox)}):
            (done,) = await settled(store, NAME, 1)
    assert done.status is DeliveryStatus.DELIVERED, done.last_error
    (mail,) = mailbox.messages
    assert mailbox.envelopes == [("cron@example.org", [TO])] and mailbox.logins == 1
    assert mail["Subject"] == "[report] done"
    assert mail["From"] == SENDER and mail["To"] == TO
    assert mail["Message-ID"] == message_id(done, "cron@example.org")
    assert mail["Auto-Submitted"] == "auto-generated"
    plain, html = parts(mail)
    assert plain.startswith(RESULT + "\n\nrun run-1 · scheduled for")
    assert "&lt;b&gt;5 &gt; 3 &amp; done&lt;/b&gt;\nsecond line</pre>" in html
    assert "<b>" not in html and "<strong>[report] done</strong>" in html
    assert "cost $0.5000" in html


async def test_the_message_id_is_the_same_on_every_send_of_a_delivery() -> None:
    async with smtp_server("tls") as mailbox:  # implicit TLS (port 465 style)
        email = channel(mailbox, "tls")
        first = delivery(f"{NAME}:{TO}", payload(result="r"), delivery_id=7)
        await email.deliver(first, _no_progress)
        await email.deliver(first, _no_progress)  # sent again after a crash, or retried
        await email.deliver(delivery(f"{NAME}:{TO}", payload(), delivery_id=8), _no_progress)
        await email.deliver(
            delivery(f"{NAME}:you@example.org", payload(), delivery_id=7), _no_progress
        )
    ids = [m["Message-ID"] for m in mailbox.messages]
    assert ids[0] == ids[1] and len(set(ids)) == 3
    assert ids[0].startswith("<starpod-cron.7.") and ids[0].endswith("@example.org>")


async def test_a_failure_says_failed_and_carries_the_error() -> None:
    async with smtp_server("none", auth=False) as mailbox:
        email = channel(mailbox, "none", username=None, password=None)
        body = payload(success=False, error="executor crashed", result="")
        await email.deliver(delivery(f"{NAME}:{TO}", body), _no_progress)
    (mail,) = mailbox.messages
    assert mail["Subject"] == "[report] failed"
    assert parts(mail)[0].startswith("executor crashed")


async def test_a_refused_recipient_is_dead_with_the_answer_kept_and_others_go(url: str) -> None:
    planner = Planner(f"{NAME}:nobody@example.org")
    store = await CronStore.open(url, delivery_planner=planner)
    try:
        async with smtp_server("starttls") as mailbox:
            mailbox.refuse["nobody@example.org"] = "550 5.1.1 <nobody@example.org>: no such user"
            await finish_runs(store, planner, [payload(result="lost")])
            planner.destination = f"{NAME}:{TO}"
            await finish_runs(store, planner, [payload(result="kept")])
            async with running_outbox(store, {f"{NAME}:": channel(mailbox)}):
                dead, done = await settled(store, NAME, 2)
    finally:
        await store.close()
    assert dead.status is DeliveryStatus.DEAD and done.status is DeliveryStatus.DELIVERED
    assert dead.attempts == 1 and dead.last_error is not None
    assert "550" in dead.last_error and "no such user" in dead.last_error
    assert [parts(m)[0].split("\n")[0] for m in mailbox.messages] == ["kept"]


async def test_a_server_down_holds_the_mail_until_it_answers(
    planned: tuple[CronStore, Planner],
) -> None:
    store, planner = planned
    port = free_port()
    down = EmailChannel(
        NAME,
        host="127.0.0.1",
        port=port,
        security="none",
        username=None,
        password=None,
        sender=SENDER,
    )
    await finish_runs(store, planner, [payload(result=f"r{i}") for i in range(3)])
    async with running_outbox(store, {f"{NAME}:": down}, backoff_secs=(0.3,)):

        async def refused() -> bool:
            return bool(await store.refusing_destinations())

        await eventually(refused, what="the server recorded as refusing")
        async with smtp_server("none", auth=False, port=port) as mailbox:
            rows = await settled(store, NAME, 3)
    assert [r.status for r in rows] == [DeliveryStatus.DELIVERED] * 3  # nothing dead
    assert [parts(m)[0].split("\n")[0] for m in mailbox.messages] == ["r0", "r1", "r2"]


def free_port() -> int:
    with socket.socket() as s:  # a port nobody listens on (for now)
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_smtp_errors_mean_dead_refusing_or_attempt() -> None:
    async with smtp_server("starttls") as mailbox:
        mailbox.refuse["busy@example.org"] = "450 4.2.1 mailbox busy, try later"
        email = channel(mailbox)
        with pytest.raises(DeliveryError) as busy:
            await email.deliver(delivery(f"{NAME}:busy@example.org", payload()), _no_progress)
        assert not busy.value.permanent and not busy.value.refusing  # an attempt, retried
        wrong = channel(mailbox, password="not-the-password")
        with pytest.raises(DeliveryError) as login:
            await wrong.deliver(delivery(f"{NAME}:{TO}", payload()), _no_progress)
        assert login.value.refusing and "not-the-password" not in str(login.value)
        mailbox.refuse_data = "554 5.6.0 message rejected as spam"
        with pytest.raises(DeliveryError) as rejected:
            await email.deliver(delivery(f"{NAME}:{TO}", payload()), _no_progress)
        assert rejected.value.permanent and "rejected as spam" in str(rejected.value)
        mailbox.refuse_data, mailbox.refuse_sender = None, "553 5.7.1 sender not allowed"
        with pytest.raises(DeliveryError) as sender:
            await email.deliver(delivery(f"{NAME}:{TO}", payload()), _no_progress)
        assert sender.value.refusing  # our From is refused: every message would be
        mailbox.refuse_sender = None
        with pytest.raises(DeliveryError) as bad_address:
            await email.deliver(delivery(f"{NAME}:not an address", payload()), _no_progress)
        assert bad_address.value.permanent
    async with smtp_server("none", auth=False) as plain:
        no_tls = channel(plain, "starttls", username=None, password=None)  # STARTTLS required
        with pytest.raises(DeliveryError) as unsupported:
            await no_tls.deliver(delivery(f"{NAME}:{TO}", payload()), _no_progress)
        assert unsupported.value.refusing
        assert plain.messages == []  # never sent in clear when TLS was asked for
    gone = EmailChannel(
        NAME,
        host="127.0.0.1",
        port=free_port(),
        security="none",
        username=None,
        password=None,
        sender=SENDER,
    )
    with pytest.raises(DeliveryError) as refused:
        await gone.deliver(delivery(f"{NAME}:{TO}", payload()), _no_progress)
    assert refused.value.refusing


async def test_a_server_that_never_answers_is_a_failed_attempt() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        email = EmailChannel(
            NAME,
            host="127.0.0.1",
            port=port,
            security="none",
            username=None,
            password=None,
            sender=SENDER,
            timeout_secs=0.3,
        )
        with pytest.raises(DeliveryError) as slow:
            await email.deliver(delivery(f"{NAME}:{TO}", payload()), _no_progress)
        assert not slow.value.refusing and not slow.value.permanent
        assert "timed out" in str(slow.value)
    finally:
        server.close()


async def test_check_logs_in_and_sends_nothing() -> None:
    async with smtp_server("starttls") as mailbox:
        await channel(mailbox).check()
        assert mailbox.logins == 1 and mailbox.messages == []
        with pytest.raises(DeliveryError) as refused:
            await channel(mailbox, password="wrong-pass").check()
        assert refused.value.refusing and "wrong-pass" not in str(refused.value)
    assert mailbox.messages == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="security"):
        EmailChannel(
            NAME,
            host="h",
            port=25,
            security="ssl",
            username=None,  # type: ignore[arg-type]
            password=None,
            sender=SENDER,
        )
    with pytest.raises(ValueError, match="sender"):
        EmailChannel(
            NAME, host="h", port=25, security="none", username=None, password=None, sender="cron"
        )
