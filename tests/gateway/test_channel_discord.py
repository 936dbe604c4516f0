"""Discord webhooks (gateway/channels/discord.py) against a Discord-shaped receiver on
127.0.0.1, through a real Outbox over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.channels.discord import DiscordChannel, discord_pieces
from gateway.outbox import DeliveryError
from starpod_cron import CronStore, DeliveryStatus
from tests.gateway.outboxkit import (
    Planner,
    delivery,
    finish_runs,
    payload,
    running_outbox,
    settled,
)
from tests.gateway.receivers import Receiver, receiving

DEST = "dest:guild"
TOKEN = "discord-secret-token"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving("discord") as r:
        yield r


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


@pytest.fixture
async def planned(url: str) -> AsyncIterator[tuple[CronStore, Planner]]:
    planner = Planner(DEST)
    store = await CronStore.open(url, delivery_planner=planner)
    try:
        yield store, planner
    finally:
        await store.close()


def long_result(lines: int) -> str:
    return "\n".join(f"{i:05d} @everyone {'y' * 60}" for i in range(lines))


async def test_a_long_result_arrives_in_pieces_in_order_through_the_outbox(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    result = long_result(300)  # ~24,000 characters
    await finish_runs(store, planner, [payload(result=result, cost_usd=0.25)])
    async with running_outbox(store, {DEST: DiscordChannel(DEST, receiver.url, client)}):
        (done,) = await settled(store, DEST, 1)
    assert done.status is DeliveryStatus.DELIVERED, done.last_error
    texts = receiver.texts()
    assert texts == discord_pieces(payload(result=result, cost_usd=0.25)) and len(texts) >= 12
    assert all(0 < len(t) <= 2000 for t in texts)
    whole = "\n".join(texts)
    assert whole.startswith("**[report] done**\n\n00000 @everyone")
    assert result in whole and whole.endswith(
        "-# run run-1 · scheduled for 2026-12-03T09:00:00+00:00 · cost $0.2500"
    )
    assert all(body["allowed_mentions"] == {"parse": []} for body in receiver.received)


async def test_a_restart_mid_message_resumes_after_the_last_piece_sent(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    result = long_result(100)
    expected = discord_pieces(payload(result=result))
    assert len(expected) >= 4
    await finish_runs(store, planner, [payload(result=result)])
    hang = asyncio.Event()

    class Hangs(DiscordChannel):  # the gateway dies while its fourth piece is in flight
        async def _request(  # type: ignore[override]
            self, method: str, body: dict[str, object] | None
        ) -> httpx.Response:
            if len(receiver.received) == 3:
                hang.set()
                await asyncio.Event().wait()
            return await super()._request(method, body)

    async with running_outbox(store, {DEST: Hangs(DEST, receiver.url, client)}, lease_secs=1):
        await asyncio.wait_for(hang.wait(), 10)
    (row,) = await store.list_deliveries(0, None, prefix=DEST)
    assert row.status is DeliveryStatus.SENDING and row.progress == 3
    second = DiscordChannel(DEST, receiver.url, client)
    async with running_outbox(store, {DEST: second}, lease_secs=1, owner="node-b"):
        (done,) = await settled(store, DEST, 1)
    assert done.status is DeliveryStatus.DELIVERED, done.last_error
    assert receiver.texts() == expected  # nothing twice, nothing missing, in order


async def test_a_429_waits_its_retry_after_and_sends_once(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    limited = '{"message": "You are being rate limited.", "retry_after": 0.8, "global": false}'
    receiver.answers = [(429, {"Content-Type": "application/json"}, limited)]
    await finish_runs(store, planner, [payload(result="once")])
    started = time.monotonic()
    channel = DiscordChannel(DEST, receiver.url, client)
    async with running_outbox(store, {DEST: channel}, max_attempts=1):
        (done,) = await settled(store, DEST, 1)
    assert done.status is DeliveryStatus.DELIVERED  # max_attempts=1: the 429 spent none
    assert receiver.posts == 2 and len(receiver.received) == 1
    assert "once" in receiver.texts()[0]
    assert receiver.times[0] - started >= 0.8


async def test_an_empty_bucket_is_waited_for_before_the_next_piece(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.bucket, receiver.bucket_secs = 2, 0.6  # two requests per 0.6 s window
    channel = DiscordChannel(DEST, receiver.url, client)
    pieces = discord_pieces(payload(result=long_result(100)))
    recorded: list[int] = []

    async def progress(parts: int) -> None:
        recorded.append(parts)

    await channel.deliver(delivery(DEST, payload(result=long_result(100))), progress)
    assert receiver.texts() == pieces and receiver.over_bucket == 0
    assert recorded == list(range(1, len(pieces)))
    windows = (len(pieces) - 1) // 2
    assert receiver.times[-1] - receiver.times[0] >= windows * 0.6 - 0.05


async def test_a_long_reset_waits_through_the_outbox(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.answers = [(204, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "30"}, "")]
    channel = DiscordChannel(DEST, receiver.url, client)
    await channel.deliver(delivery(DEST, payload(result="first")), _no_progress)
    with pytest.raises(DeliveryError) as waiting:
        await channel.deliver(delivery(DEST, payload(result="second")), _no_progress)
    assert waiting.value.retry_after is not None and 29 < waiting.value.retry_after <= 30
    assert receiver.posts == 1  # nothing sent into an empty bucket


async def _no_progress(parts: int) -> None:
    raise AssertionError("one piece: no progress to record")


async def test_check_gets_the_webhook_without_posting(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    channel = DiscordChannel(DEST, receiver.url, client)
    await channel.check()
    assert receiver.gets == 1 and receiver.posts == 0
    receiver.answers = [(404, {}, '{"message": "Unknown Webhook", "code": 10015}')]
    with pytest.raises(DeliveryError) as gone:
        await channel.check()
    assert gone.value.refusing and "Unknown Webhook" in str(gone.value)
    assert TOKEN not in str(gone.value)


async def test_a_message_discord_rejects_is_dead_and_the_next_goes(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    receiver.answers = [(400, {}, '{"code": 50035, "message": "Invalid Form Body"}')]
    await finish_runs(store, planner, [payload(result="bad"), payload(result="good")])
    async with running_outbox(store, {DEST: DiscordChannel(DEST, receiver.url, client)}):
        bad, good = await settled(store, DEST, 2)
    assert bad.status is DeliveryStatus.DEAD and good.status is DeliveryStatus.DELIVERED
    assert bad.last_error is not None and "Invalid Form Body" in bad.last_error
    assert TOKEN not in bad.last_error
