"""An OpenAI-compatible chat-completions stand-in on 127.0.0.1 (no network): tests script its
answers (text, errors, tool calls) and read the requests it got. With :class:`Limits` it
admits so many requests per second and tokens per minute, announces what remains in OpenAI's
rate-limit headers on every answer and refuses what goes past with a 429."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    """One function call as a model sends it."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


@dataclass
class Reply:
    """What the fake server does with one request."""

    status: int = 200
    content: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: dict[str, int] | None = None
    raw: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    """Function calls the model makes instead of (or with) text."""


def go_duration(secs: float) -> str:
    """Seconds as OpenAI writes a reset: ``6m0s``, ``1s``, ``20ms``, ``1h2m3.5s``."""
    if secs < 1:
        return f"{max(0, round(secs * 1000))}ms"
    hours, rest = divmod(secs, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{int(hours)}h" if hours else ""
    text += f"{int(minutes)}m" if hours or minutes else ""
    return text + f"{round(seconds, 3):g}s"


@dataclass
class Bucket:
    """A budget that refills continuously up to ``capacity`` (``per_sec``), as OpenAI's."""

    capacity: float
    per_sec: float
    level: float = -1.0
    at: float = 0.0

    def _fill(self, now: float) -> None:
        if self.level < 0:
            self.level, self.at = self.capacity, now
        self.level = min(self.capacity, self.level + (now - self.at) * self.per_sec)
        self.at = now

    def take(self, amount: float, now: float) -> bool:
        self._fill(now)
        if self.level < amount:
            return False
        self.level -= amount
        return True

    def headers(self, name: str, now: float) -> dict[str, str]:
        self._fill(now)
        reset = (self.capacity - self.level) / self.per_sec
        return {
            f"x-ratelimit-limit-{name}": str(int(self.capacity)),
            f"x-ratelimit-remaining-{name}": str(int(self.level)),
            f"x-ratelimit-reset-{name}": go_duration(reset),
        }


@dataclass
class Limits:
    """What the stand-in admits, announced in OpenAI's headers on every answer; a request
    past either budget gets a 429 (counted in ``FakeOpenAI.refused``)."""

    requests_per_sec: float
    tokens_per_min: float

    def buckets(self) -> tuple[Bucket, Bucket]:
        return (
            Bucket(self.requests_per_sec, self.requests_per_sec),
            Bucket(self.tokens_per_min, self.tokens_per_min / 60),
        )


def usage_of(body: dict[str, Any], content: str) -> dict[str, int]:
    """Tokens as the stand-in counts them: about one per four characters."""
    prompt = sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4 + 1
    completion = len(content) // 4 + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class FakeOpenAI:
    def __init__(self, limits: Limits | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Reply] = []
        self.base_url = ""
        self.count_usage = False
        """Report usage as a real model roughly would: UTF-8 bytes / 4 of the messages' and
        of the answer's text (a reply with its own usage keeps it)."""
        self.limits = limits
        self._buckets = limits.buckets() if limits else None
        self.refused = 0
        """Requests answered 429 for going past the announced limits."""
        self.admitted_at: list[float] = []
        """When each admitted request arrived (monotonic seconds)."""
        self.tokens_charged = 0
        """Tokens the admitted requests used up of the budget."""

    def _admit(self, body: dict[str, Any], reply: Reply) -> tuple[bool, dict[str, str]]:
        """Whether the budgets admit this request (charged its tokens), and the headers
        announcing them after it."""
        if self._buckets is None:
            return True, {}
        now = time.monotonic()
        requests, tokens = self._buckets
        cost = (reply.usage or usage_of(body, reply.content))["total_tokens"]
        requests.take(0, now)  # refill both up to now
        tokens.take(0, now)
        ok = requests.level >= 1 and tokens.level >= cost
        if ok:
            requests.take(1, now)
            tokens.take(cost, now)
            self.admitted_at.append(now)
            self.tokens_charged += cost
        else:
            self.refused += 1
        return ok, requests.headers("requests", now) | tokens.headers("tokens", now)

    def answer(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        reply = (
            self.script.pop(0)
            if self.script
            else Reply(content=f"echo: {body['messages'][-1]['content']}")
        )
        admitted, announced = self._admit(body, reply)
        if not admitted:
            return web.json_response(
                {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}},
                status=429,
                headers=announced,
            )
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = announced | reply.headers
        if reply.raw is not None:
            return web.Response(status=reply.status, text=reply.raw, headers=headers)
        if reply.status != 200:
            return web.json_response(
                {"error": {"message": reply.content}}, status=reply.status, headers=headers
            )
        payload: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                    "message": {
                        "role": "assistant",
                        "content": None if reply.tool_calls else reply.content,
                        **({"tool_calls": reply.tool_calls} if reply.tool_calls else {}),
                    },
                }
            ],
        }
        if reply.usage is not None:
            payload["usage"] = reply.usage
        elif self.count_usage:
            sent = "".join(str(m.get("content") or "") for m in body["messages"])
            payload["usage"] = {
                "prompt_tokens": -(-len(sent.encode()) // 4),
                "completion_tokens": -(-len(reply.content.encode()) // 4),
            }
        elif self.limits is not None:
            payload["usage"] = usage_of(body, reply.content)
        return web.json_response(payload, headers=headers)


@asynccontextmanager
async def running_openai(limits: Limits | None = None) -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(limits)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.2, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.base_url = f"http://{host}:{port}/v1"
    try:
        yield fake
    finally:
        await runner.cleanup()
