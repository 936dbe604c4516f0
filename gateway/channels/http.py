"""What an HTTP destination's answer means for a delivery, decided once for every HTTP kind
(webhook, Slack, Discord) as a :class:`~gateway.outbox.DeliveryError` (or nothing: sent).

- 2xx: sent.
- 429, or any answer with ``Retry-After`` / ``retry-after-ms`` (a 503 asking to wait): wait
  that long, not a failed attempt (Discord's JSON ``retry_after`` too).
- 401, 403, 404 (the URL or its credentials are wrong or revoked), DNS failure, connection
  refused: the destination as a whole refuses; every message to it waits while one probes.
- 408, other 5xx, a timeout, a broken connection: a failed attempt of this message, retried
  with the delivery backoff.
- any other 4xx: this message is rejected on its own: dead at once, the answer kept.

Messages name the status and an excerpt of the answer, never the URL (a webhook URL is a
secret: Slack's and Discord's carry their token in the path).
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime

import httpx

from starpod_cron.logs import redact

from ..outbox import DeliveryError

REFUSING_STATUS = frozenset({401, 403, 404})
RETRIED_STATUS = frozenset({408})
EXCERPT_CHARS = 300


def excerpt(response: httpx.Response, limit: int = EXCERPT_CHARS) -> str:
    """The start of an answer's body on one line (kept as a dead message's reason)."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    text = " ".join(text.split())
    return redact(text if len(text) <= limit else text[: limit - 1] + "…")


def wait_secs(response: httpx.Response, now: float | None = None) -> float | None:
    """How long the answer asks to wait: ``retry-after-ms``, ``Retry-After`` (seconds or an
    HTTP date), or a JSON body's ``retry_after`` (Discord, seconds); None: it does not ask."""
    headers = response.headers
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    after = headers.get("retry-after")
    if after is not None:
        after = after.strip()
        try:
            return max(0.0, float(after))
        except ValueError:
            try:
                when = parsedate_to_datetime(after)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - (time.time() if now is None else now))
    if response.status_code == 429:
        try:
            body = json.loads(response.content or b"null")
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
            return max(0.0, float(body["retry_after"]))
    return None


def answer_error(what: str, response: httpx.Response) -> DeliveryError | None:
    """``None`` for a 2xx answer, else the DeliveryError it means (``what`` names the
    destination in the message, e.g. ``"webhook 'ops-hook'"``)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    said = f"{what} answered {status}" + (f": {body}" if (body := excerpt(response)) else "")
    wait = wait_secs(response)
    if status == 429:
        return DeliveryError(said, retry_after=1.0 if wait is None else wait)
    if wait is not None and status >= 500:
        return DeliveryError(said, retry_after=wait)
    if status in REFUSING_STATUS:
        return DeliveryError(said, refusing=True)
    if status >= 500 or status in RETRIED_STATUS:
        return DeliveryError(said)
    return DeliveryError(said, permanent=True)


def transport_error(what: str, exc: httpx.HTTPError) -> DeliveryError:
    """A request that got no answer: DNS failure or connection refused (``ConnectError``)
    means the destination refuses as a whole; a timeout or a dropped connection is a failed
    attempt of this message."""
    line = (
        redact(f"{type(exc).__name__}: {exc}".splitlines()[0]) if str(exc) else type(exc).__name__
    )
    if isinstance(exc, httpx.ConnectError):
        return DeliveryError(f"{what} unreachable: {line}", refusing=True)
    return DeliveryError(f"{what} failed: {line}")
