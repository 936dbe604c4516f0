"""A webhook receiver on 127.0.0.1 for the destination tests: it verifies every request's
Standard Webhooks signature with the ``standardwebhooks`` package (a request it cannot verify
is answered 401 and counted in ``unverified``), records what it got, and answers what the
test scripted (``answers``: statuses used one per request, then 200). It can go down (the
port refuses connections) and come back on the same port."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class Received:
    webhook_id: str
    timestamp: str
    body: dict[str, Any]
    path: str


@dataclass
class HookReceiver:
    secret: str = field(default_factory=new_secret)
    answers: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    """Scripted answers, one per request: a status, or a status with headers."""
    hold_secs: float = 0.0
    """Wait this long before answering (a slow receiver: the delivery stays in flight)."""
    requests: list[Received] = field(default_factory=list)
    """Every verified request, answered 2xx or not, in arrival order."""
    accepted: list[Received] = field(default_factory=list)
    """The verified requests answered 2xx."""
    unverified: int = 0
    port: int = 0
    host: str = "127.0.0.1"
    """Where it listens (the chaos harness: an address of its hub namespace)."""
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.accepted]

    async def _handle(self, request: web.Request) -> web.Response:
        if request.method == "HEAD":
            return web.Response(status=200)
        raw = await request.read()
        try:
            Webhook(self.secret).verify(raw, dict(request.headers))
        except WebhookVerificationError:
            self.unverified += 1
            return web.Response(status=401, text="bad signature")
        got = Received(
            request.headers["webhook-id"],
            request.headers["webhook-timestamp"],
            json.loads(raw),
            request.path,
        )
        self.requests.append(got)
        if self.hold_secs:
            await asyncio.sleep(self.hold_secs)
        answer = self.answers.pop(0) if self.answers else 200
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        if 200 <= status < 300:
            self.accepted.append(got)
        return web.Response(status=status, text=f"answer {status}", headers=headers)

    async def start(self) -> None:
        if not self.port:
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()

    async def stop(self) -> None:
        """Down: the port refuses connections (start() brings it back on the same port)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@asynccontextmanager
async def running_receiver(**kwargs: Any) -> AsyncIterator[HookReceiver]:
    receiver = HookReceiver(**kwargs)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
