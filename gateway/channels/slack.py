"""Slack destinations (``kind = "slack"``): a run's message posted to an incoming webhook as
``{"text": …, "blocks": [section blocks]}``.

- The body goes into ``mrkdwn`` section blocks of at most 3,000 characters (Slack's limit for
  a section's text, counted after escaping ``&``, ``<``, ``>``: so an agent's ``<!channel>``
  stays text and mentions no one); a message holds at most 50 blocks and about 12,000
  characters (well under Slack's limits for one message), so a long result becomes several
  messages, sent in order, each recorded with ``progress`` (a restart resumes after the last
  one sent).
- About one message a second per webhook (Slack's limit for incoming webhooks; ``rate_per_sec``),
  paced by an :class:`aiolimiter.AsyncLimiter`; a 429 ``Retry-After`` waits that long without
  spending an attempt (:mod:`gateway.channels.http`).
- What an answer means is :mod:`gateway.channels.http`'s rules, plus 410 (``channel_is_archived``):
  the destination as a whole refuses until the channel is unarchived.
- :meth:`SlackChannel.check` cannot ask Slack anything without posting (incoming webhooks
  answer only POST): it posts an empty object, which Slack rejects with 400 (``no_text``)
  without posting anything while the webhook is valid, and answers 403/404/410 once it is
  revoked or its channel is gone.

The webhook URL carries its secret in the path: it never appears in messages or logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from starpod_cron import Delivery

from ..outbox import DeliveryError, Progress
from .http import answer_error, excerpt, transport_error
from .text import message_of, split_text

SECTION_CHARS = 3_000
MAX_BLOCKS = 50
MESSAGE_CHARS = 12_000
ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
GONE = 410  # channel_is_archived: every message to this webhook would be refused alike


def escape(text: str) -> str:
    """``text`` as Slack ``mrkdwn`` shows it literally (its three control characters)."""
    return "".join(ESCAPES.get(c, c) for c in text)


def _cost(char: str) -> int:
    return len(ESCAPES.get(char, char))


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _chars(block: Mapping[str, Any]) -> int:
    if block["type"] == "context":
        return sum(len(e["text"]) for e in block["elements"])
    return len(block["text"]["text"])


def slack_messages(
    payload: Mapping[str, Any],
    *,
    section_chars: int = SECTION_CHARS,
    max_blocks: int = MAX_BLOCKS,
    message_chars: int = MESSAGE_CHARS,
) -> list[dict[str, Any]]:
    """The webhook bodies for a delivery's payload, in order (the same ones every time)."""
    message = message_of(payload)
    title = escape(message.title)
    blocks = [_section(f"*{title}*")]
    if message.body:
        body = split_text(message.body, section_chars, _cost)
        blocks += [_section(escape(piece)) for piece in body if piece.strip()]
    if message.details:
        details = {"type": "mrkdwn", "text": escape(message.details)[:section_chars]}
        blocks.append({"type": "context", "elements": [details]})
    messages: list[list[dict[str, Any]]] = [[]]
    size = 0
    for block in blocks:
        chars = _chars(block)
        if messages[-1] and (len(messages[-1]) >= max_blocks or size + chars > message_chars):
            messages.append([])
            size = 0
        messages[-1].append(block)
        size += chars
    count = len(messages)
    return [
        {"text": title if count == 1 else f"{title} ({n}/{count})", "blocks": chunk}
        for n, chunk in enumerate(messages, 1)
    ]


class SlackChannel:
    """The outbox channel of one Slack incoming webhook (``name``: ``dest:<name>``)."""

    def __init__(
        self, name: str, url: str, client: httpx.AsyncClient, *, rate_per_sec: float = 1.0
    ) -> None:
        if rate_per_sec <= 0:
            raise ValueError(f"{name}: rate_per_sec must be positive, not {rate_per_sec}")
        self.name = name
        self._url = url
        self._client = client
        self._what = f"Slack {name!r}"
        # one message per 1/rate seconds, no bursts: Slack counts per webhook and second
        self._limiter = AsyncLimiter(1, 1 / rate_per_sec)

    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        messages = slack_messages(delivery.payload)
        for index in range(delivery.progress, len(messages)):
            error = self._meaning(await self._post(messages[index]))
            if error is not None:
                raise error
            if index + 1 < len(messages):
                await progress(index + 1)

    async def check(self) -> None:
        """Post an empty object (Slack posts nothing and answers 400 while the webhook is
        valid): DeliveryError (``refusing``) if the webhook is revoked or unreachable."""
        answer = await self._post({})
        if answer.status_code == 400:
            return
        error = self._meaning(answer)
        if error is not None and error.refusing:
            raise error

    async def _post(self, body: Mapping[str, Any]) -> httpx.Response:
        async with self._limiter:
            try:
                return await self._client.post(self._url, json=body)
            except httpx.HTTPError as exc:
                # not chained: the cause names the request, whose URL is the secret
                raise transport_error(self._what, exc) from None

    def _meaning(self, answer: httpx.Response) -> DeliveryError | None:
        if answer.status_code == GONE:
            said = f"{self._what} answered {GONE}: {excerpt(answer)}"
            return DeliveryError(said, refusing=True)
        return answer_error(self._what, answer)
