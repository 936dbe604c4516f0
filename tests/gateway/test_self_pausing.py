"""A job that fails 3 times in a row with pause_after_failures = 3, through the whole gateway:
it pauses itself, and its destinations (an admin's WebSocket, the Telegram chat of agent-level
jobs, here the Bot API stand-in) each get exactly one message saying so; resuming it over the
WebSocket counts afresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from starpod_cron import JobSpec, Schedule
from tests.gateway.botapi import TOKEN, BotApi, running_botapi
from tests.gateway.conftest import telegram_gateway, ws_client
from tests.gateway.test_telegram import until

GROUP = -100123
ROOT = "root-token-0123456789"


@pytest.fixture
async def bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[BotApi, Gateway]]:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    async with (
        running_botapi() as api,
        telegram_gateway(
            tmp_path, api.base_url, allowed_user_ids=(42,), notify_chat_ids=(GROUP,)
        ) as gateway,
    ):
        yield api, gateway


@pytest.mark.timeout(60)
async def test_three_failures_pause_the_job_with_one_message_on_each_destination(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    store = gateway.store
    assert store is not None
    async with ws_client(gateway, ROOT) as root:
        spec = JobSpec(
            name="broken",
            prompt="fail: always",  # the gateway tests' executor raises for it
            schedule=Schedule.interval(every_ms=1000),
            max_retries=0,
            pause_after_failures=3,
        )
        (job_id,) = await store.add_jobs([spec])

        async def paused() -> bool:
            job = await store.get_job(job_id)
            return job is not None and not job.enabled

        for _ in range(300):
            if await paused():
                break
            await asyncio.sleep(0.05)
        job = await store.get_job(job_id)
        assert job is not None and job.paused_reason == "paused after 3 failed runs in a row"

        def told_ws() -> list[str]:
            return [e["notice"] for e in root.events if e.get("notice")]

        def told_tg() -> list[str]:
            return [t for t in api.texts(GROUP) if t.startswith("[broken] notice")]

        await until(lambda: len(told_ws()) == 1 and len(told_tg()) == 1, what="the notices")
        await asyncio.sleep(2.5)  # two more fire times: nothing runs, nothing more is said
        runs = await store.list_runs(job_id, 100)
        assert len(runs) == 3 and all(r.status.value == "failed" for r in runs)
        assert len(told_ws()) == 1 and len(told_tg()) == 1
        (ws,) = told_ws()
        assert ws.startswith("'broken' paused after 3 failed runs in a row; last error: ")
        assert "the model is down" in ws and "`starpod-cron jobs enable broken`" in ws
        (tg,) = told_tg()
        assert tg == f"[broken] notice\n\n{ws}"
        assert sum(t.startswith("[broken] failed") for t in api.texts(GROUP)) == 3

        resumed = await root.request("cron.enable", name="broken")
        assert resumed["ok"], resumed
        job = await store.get_job(job_id)
        assert job is not None and job.enabled and job.consecutive_failures == 0
        await until(lambda: len(told_tg()) == 2, timeout=20, what="the second pause")
        assert len(await store.list_runs(job_id, 100)) == 6  # 3 more failures, then paused
