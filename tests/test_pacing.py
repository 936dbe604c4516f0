"""Pacing by the provider's announced budgets: the pure pacer under a ManualClock, then the
scheduler against the OpenAI-compatible stand-in that refuses (429) past its limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    ManualClock,
    RunStatus,
    Schedule,
)
from starpod_cron.backpressure import AdaptiveLimit
from starpod_cron.declared import DeclaredExecutor, JobRegistry
from starpod_cron.executors import OpenAIExecutor
from starpod_cron.pacing import Pacer, Sent
from starpod_cron.ratelimits import Budget, RateLimits, parse
from starpod_cron.settings import SchedulerSettings
from tests.conftest import START, until
from tests.openai_standin import Bucket, Limits, running_openai


def limits(**budgets: Budget) -> RateLimits:
    return RateLimits({k.replace("_", "-"): v for k, v in budgets.items()})


def turn(pacer: Pacer) -> int:
    """Book a call's turn and send it then (as the scheduler and the executor do)."""
    at = pacer.book()
    pacer.sent()
    return at


def test_one_call_learns_the_limits_first() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    assert pacer.cap() == 1  # nothing known: one call, to learn
    pacer.observe(pacer.sent(), limits(requests=Budget(60, 100, 4.0)))
    assert pacer.cap() == 58  # 60 left, less the 2 calls kept in reserve


@pytest.mark.parametrize(
    ("per_sec", "burst", "calls", "in_flight"),
    [(10, 100, 300, 0), (10, 100, 300, 5), (50, 50, 500, 20), (2, 5, 40, 3)],
)
def test_calls_never_outrun_a_refilling_budget_and_keep_up_with_it(
    per_sec: float, burst: float, calls: int, in_flight: int
) -> None:
    """The stand-in's budget (a bucket refilling at ``per_sec`` up to ``burst``, announced in
    OpenAI's headers), answers arriving ``in_flight`` calls late: every call is admitted (none
    would be a 429) and all take at most 15% longer than the budget allows."""
    clock = ManualClock(START)
    pacer = Pacer(clock)
    bucket = Bucket(burst, per_sec)
    began = clock.now_ms()
    pending: list[tuple[Sent, RateLimits]] = []
    for _ in range(calls):
        at = pacer.book()
        clock.set(max(at, clock.now_ms()))
        now = clock.now_ms() / 1000
        assert bucket.take(1, now), "a call past the budget: the provider would answer 429"
        pending.append((pacer.sent(), parse(bucket.headers("requests", now), now)))
        while len(pending) > in_flight:
            pacer.observe(*pending.pop(0))
    took = (clock.now_ms() - began) / 1000
    physical = (calls - burst) / per_sec
    assert physical * 0.9 <= took <= physical * 1.15 + 1 / per_sec


def test_nothing_left_waits_for_one_call_to_come_back_not_the_whole_reset() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    now = clock.now_ms()
    pacer.observe(pacer.sent(), limits(requests=Budget(0, 5, 2.5)))  # refills 2 per second
    assert turn(pacer) == now + 1500  # one call and the reserve of 2: 3 / (2 per s)
    clock.advance(2.5)
    assert pacer.cap() == 2  # the reset passed: the limit, less the call since and the reserve


def test_tokens_are_paced_by_the_tokens_a_call_uses() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    now = clock.now_ms()
    sent = pacer.sent()
    pacer.used(100)
    pacer.observe(sent, limits(requests=Budget(1000, 1000, 0.0), tokens=Budget(1000, 2000, 5.0)))
    assert pacer.cap() == 8  # 1000 tokens left, 100 a call, 2 calls' worth kept back
    assert [turn(pacer) - now for _ in range(2)] == [0, 250]  # 2000 tokens over 5 s


def test_an_older_answer_does_not_overwrite_a_newer_one() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    old, new = pacer.sent(), pacer.sent()
    pacer.observe(new, limits(requests=Budget(6, 10, 1.0)))
    pacer.observe(old, limits(requests=Budget(9, 10, 1.0)))
    assert pacer.cap() == 4  # 6 left less the reserve, not 9


def test_a_provider_that_announces_nothing_is_not_paced() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    pacer.observe(pacer.sent(), RateLimits())
    assert pacer.cap() is None
    now = clock.now_ms()
    assert [pacer.book() for _ in range(3)] == [now] * 3


def test_the_cap_lowers_the_adaptive_limit_before_any_refusal() -> None:
    limit = AdaptiveLimit(20)
    limit.pace(3)
    assert limit.allowed == 3 and limit.saturations == 0 and limit.limit == 20
    limit.pace(None)
    assert limit.allowed == 20


async def _burst(tmp_path: Path, *, paced: bool, jobs: int = 60) -> tuple[int, float, int]:
    """``jobs`` one-shots due at once against a stand-in admitting 20 requests/s (a burst of
    20); returns (429s, seconds from the first to the last admitted call, successes)."""
    async with running_openai(Limits(requests_per_sec=20, tokens_per_min=10**9)) as fake:
        store = await CronStore.open(str(tmp_path / f"pace-{paced}.db"))
        executor = OpenAIExecutor(store, base_url=fake.base_url, model="m", request_timeout_secs=10)

        async def unpaced(ctx: JobContext) -> JobResult:  # the same calls, no pacer to see
            return await executor(ctx)

        scheduler = CronScheduler(
            store,
            executor if paced else unpaced,
            SchedulerSettings(max_concurrent_runs=40, tick_secs=0.2),
        )
        at = datetime.now(UTC) + timedelta(seconds=1.5)
        for n in range(jobs):
            await store.add_job_full(f"j{n}", f"prompt {n}", Schedule.one_shot(at), max_retries=0)
        scheduler.start()
        try:
            await until(lambda: len(fake.admitted_at) >= jobs, timeout=30, what="every call")
            await until(lambda: scheduler.running_count == 0, timeout=10)
            runs = await store.list_recent_runs(jobs * 2)
            ok = sum(r.status is RunStatus.SUCCESS and r.attempt == 1 for r in runs)
            span = fake.admitted_at[-1] - fake.admitted_at[0]
            return fake.refused, span, ok
        finally:
            await scheduler.stop()
            await executor.aclose()
            await store.close()


async def test_headers_slow_dispatch_before_any_429(tmp_path: Path) -> None:
    """60 runs at once, 40 allowed in flight, a provider admitting 20/s with a burst of 20:
    paced by its headers, not one call is refused and the calls take about the physical
    limit ((60 - 20) / 20 = 2 s); unpaced, the same burst runs into 429s."""
    refused, span, ok = await _burst(tmp_path, paced=True)
    assert refused == 0 and ok == 60
    assert 1.5 < span < 4.0
    unpaced_refused, _, unpaced_ok = await _burst(tmp_path, paced=False)
    assert unpaced_refused > 0 and unpaced_ok == 60  # the test can fail: a burst is refused


async def test_the_pace_reaches_the_scheduler_through_declared_jobs(tmp_path: Path) -> None:
    """With jobs declared in code the gateway wraps the executor: its pacer still shows."""
    store = await CronStore.open(str(tmp_path / "d.db"))
    executor = OpenAIExecutor(store, base_url="http://127.0.0.1:9/v1", model="m")
    try:
        wrapped = DeclaredExecutor(JobRegistry(), executor)
        assert wrapped.pacer is executor.pacer
    finally:
        await executor.aclose()
        await store.close()
