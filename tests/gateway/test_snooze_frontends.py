"""Snooze over HTTP and the WebSocket: the same operation as the CLI and the Telegram button,
with the same owner check and the same refusals (4xx, never 500; nothing written)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from tests.gateway.conftest import config, running_gateway, ws_client

ALICE = {"Authorization": "Bearer alice-token-0123456789"}
BOB = {"Authorization": "Bearer bob-token-0123456789"}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with running_gateway(config(tmp_path), str(tmp_path / "snooze.db")) as gw:
        assert gw.http_port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}") as client:
            yield gw, client


async def test_snooze_over_http_and_websocket(http: tuple[Gateway, httpx.AsyncClient]) -> None:
    gateway, client = http
    added = await client.post(
        "/api/jobs", json={"name": "digest", "prompt": "p", "every": "1h"}, headers=ALICE
    )
    due = datetime.fromisoformat(added.json()["job"]["next_run"])
    strangers = await client.post("/api/jobs/digest/snooze", json={"for": "1h"}, headers=BOB)
    assert strangers.status_code == 404
    snoozed = await client.post("/api/jobs/digest/snooze", json={"for": "30m"}, headers=ALICE)
    assert snoozed.status_code == 200, snoozed.text
    assert datetime.fromisoformat(snoozed.json()["job"]["next_run"]) == due + timedelta(minutes=30)
    for body, words in [({"for": "later"}, "invalid duration 'later'"), ({}, "missing field")]:
        refused = await client.post("/api/jobs/digest/snooze", json=body, headers=ALICE)
        assert refused.status_code == 400 and words in refused.json()["error"]["message"]
    async with ws_client(gateway, "alice-token-0123456789") as ws:
        answer = await ws.request("cron.snooze", name="digest", **{"for": "30m"})
        assert answer["ok"], answer
        moved = datetime.fromisoformat(answer["data"]["next_run"])
        assert moved == due + timedelta(hours=1)
        await ws.request("cron.pause", name="digest")
        paused = await ws.request("cron.snooze", name="digest", **{"for": "1h"})
        assert not paused["ok"] and "resume it instead" in paused["error"]["message"]
    job = (await client.get("/api/jobs/digest", headers=ALICE)).json()["job"]
    assert job["schedule"]["text"] == "every 1h"
