"""Slack incoming webhooks (gateway/channels/slack.py) against a Slack-shaped receiver on
127.0.0.1, through a real Outbox over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.channels.slack import SlackChannel, slack_messages
from gateway.outbox import DeliveryError
from starpod_cron import CronStore, DeliveryStatus, StoreSettings
from tests.gateway.outboxkit import (
    Planner,
    delivery,
    finish_runs,
    payload,
    running_outbox,
    settled,
)
from tests.gateway.receivers import Receiver, receiving

DEST = "dest:team"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving("slack") as r:
        yield r


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


@pytest.fixture
async def planned(url: str) -> AsyncIterator[tuple[CronStore, Planner]]:
    planner = Planner(DEST)
    # synchronous=normal (WAL): commits without an fsync each, as a busy gateway might run
    settings = StoreSettings(synchronous="normal")
    store = await CronStore.open(url, delivery_planner=planner, settings=settings)
    try:
        yield store, planner
    finally:
        await store.close()


def long_result(lines: int) -> str:
    return "\n".join(f"{i:05d} <{'x' * 70}> & more" for i in range(lines))


def sections(message: dict[str, object]) -> list[str]:
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_a_long_result_is_split_into_sections_and_messages_in_order() -> None:
    result = long_result(1000)  # ~90,000 characters, more after escaping
    messages = slack_messages(payload(result=result, cost_usd=0.5))
    assert len(messages) > 1
    body: list[str] = []
    for n, message in enumerate(messages, 1):
        texts = sections(message)
        assert 0 < len(message["blocks"]) <= 50
        assert all(0 < len(t) <= 3000 for t in texts)
        assert sum(len(t) for t in texts) <= 12_000
        assert message["text"] == f"[report] done ({n}/{len(messages)})"
        body += texts
    assert body[0] == "*[report] done*"
    assert "\n".join(unescape(t) for t in body[1:]) == result  # cut at line ends, in order
    assert "<" not in "".join(body)  # an agent's <!channel> mentions no one
    assert messages[-1]["blocks"][-1]["type"] == "context"  # the run's details come last
    assert slack_messages(payload(result=result, cost_usd=0.5)) == messages  # stable


def test_more_blocks_than_a_message_holds_start_another() -> None:
    result = "\n".join(["a line"] * 120)
    messages = slack_messages(payload(result=result), section_chars=10, message_chars=10**6)
    assert [len(m["blocks"]) for m in messages] == [50, 50, 22]  # title + 120 lines + details
    assert sum(len(sections(m)) for m in messages) == 121


async def test_a_long_result_reaches_slack_in_order_through_the_outbox(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    result = long_result(600)
    await finish_runs(store, planner, [payload(result=result)])
    channel = SlackChannel(DEST, receiver.url, client, rate_per_sec=50)
    async with running_outbox(store, {DEST: channel}):
        (done,) = await settled(store, DEST, 1)
    assert done.status is DeliveryStatus.DELIVERED, done.last_error
    expected = slack_messages(payload(result=result))
    assert receiver.received == expected and len(expected) > 2  # each message once, in order
    assert "\n".join(unescape(t) for t in receiver.texts()[1:]) == result


async def test_a_restart_mid_message_resumes_after_the_last_message_sent(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    result = long_result(600)
    expected = slack_messages(payload(result=result))
    assert len(expected) >= 4
    await finish_runs(store, planner, [payload(result=result)])
    hang = asyncio.Event()

    class Hangs(SlackChannel):  # the gateway dies while its third message is in flight
        async def _post(self, body: dict[str, object]) -> httpx.Response:  # type: ignore[override]
            if len(receiver.received) == 2:
                hang.set()
                await asyncio.Event().wait()
            return await super()._post(body)

    first = Hangs(DEST, receiver.url, client, rate_per_sec=50)
    async with running_outbox(store, {DEST: first}, lease_secs=1):
        await asyncio.wait_for(hang.wait(), 10)
    (row,) = await store.list_deliveries(0, None, prefix=DEST)
    assert row.status is DeliveryStatus.SENDING and row.progress == 2
    second = SlackChannel(DEST, receiver.url, client, rate_per_sec=50)
    # another gateway takes over once the lease runs out
    async with running_outbox(store, {DEST: second}, lease_secs=1, owner="node-b"):
        (done,) = await settled(store, DEST, 1)
    assert done.status is DeliveryStatus.DELIVERED, done.last_error
    assert receiver.received == expected  # nothing twice, nothing missing, in order


@pytest.mark.timeout(300)  # ~20 s alone; far longer on a loaded machine
async def test_a_thousand_results_keep_run_order_and_the_rate(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    count, rate = 1000, 100.0
    await finish_runs(store, planner, [payload(result=f"result {i}") for i in range(count)])
    channel = SlackChannel(DEST, receiver.url, client, rate_per_sec=rate)
    async with running_outbox(store, {DEST: channel}):
        rows = await settled(store, DEST, count, timeout=270)
    assert all(r.status is DeliveryStatus.DELIVERED for r in rows)
    results = [t for t in receiver.texts() if not t.startswith("*")]
    assert results == [f"result {i}" for i in range(count)]  # run order, each once
    assert_paced(receiver.times, rate)


def assert_paced(times: list[float], rate: float) -> None:
    """No faster than ``rate`` a second, as the receiver saw them arrive."""
    count = len(times)
    window = 20  # any 20 consecutive messages span at least 19 periods (less arrival jitter)
    spans = [times[i + window - 1] - times[i] for i in range(count - window + 1)]
    assert min(spans) >= (window - 1) / rate - 0.03, min(spans)
    assert times[-1] - times[0] >= (count - 1) / rate * 0.97


async def test_the_limiter_holds_a_fast_sender_to_the_rate(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    channel = SlackChannel(DEST, receiver.url, client, rate_per_sec=100)
    for i in range(200):  # no store in between: only the limiter slows this loop down
        await channel.deliver(delivery(DEST, payload(result=f"r{i}")), _no_progress)
    assert len(receiver.times) == 200
    assert_paced(receiver.times, 100)


@pytest.mark.timeout(60)
async def test_five_messages_at_one_a_second_in_real_time(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    await finish_runs(store, planner, [payload(result=f"result {i}") for i in range(5)])
    channel = SlackChannel(DEST, receiver.url, client)  # the default: 1 message/s
    async with running_outbox(store, {DEST: channel}):
        await settled(store, DEST, 5, timeout=30)
    assert [t for t in receiver.texts() if not t.startswith("*")] == [
        f"result {i}" for i in range(5)
    ]
    gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False)]
    assert len(gaps) == 4 and min(gaps) >= 0.95, gaps
    assert receiver.times[-1] - receiver.times[0] < 4 + 3  # paced, not stalled


async def test_retry_after_waits_without_spending_an_attempt(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    receiver.answers = [(429, {"Retry-After": "1"}, "rate_limited")]
    await finish_runs(store, planner, [payload(result="once")])
    started = time.monotonic()
    channel = SlackChannel(DEST, receiver.url, client, rate_per_sec=50)
    async with running_outbox(store, {DEST: channel}, max_attempts=1):
        (done,) = await settled(store, DEST, 1)
    assert done.status is DeliveryStatus.DELIVERED  # max_attempts=1: the 429 was no attempt
    assert receiver.posts == 2 and receiver.texts()[1:] == ["once"]
    assert receiver.times[0] - started >= 1.0


async def test_a_message_slack_rejects_is_dead_with_the_answer_kept(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    receiver.answers = [(400, {}, "invalid_blocks")]
    await finish_runs(store, planner, [payload(result="bad"), payload(result="good")])
    channel = SlackChannel(DEST, receiver.url, client, rate_per_sec=50)
    async with running_outbox(store, {DEST: channel}):
        bad, good = await settled(store, DEST, 2)
    assert bad.status is DeliveryStatus.DEAD and good.status is DeliveryStatus.DELIVERED
    assert bad.last_error is not None and "invalid_blocks" in bad.last_error
    assert "secret" not in bad.last_error  # the webhook URL is the secret


async def test_a_revoked_webhook_holds_every_message_until_it_answers(
    planned: tuple[CronStore, Planner], receiver: Receiver, client: httpx.AsyncClient
) -> None:
    store, planner = planned
    receiver.answers = [(404, {}, "no_service"), (410, {}, "channel_is_archived")]
    await finish_runs(store, planner, [payload(result=f"r{i}") for i in range(3)])
    channel = SlackChannel(DEST, receiver.url, client, rate_per_sec=50)
    async with running_outbox(store, {DEST: channel}, backoff_secs=(0.2,)):
        rows = await settled(store, DEST, 3)
    assert [r.status for r in rows] == [DeliveryStatus.DELIVERED] * 3  # nothing dead
    assert receiver.texts()[1::2] == ["r0", "r1", "r2"]
    assert await store.refusing_destinations() == []


async def test_check_posts_nothing_and_tells_a_revoked_webhook(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    channel = SlackChannel(DEST, receiver.url, client, rate_per_sec=50)
    await channel.check()  # Slack answers 400 no_text to an empty object: the hook is there
    assert receiver.posts == 1 and receiver.received == []
    receiver.answers = [(403, {}, "invalid_token")]
    with pytest.raises(DeliveryError) as refused:
        await channel.check()
    assert refused.value.refusing and "403" in str(refused.value)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = SlackChannel(DEST, f"http://127.0.0.1:{port}/services/T/B/secret", client)
    with pytest.raises(DeliveryError) as unreachable:
        await gone.deliver(delivery(DEST, payload()), _no_progress)
    assert unreachable.value.refusing and "secret" not in str(unreachable.value)
    assert unreachable.value.__cause__ is None and unreachable.value.__suppress_context__


async def _no_progress(parts: int) -> None:
    raise AssertionError("one message: no progress to record")


async def test_the_rate_is_per_webhook(client: httpx.AsyncClient) -> None:
    async with receiving("slack") as a, receiving("slack") as b:
        one = SlackChannel("dest:a", a.url, client, rate_per_sec=2)
        two = SlackChannel("dest:b", b.url, client, rate_per_sec=2)
        started = time.monotonic()
        await asyncio.gather(
            *(
                one.deliver(delivery("dest:a", payload(result=str(i))), _no_progress)
                for i in (1, 2)
            ),
            *(
                two.deliver(delivery("dest:b", payload(result=str(i))), _no_progress)
                for i in (1, 2)
            ),
        )
        took = time.monotonic() - started
    assert len(a.received) == len(b.received) == 2
    assert 0.45 <= took < 0.9  # two per webhook at 2/s: one wait of 0.5 s, side by side
