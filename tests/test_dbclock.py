"""The database's clock as every node's (dbclock.py): on both backends, against real stores,
with nodes whose own clocks are 30 s off in either direction."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from starpod_cron import CronStore, JobSpec, Schedule
from starpod_cron.dbclock import DatabaseClock
from tests.clocks import SkewedClock


async def synced(url: str, offset_secs: float) -> tuple[CronStore, DatabaseClock]:
    clock = DatabaseClock(SkewedClock(offset_secs))
    store = await CronStore.open(url, clock=clock)
    await clock.sync(store.database_now_ms)
    return store, clock


async def test_the_database_clock_is_this_machines_on_both_backends(url: str) -> None:
    async with CronStore.open(url) as store:
        before = time.time_ns() // 1_000_000
        database = await store.database_now_ms()
        after = time.time_ns() // 1_000_000
    assert before - 50 <= database <= after + 50  # PostgreSQL runs on this machine too


async def test_a_node_30_s_off_counts_from_the_database_and_sees_its_skew(url: str) -> None:
    for offset in (30, -30, 2):
        store, clock = await synced(url, offset)
        try:
            real = time.time_ns() // 1_000_000
            assert abs(clock.now_ms() - real) < 500, offset  # not its own wall clock
            assert clock.skew_ms is not None and abs(clock.skew_ms - offset * 1000) < 500
            assert clock.too_far is (abs(offset) > 5)
        finally:
            await store.close()


async def test_a_lease_of_a_slow_clock_is_not_taken_by_a_fast_one(url: str) -> None:
    """Behind by 30 s, a holder's own clock would write an expiry 20 s in the past for a 10 s
    lease; a node 30 s ahead would then take a live lease (two Telegram pollers at once)."""
    slow, _ = await synced(url, -30)
    fast, _ = await synced(url, +30)
    try:
        held = await slow.acquire_lease("telegram:1", "slow-holder", 10)
        assert held is not None
        expected = datetime.now(UTC) + timedelta(seconds=10)
        assert abs((held.expires_at - expected).total_seconds()) < 1  # by the database's clock
        assert await fast.acquire_lease("telegram:1", "fast-node", 10) is None
    finally:
        await slow.close()
        await fast.close()


async def test_a_node_30_s_ahead_claims_nothing_before_it_is_due(url: str) -> None:
    fast, _ = await synced(url, +30)
    try:
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
        await fast.add_jobs([JobSpec("report", "p", Schedule.one_shot(due))])
        assert await fast.claim_due("fast-node", 10, 5) == []  # its own clock: 10 s late
        next_due = await fast.next_due_at()
        assert next_due == due
    finally:
        await fast.close()


async def test_a_wall_clock_jump_between_syncs_moves_nothing() -> None:
    mono = [100.0]
    local = SkewedClock(0)
    clock = DatabaseClock(local, monotonic=lambda: mono[0])

    async def database() -> int:
        return 1_000_000

    await clock.sync(database)
    mono[0] += 2.5
    local.offset_ms = -30_000  # the host's clock steps back 30 s: nothing here moves
    assert clock.now_ms() == 1_002_500


async def test_a_slow_answer_does_not_move_a_good_anchor() -> None:
    """The database may have answered anywhere within a slow round trip (a pool waiting for a
    connection after a restart, a delayed link): such a sample would put the clock up to half
    of it ahead, and runs would start early."""
    mono = [0.0]
    clock = DatabaseClock(SkewedClock(0), monotonic=lambda: mono[0])
    answers = iter([(0.01, 5_000), (3.0, 1_000_000)])

    async def database() -> int:
        took, value = next(answers)
        mono[0] += took / 2
        value += round(mono[0] * 1000)
        mono[0] += took / 2
        await asyncio.sleep(0)
        return value

    await clock.sync(database)
    good = clock.now_ms() - round(mono[0] * 1000)
    await clock.sync(database)  # 3 s round trip, and an answer far off: ignored
    assert clock.now_ms() - round(mono[0] * 1000) == good
    assert clock.uncertainty_ms == 5
