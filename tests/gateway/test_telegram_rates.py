"""The Telegram channel keeps to Telegram's rates (about one message a second per chat, 30 a
second in all), measured at the Bot API stand-in, in real time."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gateway.telegram import TelegramBot
from starpod_cron import CronStore
from starpod_cron.config import TelegramConfig
from starpod_cron.operations import JobOperations
from tests.gateway.botapi import TOKEN, BotApi, running_botapi


@asynccontextmanager
async def telegram(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[BotApi, TelegramBot]]:
    async with running_botapi() as api:
        store = await CronStore.open(str(tmp_path / "rates.db"))
        bot = TelegramBot(
            TelegramConfig(base_url=api.base_url, **settings), TOKEN, JobOperations(store)
        )
        await bot.app.initialize()
        try:
            yield api, bot
        finally:
            await bot.app.shutdown()
            await store.close()


async def test_one_chat_gets_at_most_one_message_a_second_in_order(tmp_path: Path) -> None:
    async with telegram(tmp_path) as (api, bot):
        for i in range(5):
            await bot.send(42, f"message {i}")
        started = time.monotonic()
        await asyncio.gather(bot.send(43, "other chat"), bot.send(44, "and another"))
        others = time.monotonic() - started
    assert [m["text"] for m in api.sent[:5]] == [f"message {i}" for i in range(5)]
    at = [m["at"] for m in api.sent[:5]]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    assert others < 0.9  # other chats do not wait for this one


async def test_all_chats_together_keep_to_the_overall_rate(tmp_path: Path) -> None:
    async with telegram(tmp_path, messages_per_sec=5, chat_messages_per_sec=100) as (api, bot):
        await asyncio.gather(*(bot.send(1000 + i, f"to chat {i}") for i in range(10)))
    at = sorted(m["at"] for m in api.sent)
    assert len(at) == 10
    assert at[-1] - at[0] >= 1.7  # evenly spaced, 0.2 s apart: no burst
    busiest = max(sum(1 for t in at if start <= t < start + 1) for start in at)
    assert busiest <= 6, at


async def test_a_per_chat_rate_can_be_raised(tmp_path: Path) -> None:
    async with telegram(tmp_path, chat_messages_per_sec=20) as (api, bot):
        started = time.monotonic()
        for i in range(5):
            await bot.send(42, f"quick {i}")
        assert time.monotonic() - started < 0.9
    assert len(api.sent) == 5
