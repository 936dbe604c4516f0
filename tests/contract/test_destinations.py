"""Store contract: a destination refusing every message (a rejected bot token), shared by every
node: refusals in a row back off, one caller at a time probes, an answer clears it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from starpod_cron import CronStore, InvalidInput, ManualClock, StoreSettings, Topic
from starpod_cron.timeutil import from_ms
from tests.contract.conftest import Opener

BOT = "telegram:123456"
BACKOFF = (1, 5, 30)


async def test_refusals_in_a_row_back_off_and_every_node_sees_them(
    open_store: Opener, clock: ManualClock
) -> None:
    a = await open_store(StoreSettings(), clock)
    b = await open_store(StoreSettings(), clock)
    try:
        assert await b.refusing_destinations() == []
        start = from_ms(clock.now_ms())
        first = await a.refuse_destination(BOT, "InvalidToken: Unauthorized", BACKOFF)
        assert (first.failures, first.since) == (1, start)
        assert first.retry_at == start + timedelta(seconds=1)
        clock.advance(2)
        second = await b.refuse_destination(BOT, "InvalidToken: Unauthorized (2)", BACKOFF)
        assert second.failures == 2 and second.since == start  # the outage began at the first
        assert second.retry_at == from_ms(clock.now_ms()) + timedelta(seconds=5)
        for _ in range(3):  # the last delay repeats
            last = await a.refuse_destination(BOT, "again", BACKOFF)
        assert last.failures == 5 and last.retry_at == from_ms(clock.now_ms()) + timedelta(
            seconds=30
        )
        assert await b.refusing_destinations() == [last]
    finally:
        await a.close()
        await b.close()


async def test_one_caller_probes_when_due_and_an_answer_clears_and_wakes(
    open_store: Opener, clock: ManualClock
) -> None:
    stores = [await open_store(StoreSettings(), clock) for _ in range(4)]
    woken = asyncio.Event()
    unsubscribe = stores[1].on_change(woken.set, Topic.DELIVERIES)
    try:
        first = stores[0]
        assert not await first.take_destination_probe(BOT, 10)  # not refusing
        await first.refuse_destination(BOT, "NetworkError: Bad Gateway", BACKOFF)
        assert not await first.take_destination_probe(BOT, 10)  # not due yet
        clock.advance(1)
        taken = await asyncio.gather(*(s.take_destination_probe(BOT, 10) for s in stores))
        assert sum(taken) == 1  # one probe among the racing nodes
        (refusal,) = await first.refusing_destinations()
        assert refusal.retry_at == from_ms(clock.now_ms()) + timedelta(seconds=10)
        assert not await first.take_destination_probe(BOT, 10)  # the prober holds it
        woken.clear()
        assert await stores[2].clear_destination(BOT)
        assert not await stores[2].clear_destination(BOT)
        assert await first.refusing_destinations() == []
        await asyncio.wait_for(woken.wait(), 5)  # another node's outbox wakes up
        again = await first.refuse_destination(BOT, "back again", BACKOFF)
        assert again.failures == 1  # a new outage counts from one
    finally:
        unsubscribe()
        for s in stores:
            await s.close()


@pytest.mark.parametrize("name, backoff", [("", (1,)), ("x" * 201, (1,)), ("t", ()), ("t", (-1,))])
async def test_bad_destination_arguments_are_refused(
    store: CronStore, name: str, backoff: tuple[float, ...]
) -> None:
    with pytest.raises(InvalidInput):
        await store.refuse_destination(name, "error", backoff)
    assert await store.refusing_destinations() == []
