"""Email destinations (``kind = "email"``): a run's message sent over SMTP with
:mod:`aiosmtplib` to the address in the delivery's destination (``dest:<name>:<address>``).

- One message with a plain-text and an HTML part (the body escaped, in a ``<pre>``), the
  subject the title (``[job] done``, ``[job] failed``…), ``From`` the configured sender.
- ``Message-ID`` derived from the delivery (its id, run and destination): a message sent
  again after a crash, or retried, has the same id, so mail clients show it once.
- ``security``: ``"tls"`` (implicit TLS, usually port 465), ``"starttls"`` (required, usually
  587), ``"none"`` (plain, e.g. a local relay on 25); AUTH when a username is set.
- What an SMTP error means (:func:`smtp_error`): a 5xx refusing the recipient or the message
  → dead at once (the answer kept); authentication failing, the sender refused, TLS or AUTH
  unsupported, DNS failure or connection refused → the destination as a whole refuses (every
  message waits while one probes); 4xx, timeouts, a dropped connection → a failed attempt.

:meth:`EmailChannel.check` connects, says EHLO (and STARTTLS, AUTH) and quits: nothing sent.
The password never appears in messages or logs.
"""

from __future__ import annotations

import hashlib
import html
import ssl
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, Literal

import aiosmtplib

from starpod_cron import Delivery
from starpod_cron.logs import redact

from ..outbox import DeliveryError, Progress
from .text import message_of

Security = Literal["starttls", "tls", "none"]
SECURITIES = ("starttls", "tls", "none")
FALLBACK_DOMAIN = "starpod-cron.invalid"


def message_id(delivery: Delivery, sender: str) -> str:
    """The ``Message-ID`` of ``delivery``'s email, the same on every send of it."""
    seed = f"{delivery.id}\n{delivery.run_id}\n{delivery.destination}".encode()
    digest = hashlib.sha256(seed).hexdigest()[:24]
    domain = sender.rpartition("@")[2] or FALLBACK_DOMAIN
    return f"<starpod-cron.{delivery.id}.{digest}@{domain}>"


def compose(delivery: Delivery, sender: str, address: str) -> EmailMessage:
    """The email for ``delivery`` to ``address``: plain-text and HTML parts."""
    message = message_of(delivery.payload)
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = sender
    mail["To"] = address
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(delivery, parseaddr(sender)[1])
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    plain = "\n\n".join(part for part in (message.body, message.details) if part)
    mail.set_content((plain or message.title) + "\n")
    parts = [f"<p><strong>{html.escape(message.title)}</strong></p>"]
    if message.body:
        parts.append(
            '<pre style="white-space: pre-wrap; font-family: monospace">'
            f"{html.escape(message.body)}</pre>"
        )
    if message.details:
        parts.append(f'<p style="color: #666; font-size: small">{html.escape(message.details)}</p>')
    mail.add_alternative(
        "<!doctype html>\n<html><body>\n" + "\n".join(parts) + "\n</body></html>\n",
        subtype="html",
    )
    return mail


def _said(exc: aiosmtplib.SMTPResponseException) -> str:
    return redact(f"{exc.code} {' '.join(exc.message.split())}")


def smtp_error(what: str, exc: Exception) -> DeliveryError:
    """What a failed SMTP conversation means for the delivery (see the module's docstring)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return DeliveryError(f"{what} timed out: {redact(str(exc))}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(f"{what} refused the login: {_said(exc)}", refusing=True)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        refused = "the recipient" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "it"
        permanent = exc.code >= 500
        return DeliveryError(f"{what} refused {refused}: {_said(exc)}", permanent=permanent)
    if isinstance(exc, aiosmtplib.SMTPResponseException):  # sender, greeting, EHLO: ours
        return DeliveryError(f"{what} refused: {_said(exc)}", refusing=exc.code >= 500)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return DeliveryError(f"{what} disconnected: {redact(str(exc))}")
    if isinstance(exc, aiosmtplib.SMTPConnectError | ssl.SSLError):
        return DeliveryError(f"{what} unreachable: {redact(str(exc))}", refusing=True)
    if isinstance(exc, aiosmtplib.SMTPException):  # STARTTLS or AUTH unsupported: settings
        return DeliveryError(f"{what} cannot be used: {redact(str(exc))}", refusing=True)
    return DeliveryError(f"{what} failed: {type(exc).__name__}: {redact(str(exc))}")


class EmailChannel:
    """The outbox channel of one SMTP server (``name``: ``dest:<name>``); each delivery's
    destination is ``dest:<name>:<address>``."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        security: Security,
        username: str | None,
        password: str | None,
        sender: str,
        timeout_secs: float = 30,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """``tls_context``: how to verify the server's certificate (default: the system's
        trust store)."""
        if security not in SECURITIES:
            raise ValueError(f"{name}: security must be one of {SECURITIES}, not {security!r}")
        if "@" not in parseaddr(sender)[1]:
            raise ValueError(f"{name}: the sender {sender!r} is not an email address")
        self.name = name
        self._sender = sender
        self._what = f"email {name!r}"
        self._options: dict[str, Any] = {
            "hostname": host,
            "port": port,
            "use_tls": security == "tls",
            "start_tls": security == "starttls",
            "username": username,
            "password": password,
            "timeout": timeout_secs,
            "tls_context": tls_context,
        }

    def address(self, delivery: Delivery) -> str:
        """The recipient of ``delivery``: what follows ``dest:<name>:``; DeliveryError
        (dead) if that is not an email address."""
        prefix = f"{self.name}:"
        raw = delivery.destination[len(prefix) :] if delivery.destination.startswith(prefix) else ""
        try:
            parsed = Address(addr_spec=raw)
        except (HeaderParseError, ValueError, IndexError):
            parsed = None
        if parsed is None or not parsed.username or not parsed.domain or parsed.display_name:
            raise DeliveryError(f"{self._what}: {raw!r} is not an email address", permanent=True)
        return parsed.addr_spec

    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        address = self.address(delivery)
        mail = compose(delivery, self._sender, address)
        try:
            await aiosmtplib.send(
                mail, sender=parseaddr(self._sender)[1], recipients=[address], **self._options
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise smtp_error(self._what, exc) from exc

    async def check(self) -> None:
        """Connect, EHLO (STARTTLS, AUTH as configured) and quit, sending nothing:
        DeliveryError (``refusing``) if the server refuses us."""
        try:
            async with aiosmtplib.SMTP(**self._options):
                pass
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise smtp_error(self._what, exc) from exc
