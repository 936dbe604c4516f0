"""A ``[destinations.NAME] kind = "webhook"``: each delivery POSTed as JSON (the payload of
:func:`starpod_cron.routing.destination_payload`), signed per the Standard Webhooks spec with
the ``standardwebhooks`` package.

- ``webhook-id`` is the delivery's stable id: the same on every attempt (and after a gateway
  restart), so a receiver drops a repeat;
- ``webhook-timestamp`` and ``webhook-signature`` are made anew per attempt (a receiver
  refuses a timestamp more than five minutes off its own clock, so this is wall-clock time);
- the answer means what :mod:`gateway.channels.http` says (wait, retry, refusing, dead).

The URL and the secret are never in a message, a log line or a metric: the channel is named
``dest:NAME``.
"""

from __future__ import annotations

import binascii
import json
from datetime import UTC, datetime
from math import floor

import httpx
from standardwebhooks.webhooks import Webhook

from starpod_cron import ConfigError, Delivery
from starpod_cron.destinations import DEST_PREFIX

from ..outbox import DeliveryError, Progress
from .http import answer_error, transport_error


def webhook_id(delivery: Delivery) -> str:
    """The delivery's stable id as receivers see it (unique across stores: the run id is)."""
    return f"msg_{delivery.run_id}_{delivery.id}"


def body_of(delivery: Delivery) -> bytes:
    """The exact bytes signed and sent (compact JSON, UTF-8)."""
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookChannel:
    """POSTs signed JSON to one URL; ``name`` is ``dest:<name>``."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        client: httpx.AsyncClient,
        *,
        timeout_secs: float = 10,
    ) -> None:
        self.name = f"{DEST_PREFIX}{name}"
        self._what = f"webhook {name!r}"
        self._url = url
        self._client = client
        self._timeout = timeout_secs
        try:
            self._hook = Webhook(secret)
        except (binascii.Error, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"[destinations.{name}] secret_env: the secret must be a Standard Webhooks "
                f"secret, 'whsec_' and base64 ({type(exc).__name__})"
            ) from None

    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        body = body_of(delivery)
        msg_id = webhook_id(delivery)
        now = datetime.now(UTC)  # the receiver's check is against its own wall clock
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(floor(now.timestamp())),
            "webhook-signature": self._hook.sign(msg_id, now, body.decode()),
        }
        try:
            response = await self._client.post(
                self._url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise transport_error(self._what, exc) from None
        error = answer_error(self._what, response)
        if error is not None:
            raise error

    async def check(self) -> None:
        """A probe with no message waiting: any answer but 401/403/404 means it is back."""
        error: DeliveryError | None
        try:
            response = await self._client.head(self._url, timeout=self._timeout)
        except httpx.HTTPError as exc:
            error = transport_error(self._what, exc)
        else:
            error = answer_error(self._what, response)
        if error is not None and error.refusing:
            raise error
