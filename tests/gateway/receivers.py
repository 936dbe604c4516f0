"""Slack- and Discord-shaped webhook receivers on 127.0.0.1 (aiohttp), driven by tests: they
check each body against the service's limits (answering 400 as the service would), record
what arrived and when (``time.monotonic()``), and answer from a script (``answers``: one
``(status, headers, body)`` per POST, then 200/204)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SLACK_PATH = "/services/T0001/B0001/slack-secret-token"
DISCORD_PATH = "/api/webhooks/1234/discord-secret-token"

Answer = tuple[int, dict[str, str], str]


@dataclass
class Receiver:
    kind: str  # "slack" | "discord"
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    """The bodies accepted (2xx), in arrival order."""
    times: list[float] = field(default_factory=list)
    """When each accepted body arrived (time.monotonic())."""
    posts: int = 0
    gets: int = 0
    answers: list[Answer] = field(default_factory=list)
    bucket: int | None = None
    """Discord: requests per ``bucket_secs`` window; the answers say what is left."""
    bucket_secs: float = 1.0
    over_bucket: int = 0
    """Discord: posts that arrived while the bucket was empty (a client ignoring the headers)."""
    _window: tuple[float, int] = (0.0, 0)

    def texts(self) -> list[str]:
        if self.kind == "discord":
            return [str(body["content"]) for body in self.received]
        return [
            block["text"]["text"]
            for body in self.received
            for block in body["blocks"]
            if block["type"] == "section"
        ]


def _slack_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not body.get("text"):
        return "no_text"
    blocks = body.get("blocks", [])
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        text = block.get("text", {}).get("text", "") if block.get("type") == "section" else "x"
        if not text or len(text) > 3000:
            return "invalid_blocks"
    return None


def _discord_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not body.get("content"):
        return '{"code": 50006, "message": "Cannot send an empty message"}'
    if len(body["content"]) > 2000:
        return '{"code": 50035, "message": "Invalid Form Body"}'
    return None


def _bucket_headers(receiver: Receiver) -> dict[str, str]:
    if receiver.bucket is None:
        return {}
    now = time.monotonic()
    start, used = receiver._window
    if now - start >= receiver.bucket_secs:
        start, used = now, 0
    if used >= receiver.bucket:
        receiver.over_bucket += 1
    used += 1
    receiver._window = (start, used)
    left = max(0, receiver.bucket - used)
    reset = max(0.0, start + receiver.bucket_secs - now)
    return {"X-RateLimit-Remaining": str(left), "X-RateLimit-Reset-After": f"{reset:.3f}"}


def _app(receiver: Receiver, path: str) -> web.Application:
    async def post(request: web.Request) -> web.Response:
        receiver.posts += 1
        raw = await request.read()
        headers = _bucket_headers(receiver) if receiver.kind == "discord" else {}
        if receiver.answers:
            status, extra, text = receiver.answers.pop(0)
            return web.Response(status=status, headers=headers | extra, text=text)
        body = json.loads(raw or b"null")
        check = _slack_problem if receiver.kind == "slack" else _discord_problem
        problem = check(body)
        if problem is not None:
            return web.Response(status=400, headers=headers, text=problem)
        receiver.received.append(body)
        receiver.times.append(time.monotonic())
        if receiver.kind == "slack":
            return web.Response(text="ok")
        return web.Response(status=204, headers=headers)

    async def get(request: web.Request) -> web.Response:
        receiver.gets += 1
        if receiver.answers:
            status, extra, text = receiver.answers.pop(0)
            return web.Response(status=status, headers=extra, text=text)
        if receiver.kind == "slack":
            return web.Response(status=405, text="invalid_method")
        return web.json_response({"id": "1234", "type": 1, "token": "discord-secret-token"})

    app = web.Application()
    app.router.add_post(path, post)
    app.router.add_get(path, get)
    return app


@asynccontextmanager
async def receiving(kind: str) -> AsyncIterator[Receiver]:
    """A running ``kind`` ("slack" or "discord") receiver; its webhook URL is ``.url``."""
    receiver = Receiver(kind)
    path = SLACK_PATH if kind == "slack" else DISCORD_PATH
    runner = web.AppRunner(_app(receiver, path), shutdown_timeout=0.2, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}{path}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
