"""``/readyz`` of a real gateway (in this process, real sockets): 503 when this node's outbox
is not running or stuck (a channel that never answers), whatever the rest says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from gateway.outbox import Outbox, Progress
from starpod_cron import Delivery, JobSpec, Schedule, SchedulerSettings
from tests.conftest import eventually
from tests.gateway.conftest import config, running_gateway

TICK = 0.5  # a loop that has not passed for 2 x 0.5 + 5 = 6 s is stuck


class HangingChannel:
    """A destination that takes a message and never answers."""

    name = "telegram:1"

    def __init__(self) -> None:
        self.taken: list[int] = []

    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        self.taken.append(delivery.id)
        await asyncio.Event().wait()

    async def check(self) -> None:
        return None


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    base = config(tmp_path)
    cfg = replace(base, scheduler=SchedulerSettings(tick_secs=TICK, lease_secs=5))
    async with running_gateway(cfg, str(tmp_path / "ready.db")) as gateway:
        assert gateway.http_port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as client:
            yield gateway, client


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def test_readyz_answers_503_while_the_outbox_is_not_running(
    node: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gateway, client = node
    assert gateway.store is not None
    # the scheduler's first pass may still be under way when the node says it started
    await eventually(lambda: _ready(client), timeout=10, what="/readyz 200")
    gateway.outbox = Outbox(gateway.store, gateway.node_id, {"tg:": HangingChannel()})
    answer = await client.get("/readyz")  # an outbox whose task is not running
    assert answer.status_code == 503, answer.text
    assert answer.json()["checks"]["outbox"]["alive"] is False
    assert answer.json()["checks"]["scheduler"]["ok"] is True


async def test_readyz_answers_503_when_the_outbox_is_stuck_in_a_send(
    node: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gateway, client = node
    store = gateway.store
    assert store is not None
    channel = HangingChannel()
    outbox = Outbox(store, gateway.node_id, {"tg:": channel}, idle_secs=TICK)
    task = asyncio.create_task(outbox.run(), name="test:outbox")
    gateway.outbox = outbox
    try:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=5, what="the outbox's first pass")
        at = datetime.now(UTC) + timedelta(seconds=0.5)
        origin = {"telegram_chat_id": 7}
        await store.add_jobs([JobSpec("report", "p", Schedule.one_shot(at), origin=origin)])

        async def taken() -> bool:
            return bool(channel.taken)

        await eventually(taken, timeout=10, what="the message taken by the channel")
        assert (await client.get("/readyz")).status_code == 200  # sending: fine so far

        async def stuck() -> httpx.Response | None:
            answer = await client.get("/readyz")
            return answer if answer.status_code == 503 else None

        answer = await eventually(stuck, timeout=2 * TICK + 5 + 3, what="503", every=0.2)
        checks = answer.json()["checks"]
        assert checks["outbox"]["alive"] is True and checks["outbox"]["ok"] is False
        assert checks["outbox"]["last_pass_age_secs"] > 2 * TICK + 5
        assert checks["scheduler"]["ok"] is True and checks["store"] == "ok"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (await client.get("/readyz")).status_code == 503  # stopped
