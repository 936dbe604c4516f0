from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from gateway.app import Gateway
from starpod_cron import SchedulerSettings, StoreSettings
from starpod_cron.clock import Clock
from starpod_cron.config import (
    AgentConfig,
    ExecutorConfig,
    GatewayConfig,
    TelegramConfig,
    TokenConfig,
)

TOKENS = {
    "alice-token-0123456789": TokenConfig("alice"),
    "bob-token-0123456789": TokenConfig("bob"),
    "root-token-0123456789": TokenConfig("root", admin=True),
}


def config(tmp_path: Path, **sections: Any) -> AgentConfig:
    base = AgentConfig(
        store_settings=StoreSettings(retry_backoff_secs=(0.2,)),
        scheduler=SchedulerSettings(tick_secs=1, lease_secs=5),
        executor=ExecutorConfig(kind="python", target="tests.gateway.targets:run"),
        gateway=GatewayConfig(
            port=0,
            http_port=0,
            tokens=TOKENS,
            delivery_backoff_secs=(0.2, 0.5),
            delivery_lease_secs=2,
            min_interval_secs=1,
        ),
        telegram=TelegramConfig(token_env="STARPOD_TEST_NO_TOKEN"),
        configured=frozenset({"executor"}),
    )
    return replace(base, **sections)


@asynccontextmanager
async def running_gateway(
    cfg: AgentConfig, db: str, clock: Clock | None = None
) -> AsyncIterator[Gateway]:
    gateway = Gateway(cfg, db_url=db, clock=clock)
    task = asyncio.create_task(gateway.run(), name="test-gateway")
    ready = asyncio.create_task(gateway.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the start-up error
    assert ready in done, "gateway did not start"
    try:
        yield gateway
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 20)


@asynccontextmanager
async def telegram_gateway(
    tmp_path: Path, api_url: str, cfg: AgentConfig | None = None, **telegram: Any
) -> AsyncIterator[Gateway]:
    """A gateway (in this process) whose bot talks to the Bot API stand-in at ``api_url``,
    with the stand-in's token in ``$STARPOD_TEST_TG_TOKEN`` (set by the caller)."""
    base = cfg or config(tmp_path)
    settings = TelegramConfig(
        token_env="STARPOD_TEST_TG_TOKEN", base_url=api_url, poll_timeout_secs=1, **telegram
    )
    async with running_gateway(replace(base, telegram=settings), str(tmp_path / "tg.db")) as gw:
        yield gw


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(config(tmp_path), str(tmp_path / "gw.db")) as gw:
        yield gw


class WsClient:
    """A test client: requests with ids, events collected as they arrive."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.events: list[dict[str, Any]] = []
        self.responses: dict[Any, dict[str, Any]] = {}
        self._seq = 0
        self._arrived = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.conn:
            message = json.loads(frame)
            if "ok" in message:
                self.responses[message.get("id")] = message
            else:
                self.events.append(message)
            self._arrived.set()

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        request_id = f"r{self._seq}"
        await self.conn.send(json.dumps({"id": request_id, "type": kind, **fields}))
        return await self.response(request_id)

    async def response(self, request_id: Any, timeout: float = 10) -> dict[str, Any]:
        await self.until(lambda: request_id in self.responses, timeout)
        return self.responses.pop(request_id)

    async def until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        async def wait() -> None:
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        await self.conn.close()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


TRANSPORTS = ("port", "http")
"""The two carriers of one WebSocket protocol: the standalone port, /ws on the HTTP port."""


@pytest.fixture(params=TRANSPORTS)
def via(request: pytest.FixtureRequest) -> str:
    """Run a WebSocket test over each transport (``ws_url(gateway, via)``)."""
    return str(request.param)


def ws_url(gateway: Gateway, via: str = "port") -> str:
    """Where a client opens the protocol: the standalone port, or ``/ws`` on the HTTP port."""
    if via == "http":
        return f"ws://127.0.0.1:{gateway.http_port}/ws"
    assert gateway.ws is not None
    return f"ws://127.0.0.1:{gateway.ws.port}/"


@asynccontextmanager
async def ws_client(
    gateway: Gateway, token: str | None = None, via: str = "port", **kwargs: Any
) -> AsyncIterator[WsClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with connect(ws_url(gateway, via), additional_headers=headers, **kwargs) as conn:
        client = WsClient(conn)
        try:
            yield client
        finally:
            await client.close()


def tab_secret(login_page: str) -> str:
    """The tab secret a successful log-in POST hands to the page (gateway/login.py)."""
    (secret,) = re.findall(r'name="starpod-csrf" content="([0-9a-f]{64})"', login_page)
    return str(secret)


def tab_protocols(secret: str) -> list[Subprotocol]:
    """The subprotocols the dashboard offers at the WebSocket handshake."""
    return [Subprotocol("starpod"), Subprotocol(f"starpod.csrf.{secret}")]
