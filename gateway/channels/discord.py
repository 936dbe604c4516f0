"""Discord destinations (``kind = "discord"``): a run's message posted to a webhook as
``{"content": …}`` pieces of at most 2,000 characters (Discord's limit), in order, each
recorded with ``progress`` (a restart resumes after the last piece sent). Mentions are off
(``allowed_mentions``): an agent writing ``@everyone`` pings no one.

Rate limits: every answer says what is left of the webhook's bucket
(``X-RateLimit-Remaining``, ``X-RateLimit-Reset-After``); when nothing is left the next
piece waits for the reset (a short wait here, a longer one through the outbox, untried). A 429
waits its ``retry_after`` (JSON body, or ``Retry-After``) without spending an attempt.

:meth:`DiscordChannel.check` GETs the webhook: Discord answers with the webhook object (200)
without posting, and 401/404 once it is deleted. The URL (its token is in the path) and that
answer (it holds the token too) never appear in messages or logs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from starpod_cron import Delivery

from ..outbox import DeliveryError, Progress
from .http import answer_error, transport_error
from .text import message_of, split_text

CONTENT_CHARS = 2_000
LONGEST_PAUSE_SECS = 5.0
"""A bucket reset further away than this is waited through the outbox, not in a send."""
NO_MENTIONS: dict[str, Any] = {"parse": []}


def discord_pieces(payload: dict[str, Any], limit: int = CONTENT_CHARS) -> list[str]:
    """The ``content`` of each message for a delivery's payload, in order (the same every
    time): the title in bold, the body, the details in small print."""
    message = message_of(payload)
    text = f"**{message.title}**"
    if message.body:
        text += f"\n\n{message.body}"
    if message.details:
        text += f"\n-# {message.details}"
    return [piece for piece in split_text(text, limit) if piece.strip()]


def _header_float(answer: httpx.Response, name: str) -> float | None:
    value = answer.headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class DiscordChannel:
    """The outbox channel of one Discord webhook (``name``: ``dest:<name>``)."""

    def __init__(self, name: str, url: str, client: httpx.AsyncClient) -> None:
        self.name = name
        self._url = url
        self._client = client
        self._what = f"Discord {name!r}"
        self._not_before = 0.0  # loop time: the bucket is empty until then

    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        pieces = discord_pieces(delivery.payload)
        for index in range(delivery.progress, len(pieces)):
            await self._pace()
            body = {"content": pieces[index], "allowed_mentions": NO_MENTIONS}
            answer = await self._request("POST", body)
            error = answer_error(self._what, answer)
            if error is not None:
                raise error
            if index + 1 < len(pieces):
                await progress(index + 1)

    async def check(self) -> None:
        """GET the webhook (posts nothing): DeliveryError (``refusing``) if Discord no longer
        knows it or cannot be reached."""
        answer = await self._request("GET", None)
        error = answer_error(self._what, answer)
        if error is not None and error.refusing:
            raise error

    async def _pace(self) -> None:
        """Wait until the webhook's bucket has room again (as its last answer said)."""
        wait = self._not_before - asyncio.get_running_loop().time()
        if wait <= 0:
            return
        if wait > LONGEST_PAUSE_SECS:
            raise DeliveryError(
                f"{self._what}: rate limit bucket empty for {wait:.1f}s", retry_after=wait
            )
        await asyncio.sleep(wait)

    async def _request(self, method: str, body: dict[str, Any] | None) -> httpx.Response:
        try:
            answer = await self._client.request(method, self._url, json=body)
        except httpx.HTTPError as exc:
            # not chained: the cause names the request, whose URL is the secret
            raise transport_error(self._what, exc) from None
        remaining = _header_float(answer, "x-ratelimit-remaining")
        reset_after = _header_float(answer, "x-ratelimit-reset-after")
        if remaining is not None and remaining <= 0 and reset_after is not None:
            self._not_before = asyncio.get_running_loop().time() + max(0.0, reset_after)
        return answer
