"""A provider that will not take a run before a time (a spent quota: 402 or
``insufficient_quota``; a wait longer than the run has left) holds the job: the run is
recorded ``held`` (not a failure, no retry used, no pause), the owner is told once, and the
same occurrence runs again at the reset with the same attempt number. Over every backend,
against the OpenAI-compatible stand-in, under a ManualClock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobSpec,
    ManualClock,
    RunStatus,
    Schedule,
    StoreSettings,
)
from starpod_cron.executors import OpenAIExecutor
from starpod_cron.models import CronRun
from starpod_cron.routing import DeliveryRouter
from starpod_cron.settings import SchedulerSettings
from tests.conftest import START
from tests.openai_standin import FakeOpenAI, Reply, running_openai

QUOTA_GONE = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1h0m0s"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with running_openai() as server:
        yield server


@pytest.fixture
async def held_store(url: str, clock: ManualClock) -> AsyncIterator[CronStore]:
    s = await CronStore.open(
        url,
        clock=clock,
        settings=StoreSettings(retry_backoff_secs=(30,)),
        delivery_planner=DeliveryRouter(finished_events=False),
    )
    yield s
    await s.close()


@pytest.fixture
async def scheduler(held_store: CronStore, fake: FakeOpenAI) -> AsyncIterator[CronScheduler]:
    executor = OpenAIExecutor(
        held_store, base_url=fake.base_url, model="m", request_timeout_secs=10
    )
    settings = SchedulerSettings(quota_retry_secs=120, tick_secs=3600)
    s = CronScheduler(held_store, executor, settings)
    s.start()
    yield s
    await s.stop()
    await executor.aclose()


async def runs_of(store: CronStore, job_id: str, count: int) -> list[CronRun]:
    """The job's first ``count`` finished runs, oldest first (waits for them)."""
    found: list[CronRun] = []

    async def check() -> bool:
        nonlocal found
        found = [r for r in await store.list_runs(job_id, 50) if r.status.is_final][::-1]
        return len(found) >= count

    for _ in range(1000):
        if await check():
            return found[:count]
        await asyncio.sleep(0.01)
    pytest.fail(f"expected {count} finished runs, got {[r.status for r in found]}")


async def test_a_402_holds_the_job_until_the_reset_and_no_run_fails(
    held_store: CronStore, scheduler: CronScheduler, fake: FakeOpenAI, clock: ManualClock
) -> None:
    store = held_store
    fake.answer(Reply(status=402, content="billing: quota exceeded", headers=QUOTA_GONE))
    (job_id,) = await store.add_jobs(
        [
            JobSpec(
                "digest",
                "p",
                Schedule.one_shot(START + timedelta(seconds=1)),
                max_retries=0,
                pause_after_failures=1,
            )
        ]
    )
    clock.advance(1)
    (held,) = await runs_of(store, job_id, 1)
    assert held.status is RunStatus.HELD and held.attempt == 1
    assert (held.error or "").startswith("held until 13:00: provider quota: HTTP 402")
    job = await store.get_job(job_id)
    assert job is not None and job.enabled and job.paused_reason is None
    assert job.held_until == START + timedelta(hours=1, seconds=1)
    assert job.consecutive_failures == 0 and job.retry_count == 0
    assert job.last_status is RunStatus.HELD

    clock.advance(3599)
    await scheduler.checkpoint()
    assert len(fake.requests) == 1  # held: nothing asked before the reset
    clock.advance(1)
    _, done = await runs_of(store, job_id, 2)
    assert done.status is RunStatus.SUCCESS and done.attempt == 1
    assert done.scheduled_for == held.scheduled_for == START + timedelta(seconds=1)
    assert len(fake.requests) == 2
    job = await store.get_job(job_id)
    assert job is not None and job.held_until is None

    deliveries = await store.list_deliveries(0, None)
    notices = [d for d in deliveries if d.payload.get("notice")]
    assert len(notices) == 1 and "is held until 13:00" in notices[0].payload["notice"]
    results = [d.payload for d in deliveries if d.payload.get("type") == "notification"]
    assert [p["status"] for p in results if not p.get("notice")] == ["success"]


async def test_insufficient_quota_without_a_reset_holds_for_the_configured_time(
    held_store: CronStore, scheduler: CronScheduler, fake: FakeOpenAI, clock: ManualClock
) -> None:
    store = held_store
    body = '{"error": {"code": "insufficient_quota", "message": "You exceeded your quota"}}'
    fake.answer(Reply(status=429, raw=body))
    job_id = await store.add_job("digest", "p", Schedule.one_shot(START + timedelta(seconds=1)))
    clock.advance(1)
    (held,) = await runs_of(store, job_id, 1)
    assert held.status is RunStatus.HELD and "insufficient_quota" in (held.error or "")
    clock.advance(119)
    await scheduler.checkpoint()
    assert len(fake.requests) == 1
    clock.advance(1)  # quota_retry_secs = 120
    _, done = await runs_of(store, job_id, 2)
    assert done.status is RunStatus.SUCCESS and done.attempt == 1


async def test_a_wait_longer_than_the_run_has_left_holds_instead_of_timing_out(
    held_store: CronStore, scheduler: CronScheduler, fake: FakeOpenAI, clock: ManualClock
) -> None:
    """A 429 asking for 10 minutes, a run with a 60 s timeout: held for the 10 minutes, not
    asleep through its timeout, and then the same attempt (a retry's, here) runs."""
    store = held_store
    fake.answer(
        Reply(status=500, content="boom"),
        Reply(status=429, content="slow down", headers={"retry-after": "600"}),
    )
    job_id = await store.add_job_full(
        "digest",
        "p",
        Schedule.one_shot(START + timedelta(seconds=1)),
        timeout_secs=60,
        max_retries=1,
    )
    clock.advance(1)
    (failed,) = await runs_of(store, job_id, 1)
    assert failed.status is RunStatus.FAILED and failed.attempt == 1
    clock.advance(30)  # the retry's backoff
    _, held = await runs_of(store, job_id, 2)
    assert held.status is RunStatus.HELD and held.attempt == 2
    assert "longer than the run has left" in (held.error or "")
    job = await store.get_job(job_id)
    assert job is not None and job.retry_count == 1  # the hold used no retry
    clock.advance(599)
    await scheduler.checkpoint()
    assert len(fake.requests) == 2
    clock.advance(1)
    _, _, done = await runs_of(store, job_id, 3)
    assert (done.status, done.attempt) == (RunStatus.SUCCESS, 2)
    assert done.scheduled_for == held.scheduled_for == failed.scheduled_for


async def test_fires_during_a_hold_wait_for_its_end(
    held_store: CronStore, scheduler: CronScheduler, fake: FakeOpenAI, clock: ManualClock
) -> None:
    """A job firing every minute, held for an hour: nothing runs in that hour; at its end the
    held fire runs, then one catch-up for the fires missed meanwhile (run_once)."""
    store = held_store
    fake.answer(Reply(status=402, content="no credit", headers=QUOTA_GONE))
    job_id = await store.add_job(
        "tick", "p", Schedule.interval(60_000, anchor=START + timedelta(seconds=1))
    )
    clock.advance(61)
    (held,) = await runs_of(store, job_id, 1)
    assert held.status is RunStatus.HELD
    for _ in range(59):
        clock.advance(60)
        await scheduler.checkpoint()
    assert len(fake.requests) == 1
    clock.advance(61)
    _, resumed, caught_up = await runs_of(store, job_id, 3)
    assert resumed.scheduled_for == held.scheduled_for and resumed.attempt == 1
    assert resumed.status is RunStatus.SUCCESS and caught_up.status is RunStatus.SUCCESS
    assert caught_up.scheduled_for > held.scheduled_for + timedelta(minutes=58)
