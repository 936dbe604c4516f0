"""An OpenAI-compatible chat-completions stand-in on 127.0.0.1 (no network): tests script its
answers (text, errors, tool calls) and read the requests it got."""

from __future__ import annotations

import asyncio
import json
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


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Reply] = []
        self.base_url = ""
        self.count_usage = False
        """Report usage as a real model roughly would: UTF-8 bytes / 4 of the messages' and
        of the answer's text (a reply with its own usage keeps it)."""

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
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.raw is not None:
            return web.Response(status=reply.status, text=reply.raw, headers=reply.headers)
        if reply.status != 200:
            return web.json_response(
                {"error": {"message": reply.content}}, status=reply.status, headers=reply.headers
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
        return web.json_response(payload)


@asynccontextmanager
async def running_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
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
