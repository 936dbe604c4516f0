"""The scheduler's pipeline under a concurrency limit: a slot bounds executor calls only (it
frees when the executor returns, not when the outcome commits), completions and the next
claims share transactions, and notifier calls do not need a task each."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import asyncpg
import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    ManualClock,
    RunStatus,
    Schedule,
)
from tests.conftest import START, until


class Gated:
    """An executor whose calls wait until the test opens their job's gate."""

    def __init__(self, gated: set[str]) -> None:
        self.gated = gated
        self.gates: dict[str, asyncio.Event] = {name: asyncio.Event() for name in gated}
        self.calls: list[str] = []
        self.running = 0
        self.peak = 0

    async def __call__(self, ctx: JobContext) -> JobResult:
        self.calls.append(ctx.job_name)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if ctx.job_name in self.gates:
                await self.gates[ctx.job_name].wait()
            return JobResult("", f"did {ctx.job_name}")
        finally:
            self.running -= 1


async def test_a_burst_under_a_limit_runs_each_job_once_and_never_more_calls_than_slots(
    store: CronStore, clock: ManualClock
) -> None:
    n, limit = 300, 8
    at = START + timedelta(seconds=1)
    await store.add_jobs([JobSpec(f"j{i:03}", "p", Schedule.one_shot(at)) for i in range(n)])
    executor = Gated(set())
    heard: list[str] = []

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        heard.append(job_name)

    scheduler = CronScheduler(store, executor, max_concurrent_runs=limit).with_notifier(notifier)
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: len(heard) == n, timeout=30)
        assert Counter(executor.calls) == Counter(f"j{i:03}" for i in range(n))
        assert executor.peak <= limit
        runs = await store.list_recent_runs(n + 10)
        assert len(runs) == n and {r.status for r in runs} == {RunStatus.SUCCESS}
        assert sorted(heard) == sorted(executor.calls)
    finally:
        await scheduler.stop()


async def test_a_hung_notifier_call_does_not_hold_back_the_others(
    store: CronStore, clock: ManualClock
) -> None:
    at = START + timedelta(seconds=1)
    await store.add_jobs([JobSpec(f"j{i}", "p", Schedule.one_shot(at)) for i in range(20)])
    heard: list[str] = []
    hang = asyncio.Event()

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        if job_name == "j0":
            await hang.wait()  # until the notifier timeout (30 s)
        heard.append(job_name)

    scheduler = CronScheduler(store, Gated(set()), notify_timeout_secs=30).with_notifier(notifier)
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: len(heard) == 19, timeout=10)
        assert "j0" not in heard
        hang.set()
        await until(lambda: len(heard) == 20)
    finally:
        await scheduler.stop()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_slot_frees_when_its_executor_returns_not_when_its_outcome_commits(
    url: str, store: CronStore, clock: ManualClock
) -> None:
    """PostgreSQL writes in parallel: while one outcome's commit waits on a row lock, the slot
    its run held is already given to the next due job."""
    if not url.startswith("postgres"):
        pytest.skip("needs a store that claims while another transaction waits")
    at = START + timedelta(seconds=1)
    for name in ("a", "b", "c"):
        await store.add_job(name, "p", Schedule.one_shot(at))
    executor = Gated({"a", "b"})
    scheduler = CronScheduler(store, executor, max_concurrent_runs=2, tick_secs=3600)
    scheduler.start()
    locker = await asyncpg.connect(url)
    try:
        clock.advance(1)
        await until(lambda: sorted(executor.calls) == ["a", "b"])
        (a_run,) = [r for r in await store.list_recent_runs(10) if r.job_name == "a"]
        lock = locker.transaction()
        await lock.start()
        await locker.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", a_run.id)
        executor.gates["a"].set()  # a's outcome now waits for the lock
        await asyncio.sleep(0.2)
        executor.gates["b"].set()  # b's slot frees while a's outcome is not committed
        await until(lambda: "c" in executor.calls)
        status = await locker.fetchval("SELECT status FROM runs WHERE id = $1", a_run.id)
        assert status == "running"  # c was called before a's outcome was recorded
        assert executor.peak <= 2
        await lock.rollback()
        await until(lambda: scheduler.running_count == 0)
        runs = await store.list_recent_runs(10)
        assert sorted(r.job_name for r in runs) == ["a", "b", "c"]
        assert {r.status for r in runs} == {RunStatus.SUCCESS}
    finally:
        await locker.close()
        await scheduler.stop()
