"""A saturated provider is backpressure, not a failure: the run is retried after the provider's
delay in the same attempt, recorded once, nobody is notified of the 429, and the scheduler's
calls settle at what the provider admits."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    ManualClock,
    ProviderSaturated,
    RunStatus,
    Schedule,
)
from starpod_cron.backpressure import AdaptiveLimit
from starpod_cron.executors import OpenAIExecutor
from tests.conftest import START, until


async def test_the_limit_admits_in_order_shrinks_on_saturation_and_grows_back() -> None:
    limit = AdaptiveLimit(4)
    for _ in range(4):
        await limit.acquire()
    waiting = [asyncio.create_task(limit.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(t.done() for t in waiting)
    limit.release(saturated=True)  # 3 still in flight when the provider said no
    assert limit.limit == 3 and not any(t.done() for t in waiting)
    limit.release()  # 2 in flight, limit grows by 1/3: one waiter (the first) goes
    await asyncio.sleep(0)
    assert [t.done() for t in waiting] == [True, False, False]
    waiting[2].cancel()  # a cancelled waiter never takes a slot
    for _ in range(3):
        limit.release()
    await asyncio.sleep(0)
    assert waiting[1].done() and limit.in_flight == 1
    assert 3 < limit.limit <= 4


async def test_a_429_is_retried_after_its_delay_in_the_same_attempt_and_never_announced(
    tmp_path: Path,
) -> None:
    clock = ManualClock(START)
    store = await CronStore.open(str(tmp_path / "bp.db"), clock=clock)
    calls: list[JobContext] = []
    told: list[bool] = []

    async def executor(ctx: JobContext) -> JobResult:
        calls.append(ctx)
        if len(calls) == 1:
            raise ProviderSaturated("HTTP 429: slow down", retry_after=30)
        return JobResult("s", "the summary")

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        told.append(success)

    scheduler = CronScheduler(store, executor).with_notifier(notifier)
    job_id = await store.add_job("digest", "p", Schedule.one_shot(START + timedelta(seconds=1)))
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: len(calls) == 1)
        clock.advance(29)
        await scheduler.checkpoint()
        assert len(calls) == 1 and told == []
        clock.advance(1)
        await until(lambda: told)
        (run,) = await store.list_runs(job_id)
        assert (run.status, run.attempt, run.result_summary) == (
            RunStatus.SUCCESS,
            1,
            "the summary",
        )
        assert [c.attempt for c in calls] == [1, 1] and told == [True]
    finally:
        await scheduler.stop()
        await store.close()


async def test_saturation_past_the_jobs_timeout_is_a_timeout(tmp_path: Path) -> None:
    clock = ManualClock(START)
    store = await CronStore.open(str(tmp_path / "bp.db"), clock=clock)
    calls = 0

    async def executor(ctx: JobContext) -> JobResult:
        nonlocal calls
        calls += 1
        raise ProviderSaturated("HTTP 503: overloaded")  # no Retry-After: 1 s

    scheduler = CronScheduler(store, executor)
    job_id = await store.add_job_full(
        "digest",
        "p",
        Schedule.one_shot(START + timedelta(seconds=1)),
        timeout_secs=5,
        max_retries=0,
    )
    scheduler.start()
    try:
        clock.advance(1)
        for _ in range(4):
            await until(lambda c=calls: calls > c or calls >= 4, what="a retry")
            clock.advance(1)
        clock.advance(2)
        await until(lambda: scheduler.running_count == 0, what="the timeout")
        (run,) = await store.list_runs(job_id)
        assert run.status is RunStatus.TIMEOUT and "timed out after 5s" in (run.error or "")
        assert calls >= 4
    finally:
        await scheduler.stop()
        await store.close()


async def test_calls_settle_at_what_a_concurrency_limited_provider_admits(
    tmp_path: Path,
) -> None:
    """A real HTTP stand-in admitting 5 requests at a time (429 Retry-After: 0 beyond), 60
    jobs due at once, the scheduler allowed 20 at a time: every run succeeds on its first
    attempt, nothing fails, and most calls are admitted (the limit settles near 5)."""
    in_flight = peak = refused = served = 0

    async def complete(request: web.Request) -> web.Response:
        nonlocal in_flight, peak, refused, served
        await request.read()
        if in_flight >= 5:
            refused += 1
            return web.json_response({}, status=429, headers={"Retry-After": "0"})
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        served += 1
        return web.json_response({"choices": [{"message": {"content": "ok"}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    store = await CronStore.open(str(tmp_path / "bp.db"))
    executor = OpenAIExecutor(store, base_url=f"http://{host}:{port}/v1", model="m")
    scheduler = CronScheduler(store, executor, max_concurrent_runs=20)
    at = Schedule.one_shot(datetime.now(UTC) + timedelta(seconds=1))
    await store.add_jobs([JobSpec(f"j{i}", "p", at) for i in range(60)])
    scheduler.start()
    try:
        await until(lambda: served == 60, timeout=30, what="60 answers")
        await until(lambda: scheduler.running_count == 0, timeout=10)
        runs = await store.list_recent_runs(200)
        assert len(runs) == 60
        assert {(r.status, r.attempt) for r in runs} == {(RunStatus.SUCCESS, 1)}
        assert refused < 60, f"{refused} refusals for 60 calls: the limit did not settle"
    finally:
        await scheduler.stop()
        await executor.aclose()
        await store.close()
        await runner.cleanup()


async def test_stop_hands_back_at_once_the_runs_waiting_for_a_slot_or_a_retry(
    tmp_path: Path,
) -> None:
    """A run claimed while the provider is saturated waits for the adaptive limit, and a run
    the provider refused sleeps in its Retry-After: neither is in an executor call, so
    stopping hands both back at once (no attempt used), like a run claimed ahead; the stop
    waits only for the run in a call."""
    clock = ManualClock(START)
    store = await CronStore.open(str(tmp_path / "wait.db"), clock=clock)
    release = asyncio.Event()
    calls: list[str] = []

    async def executor(ctx: JobContext) -> JobResult:
        calls.append(ctx.job_name)
        if ctx.job_name == "a" and calls.count("a") == 1:
            raise ProviderSaturated("HTTP 429", retry_after=3600)
        await release.wait()
        return JobResult("", "ok")

    first = START + timedelta(seconds=1)
    refused, running = await store.add_jobs(
        [JobSpec(n, "p", Schedule.one_shot(first)) for n in ("a", "b")]
    )
    (late,) = await store.add_jobs(
        [JobSpec("c", "p", Schedule.one_shot(first + timedelta(seconds=1)))]
    )
    scheduler = CronScheduler(
        store, executor, max_concurrent_runs=3, shutdown_timeout_secs=30, cancel_grace_secs=1
    )
    scheduler.start()
    clock.advance(1)
    await until(lambda: sorted(calls) == ["a", "b"], what="a refused, b running")
    clock.advance(1)  # c is claimed, but the limit fell to 1 (b in flight): c waits
    await until(lambda: len(scheduler.active_runs()) == 3, what="c claimed")
    assert calls.count("c") == 0
    assert sorted((n, started) for n, _, started in scheduler.active_runs()) == [
        ("a", False),
        ("b", True),
        ("c", False),
    ]
    stopping = asyncio.create_task(scheduler.stop())
    await until(lambda: len(scheduler.active_runs()) == 1, what="a and c handed back", timeout=2)
    for job_id, why in ((late, "waited for a free slot"), (refused, "saturated provider")):
        (run,) = await store.list_runs(job_id)
        assert run.status is RunStatus.INTERRUPTED and why in (run.error or ""), run.error
        job = await store.get_job(job_id)
        assert job is not None and job.retry_at is not None and job.retry_count == 0
    assert not stopping.done()  # b is in a call: the stop waits for it
    release.set()
    await asyncio.wait_for(stopping, 5)
    (run,) = await store.list_runs(running)
    assert run.status is RunStatus.SUCCESS
    await store.close()


async def test_a_call_refused_while_stopping_is_handed_back_at_once(tmp_path: Path) -> None:
    """The stop waits for a run in an executor call; when that call comes back "saturated"
    (Retry-After: an hour), the run is handed back then, not after shutdown_timeout_secs."""
    clock = ManualClock(START)
    store = await CronStore.open(str(tmp_path / "late.db"), clock=clock)
    answer = asyncio.Event()
    calls = 0

    async def executor(ctx: JobContext) -> JobResult:
        nonlocal calls
        calls += 1
        await answer.wait()
        raise ProviderSaturated("HTTP 429", retry_after=3600)

    (job_id,) = await store.add_jobs(
        [JobSpec("a", "p", Schedule.one_shot(START + timedelta(seconds=1)))]
    )
    scheduler = CronScheduler(store, executor, shutdown_timeout_secs=30, cancel_grace_secs=1)
    scheduler.start()
    clock.advance(1)
    await until(lambda: calls == 1, what="the call")
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # in a call: the stop waits
    started = time.monotonic()
    answer.set()
    await asyncio.wait_for(stopping, 5)
    assert time.monotonic() - started < 2
    (run,) = await store.list_runs(job_id)
    assert run.status is RunStatus.INTERRUPTED and "saturated provider" in (run.error or "")
    job = await store.get_job(job_id)
    assert job is not None and job.retry_count == 0 and job.retry_at == START + timedelta(seconds=1)
    assert calls == 1
    await store.close()
