"""Telegram refusing, with the real python-telegram-bot client against the Bot API stand-in:
a rejected token or flood control makes results wait, never dead, and each is sent once in
order per chat when Telegram takes them again; a chat that refuses on its own (blocked, not
found) has its message dead with the answer kept, and the other chats get theirs."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from starpod_cron import CronStore, Delivery, DeliveryStatus, JobSpec, Schedule
from starpod_cron.config import TelegramConfig
from tests.backends import BACKENDS, store_url
from tests.conftest import eventually
from tests.gateway.botapi import TOKEN, BotApi, running_botapi
from tests.gateway.conftest import config, running_gateway, telegram_gateway
from tests.gateway.test_telegram import until

CHATS = (42, 43, 44)
ROOT = {"Authorization": "Bearer root-token-0123456789"}
GAUGE = re.compile(r'starpod_cron_destination_refusing\{id="123456",kind="telegram"\} (\S+)')


@pytest.fixture
async def bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[BotApi, Gateway]]:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    base = config(tmp_path)
    # 3 attempts 0.2 s then 0.5 s apart: before, ~1 s of refusals made a result dead
    cfg = replace(base, gateway=replace(base.gateway, delivery_max_attempts=3))
    async with (
        running_botapi() as api,
        telegram_gateway(tmp_path, api.base_url, cfg, allowed_user_ids=(42,)) as gateway,
    ):
        yield api, gateway


async def queue_results(store: CronStore, per_chat: int, chats: tuple[int, ...] = CHATS) -> int:
    """One-shot jobs finishing soon, ``per_chat`` results for each chat, interleaved."""
    start = datetime.now(UTC) + timedelta(seconds=0.5)
    specs = [
        JobSpec(
            f"r{i}-{chat}",
            f"report {i} for {chat}",
            Schedule.one_shot(start + timedelta(milliseconds=100 * i)),
            origin={"telegram_chat_id": chat},
        )
        for i in range(per_chat)
        for chat in chats
    ]
    await store.add_jobs(specs)
    return len(specs)


async def telegram_deliveries(store: CronStore) -> list[Delivery]:
    return await store.list_deliveries(0, None, prefix="tg:")


async def all_planned(store: CronStore, count: int) -> list[Delivery]:
    async def planned() -> list[Delivery]:
        found = await telegram_deliveries(store)
        return found if len(found) == count else []

    return await eventually(planned, timeout=15, what=f"{count} results planned")


async def settled(store: CronStore, count: int, timeout: float = 20) -> list[Delivery]:
    """The deliveries once every one is delivered or dead."""
    final = {DeliveryStatus.DELIVERED, DeliveryStatus.DEAD}

    async def done() -> list[Delivery]:
        found = await telegram_deliveries(store)
        ok = len(found) == count and all(d.status in final for d in found)
        return found if ok else []

    return await eventually(done, timeout=timeout, what="every delivery delivered or dead")


def sent_in_order_once(api: BotApi, deliveries: list[Delivery], chat: int) -> None:
    """What the chat received is its results, each once, in the order of their runs."""
    mine = sorted((d for d in deliveries if d.destination == f"tg:{chat}"), key=lambda d: d.id)
    assert api.texts(chat) == [d.payload["text"] for d in mine], chat


async def test_a_rejected_token_holds_every_result_then_each_is_sent_once_in_order(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    store = gateway.store
    assert store is not None and gateway.http_port is not None
    api.token_revoked = True
    count = await queue_results(store, per_chat=3)
    await all_planned(store, count)
    await asyncio.sleep(2)  # three attempts would have made every result dead by now
    waiting = await telegram_deliveries(store)
    assert {d.status for d in waiting} <= {DeliveryStatus.PENDING, DeliveryStatus.SENDING}
    assert all(d.attempts <= 1 for d in waiting), [d.attempts for d in waiting]
    # one message probes on the backoff (0.5 s): not every result, over and over
    before = api.calls.count("sendMessage")
    await asyncio.sleep(2)
    assert api.calls.count("sendMessage") - before <= 6
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text  # a refusing bot does not make it unready
        (shown,) = ready.json()["destinations_refusing"]
        assert (shown["kind"], shown["id"]) == ("telegram", "123456")
        assert "Unauthorized" in shown["error"]
        metrics = (await client.get("/metrics", headers=ROOT)).text
        assert GAUGE.findall(metrics) == ["1.0"]
        assert TOKEN.split(":")[1] not in ready.text + metrics  # never the token's secret

        api.token_revoked = False  # the token works again
        delivered = await settled(store, count)
        await asyncio.sleep(1)  # any duplicate would show up now
        assert {d.status for d in delivered} == {DeliveryStatus.DELIVERED}
        assert len(api.sent) == count
        for chat in CHATS:
            sent_in_order_once(api, delivered, chat)
        assert await store.refusing_destinations() == []
        assert (await client.get("/readyz")).json()["destinations_refusing"] == []
        assert GAUGE.findall((await client.get("/metrics", headers=ROOT)).text) == ["0.0"]


@pytest.mark.slow
async def test_ten_seconds_of_flood_control_costs_no_attempt_and_nothing_is_dead(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    store = gateway.store
    assert store is not None
    started = time.monotonic()
    api.flood_until = started + 10  # "Too Many Requests: retry after 1", for 10 s
    count = await queue_results(store, per_chat=2, chats=CHATS[:2])
    delivered = await settled(store, count, timeout=30)
    assert time.monotonic() - started >= 10
    await asyncio.sleep(1)
    assert {d.status for d in delivered} == {DeliveryStatus.DELIVERED}
    assert {d.attempts for d in delivered} == {1}  # the waits were not failed attempts
    assert len(api.sent) == count
    for chat in CHATS[:2]:
        sent_in_order_once(api, delivered, chat)
    assert await store.refusing_destinations() == []  # a rate limit is not the bot refusing


async def test_a_blocked_or_missing_chat_has_its_messages_dead_the_others_get_theirs(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    store = gateway.store
    assert store is not None
    blocked, missing, fine = CHATS
    api.blocked_chats = {blocked}
    api.missing_chats = {missing}
    count = await queue_results(store, per_chat=2)
    final = await settled(store, count)
    status = {d.destination: set() for d in final}
    for d in final:
        status[d.destination].add(d.status)
    assert status == {
        f"tg:{blocked}": {DeliveryStatus.DEAD},
        f"tg:{missing}": {DeliveryStatus.DEAD},
        f"tg:{fine}": {DeliveryStatus.DELIVERED},
    }
    errors = {d.destination: d.last_error or "" for d in final if d.status is DeliveryStatus.DEAD}
    assert "bot was blocked by the user" in errors[f"tg:{blocked}"]  # the answer is kept
    assert "chat not found" in errors[f"tg:{missing}"].lower()
    sent_in_order_once(api, final, fine)
    assert await store.refusing_destinations() == []  # one chat refusing is not the bot


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
async def test_two_gateways_on_one_store_wait_behind_one_probe_then_send_each_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    base = config(tmp_path)
    async with store_url(backend, str(tmp_path)) as url, running_botapi() as api:
        telegram = TelegramConfig(
            token_env="STARPOD_TEST_TG_TOKEN",
            base_url=api.base_url,
            poll_timeout_secs=1,
            allowed_user_ids=(42,),
        )
        cfg = replace(
            base,
            telegram=telegram,
            gateway=replace(base.gateway, delivery_max_attempts=3, delivery_backoff_secs=(0.5,)),
        )
        api.token_revoked = True
        async with running_gateway(cfg, url) as first, running_gateway(cfg, url) as second:
            assert first.store is not None and second.store is not None
            count = await queue_results(first.store, per_chat=3)
            await all_planned(first.store, count)
            await asyncio.sleep(1.5)
            before = api.calls.count("sendMessage")
            await asyncio.sleep(3)
            # the refusal is the store's: both nodes hold back, one message probes every 0.5 s
            # (two nodes on their own would send at least twice as many)
            assert api.calls.count("sendMessage") - before <= 8
            waiting = await telegram_deliveries(second.store)
            assert DeliveryStatus.DEAD not in {d.status for d in waiting}
            assert await second.store.refusing_destinations() != []
            api.token_revoked = False
            delivered = await settled(second.store, count)
            await asyncio.sleep(1)
            assert {d.status for d in delivered} == {DeliveryStatus.DELIVERED}
            assert len(api.sent) == count
            for chat in CHATS:
                sent_in_order_once(api, delivered, chat)


async def test_a_refusal_with_no_message_waiting_is_probed_with_getme_and_cleared(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    store = gateway.store
    assert store is not None
    api.token_revoked = True
    await store.refuse_destination("telegram:123456", "Telegram refuses the bot: 401", (0.2,))
    calls = api.calls.count("getMe")
    await until(lambda: api.calls.count("getMe") >= calls + 3, what="getMe probes")
    assert (await store.refusing_destinations())[0].failures >= 2  # still refusing, backing off
    assert "sendMessage" not in api.calls  # nothing to send, so nothing was
    api.token_revoked = False

    async def cleared() -> bool:
        return await store.refusing_destinations() == []

    await eventually(cleared, timeout=10, what="the refusal cleared")
