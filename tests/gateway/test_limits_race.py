"""``[gateway] max_jobs_per_user`` under 40 concurrent adds through every front end: HTTP,
WebSocket, MCP and the Telegram commands each store exactly the limit and refuse the rest with
the limit error (the store counts inside its own add transaction)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from telegram import Update

from gateway.telegram import TelegramBot
from starpod_cron import CronStore
from starpod_cron.config import GatewayConfig, TelegramConfig
from starpod_cron.operations import JobOperations, UserLimits
from tests.gateway.botapi import TOKEN, running_botapi
from tests.gateway.conftest import TOKENS, config, running_gateway, ws_client
from tests.processes import mcp_http

LIMIT, ATTEMPTS = 5, 40
LIMIT_KEY = "[gateway] max_jobs_per_user"


async def test_http_adds_never_pass_the_limit(tmp_path: Path, url: str) -> None:
    limited = GatewayConfig(port=0, http_port=0, tokens=TOKENS, max_jobs_per_user=LIMIT)
    async with running_gateway(replace(config(tmp_path), gateway=limited), url) as gw:
        assert gw.store is not None and gw.http_port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}") as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/api/jobs",
                        json={"name": f"h{i}", "prompt": "p", "every": "1h"},
                        headers={"Authorization": "Bearer alice-token-0123456789"},
                    )
                    for i in range(ATTEMPTS)
                )
            )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * LIMIT + [403] * (ATTEMPTS - LIMIT), statuses
        for refused in (a for a in answers if a.status_code == 403):
            error = refused.json()["error"]
            assert error["code"] == "limit" and LIMIT_KEY in error["message"], error
        assert len(await gw.store.list_jobs_for_user("alice")) == LIMIT


async def test_websocket_adds_never_pass_the_limit(tmp_path: Path, url: str) -> None:
    limited = GatewayConfig(port=0, http_port=0, tokens=TOKENS, max_jobs_per_user=LIMIT)
    async with running_gateway(replace(config(tmp_path), gateway=limited), url) as gw:
        assert gw.store is not None
        async with (
            ws_client(gw, "bob-token-0123456789") as one,
            ws_client(gw, "bob-token-0123456789") as two,
        ):
            replies = await asyncio.gather(
                *(
                    (one, two)[i % 2].request("cron.add", name=f"w{i}", prompt="p", every="1h")
                    for i in range(ATTEMPTS)
                )
            )
        assert sum(r["ok"] for r in replies) == LIMIT, replies
        for r in (r for r in replies if not r["ok"]):
            assert r["error"]["code"] == "limit" and LIMIT_KEY in r["error"]["message"], r
        assert len(await gw.store.list_jobs_for_user("bob")) == LIMIT
        async with ws_client(gw, "root-token-0123456789") as root:  # admins are never limited
            made = await root.request("cron.add", name="r", prompt="p", every="1h", user_id="bob")
            assert made["ok"], made
        assert len(await gw.store.list_jobs_for_user("bob")) == LIMIT + 1


@pytest.mark.timeout(60)
@pytest.mark.slow
async def test_mcp_tool_calls_never_pass_the_limit(tmp_path: Path) -> None:
    """Eight MCP sessions over streamable HTTP, five calls each, all at once."""
    db = str(tmp_path / "jobs.db")
    (tmp_path / "agent.toml").write_text(
        f'[gateway]\nmax_jobs_per_user = {LIMIT}\n[gateway.tokens]\n"alice-token-0123456789" = '
        '{ user_id = "alice" }\n'
    )
    async with mcp_http(tmp_path, db) as mcp:
        url = mcp.url

        async def session(calls: range) -> list[Any]:
            http = httpx2.AsyncClient(headers={"Authorization": "Bearer alice-token-0123456789"})
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                return list(
                    await asyncio.gather(
                        *(
                            client.call_tool(
                                "cron_add", {"name": f"m{i}", "prompt": "p", "every": "1h"}
                            )
                            for i in calls
                        )
                    )
                )

        sessions = await asyncio.gather(*(session(range(i, ATTEMPTS, 8)) for i in range(8)))
        results = [r for one in sessions for r in one]
    refused = [r.content[0].text for r in results if r.is_error]
    assert len(refused) == ATTEMPTS - LIMIT, refused
    assert all(LIMIT_KEY in text for text in refused), refused
    async with CronStore.open(db) as store:
        assert len(await store.list_jobs_for_user("alice")) == LIMIT


def _command(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    command = text.split()[0]
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1000 + update_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "owner"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        },
    }


async def test_telegram_commands_never_pass_the_limit(tmp_path: Path) -> None:
    """The bot's poll loop hands updates over one at a time, so 40 updates typed into the Bot
    API stand-in would never overlap; here the real python-telegram-bot Application processes
    40 ``/every`` updates at once (each answer sent to the stand-in), as several pollers or a
    concurrent-updates Application would."""
    owner = 42
    async with running_botapi() as api, CronStore.open(str(tmp_path / "tg.db")) as store:
        ops = JobOperations(store, limits=UserLimits(max_jobs_per_user=LIMIT))
        settings = TelegramConfig(base_url=api.base_url, allowed_user_ids=(owner,))
        bot = TelegramBot(settings, TOKEN, ops)
        await bot.app.initialize()
        try:
            updates = [
                Update.de_json(_command(i, owner, f"/every 1h name=t{i} stretch"), bot.app.bot)
                for i in range(1, ATTEMPTS + 1)
            ]
            await asyncio.gather(*(bot._handle(u) for u in updates))
        finally:
            await bot.app.shutdown()
        texts = api.texts(owner)
        assert len(texts) == ATTEMPTS, texts
        assert sum(t.startswith("Scheduled:") for t in texts) == LIMIT, texts
        refused = [t for t in texts if not t.startswith("Scheduled:")]
        assert all(t.startswith("Error:") and LIMIT_KEY in t for t in refused), refused
        assert len(await store.list_jobs_for_user(f"tg:{owner}")) == LIMIT
