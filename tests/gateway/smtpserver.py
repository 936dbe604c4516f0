"""An SMTP server on 127.0.0.1 for the email channel's tests: aiosmtpd in this event loop, with
STARTTLS or implicit TLS (certificates from a trustme CA the client is told to trust) and
AUTH; it keeps each message it accepts and can refuse chosen recipients."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal, cast

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER, PASSWORD = "cron", "s3cret-smtp-pass"


@dataclass
class Mailbox:
    port: int = 0
    client_tls: ssl.SSLContext | None = None
    """Trusts the server's certificate (hand it to EmailChannel's ``tls_context``)."""
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    """Recipient address → the SMTP answer refusing it (``"550 5.1.1 no such user"``)."""
    logins: int = 0
    refuse_sender: str | None = None
    """The answer to every MAIL FROM (``"553 5.7.1 sender not allowed"``); None: 250."""
    refuse_data: str | None = None
    """The answer to every message's DATA (``"554 5.6.0 rejected as spam"``); None: 250."""

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_sender is not None:
            return self.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_data is not None:
            return self.refuse_data
        content = envelope.original_content or b""
        self.messages.append(cast(EmailMessage, message_from_bytes(content, policy=policy.default)))
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted"


@asynccontextmanager
async def smtp_server(
    security: Literal["starttls", "tls", "none"], *, auth: bool = True, port: int = 0
) -> AsyncIterator[Mailbox]:
    """A running server (``security`` as the email channel names it) on ``port`` (0: any
    free one); with ``auth`` it requires AUTH as USER / PASSWORD."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    mailbox = Mailbox(client_tls=client_tls)

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        mailbox.logins += ok
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    def protocol() -> SMTP:
        with warnings.catch_warnings():  # "AUTH without TLS": the transport is TLS already
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return _smtp()

    def _smtp() -> SMTP:
        return SMTP(
            mailbox,
            hostname="mx.test",
            tls_context=server_tls if security == "starttls" else None,
            require_starttls=security == "starttls",
            authenticator=authenticate if auth else None,
            auth_required=auth,
            # aiosmtpd only knows of the TLS it started itself (STARTTLS): implicit TLS counts
            auth_require_tls=security == "starttls",
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        protocol, "127.0.0.1", port, ssl=server_tls if security == "tls" else None
    )
    mailbox.port = server.sockets[0].getsockname()[1]
    try:
        yield mailbox
    finally:
        server.close()
        await server.wait_closed()
