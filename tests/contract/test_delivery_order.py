"""Order per destination across nodes (PostgreSQL, several claimers at once): a claim never
takes a later message of a chat while an older one is being written by another node's
transaction (found by bench.chaos: node A's finish of message 1 held its row; node B's claim
skipped it, SKIP LOCKED, and sent message 2 first)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import pytest

from starpod_cron import CronJob, CronRun, CronStore, DeliverySpec, ManualClock, RunStatus, Schedule
from tests.backends import needs_postgres
from tests.contract.conftest import Reopen


def planner(job: CronJob, run: CronRun) -> Sequence[DeliverySpec]:
    return [DeliverySpec("tg:1", {"text": run.id})]


@needs_postgres
async def test_a_claim_never_overtakes_an_older_message_another_node_is_writing(
    store: CronStore, clock: ManualClock, reopen: Reopen, url: str
) -> None:
    if not url.startswith("postgres"):
        pytest.skip("SQLite: one writer at a time, no row is ever skipped")
    store = await reopen(delivery_planner=planner)
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    for _ in range(2):
        clock.advance(60)
        (claim,) = await store.claim_due("me", 10, 30)
        await store.record_run_complete(claim.run_id, RunStatus.SUCCESS, "done", error=None)
    (first,) = await store.claim_deliveries("node-a", 1, 3)  # node A sends message 1 ...
    clock.advance(4)  # ... its lease runs out while it is still at it
    writer = await asyncpg.connect(url)
    try:
        async with writer.transaction():  # node A records message 1: its row is locked
            await writer.execute("SELECT id FROM deliveries WHERE id = $1 FOR UPDATE", first.id)
            assert await store.claim_deliveries("node-b", 10, 3) == []  # not message 2
    finally:
        await writer.close()
    taken = await store.claim_deliveries("node-b", 10, 3)
    assert [d.id for d in taken] == sorted(d.id for d in taken) and taken[0].id == first.id
