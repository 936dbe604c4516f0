"""Pacing by the provider's announced budgets: the pure pacer under a ManualClock, then the
scheduler against the OpenAI-compatible stand-in that refuses (429) past its limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from starpod_cron.executors import OpenAIExecutor
from starpod_cron.pacing import Pacer
from starpod_cron.ratelimits import Budget, RateLimits
from starpod_cron.settings import SchedulerSettings
from tests.conftest import START, until
from tests.openai_standin import Limits, running_openai


def limits(**budgets: Budget) -> RateLimits:
    return RateLimits({k.replace("_", "-"): v for k, v in budgets.items()})


def turn(pacer: Pacer) -> int:
    """Book a call's turn and send it then (as the scheduler and the executor do)."""
    at = pacer.book()
    pacer.sent()
    return at


def test_one_call_learns_the_limits_then_calls_are_spread_over_the_time_to_the_reset() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    assert pacer.cap() == 1  # nothing known: one call, to learn
    now = clock.now_ms()
    assert pacer.book() == now
    first = pacer.sent()
    pacer.observe(first, limits(requests=Budget(10, 10, 1.0)))  # 10 left, whole in 1 s
    assert pacer.cap() == 10
    turns = [turn(pacer) - now for _ in range(3)]
    assert turns == [0, 100, 200]  # 1 s / 10 calls
    assert pacer.cap() == 7  # sent after the answer: not in the provider's count yet


def test_nothing_left_waits_for_the_reset_and_then_the_budget_is_whole() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    now = clock.now_ms()
    pacer.observe(pacer.sent(), limits(requests=Budget(0, 5, 2.5)))
    assert pacer.book() == now + 2500
    clock.advance(2.5)
    assert pacer.cap() == 5  # the reset passed: the whole limit again


def test_tokens_are_paced_by_the_tokens_a_call_uses() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    now = clock.now_ms()
    sent = pacer.sent()
    pacer.used(100)
    pacer.observe(sent, limits(requests=Budget(1000, 1000, 0.0), tokens=Budget(1000, 2000, 5.0)))
    assert pacer.cap() == 10  # 1000 tokens left, 100 a call
    assert [turn(pacer) - now for _ in range(2)] == [0, 500]  # 5 s / 10 calls


def test_an_older_answer_does_not_overwrite_a_newer_one() -> None:
    clock = ManualClock(START)
    pacer = Pacer(clock)
    old, new = pacer.sent(), pacer.sent()
    pacer.observe(new, limits(requests=Budget(3, 10, 1.0)))
    pacer.observe(old, limits(requests=Budget(9, 10, 1.0)))
    assert pacer.cap() == 3


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
