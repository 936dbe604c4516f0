"""What runs cost and budgets enforced before dispatch, with a real scheduler, a ManualClock
and a function executor reporting usage, on every backend: costs add up exactly per run, job
and day; a spent budget skips runs (no executor call) with one message per period."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from starpod_cron import (
    CronJob,
    CronRun,
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    JobUpdate,
    ManualClock,
    RunStatus,
    Schedule,
    StoreSettings,
)
from starpod_cron.budget import SpendSettings, UsageRow, period_start, short_usd
from starpod_cron.models import ModelUsage
from starpod_cron.pricing import ModelPrice, PricingConfig
from starpod_cron.routing import DeliveryRouter
from starpod_cron.timeutil import to_ms
from tests.backends import query, tamper
from tests.conftest import START

CHAT = 42
PRICING = PricingConfig(
    models={
        "m": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0),
        "big": ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3),
    }
)
TWO_TENTHS_CENT = 2_000_000_000  # picodollars of 1,000 prompt + 500 completion tokens of "m"


class Model:
    """A stand-in model: each call answers with the usages queued (default: $0.002 of m)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.answers: list[JobResult] = []

    async def __call__(self, ctx: JobContext) -> JobResult:
        self.calls.append(ctx.job_name)
        if self.answers:
            return self.answers.pop(0)
        return JobResult("s", "ok", 1000, 500, "m", (ModelUsage("m", 1000, 500),))


def settings(**kw: Any) -> StoreSettings:
    spend = kw.pop("spend", SpendSettings(pricing=PRICING))
    return StoreSettings(spend=spend, **kw)


@pytest.fixture
def store_settings() -> StoreSettings:
    return settings()


@pytest.fixture
async def store(
    url: str, clock: ManualClock, store_settings: StoreSettings
) -> AsyncIterator[CronStore]:
    router = DeliveryRouter(notify_chat_ids=(CHAT,))
    s = await CronStore.open(url, clock=clock, settings=store_settings, delivery_planner=router)
    yield s
    await s.close()


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
async def scheduler(store: CronStore, model: Model) -> AsyncIterator[CronScheduler]:
    s = CronScheduler(store, model, tick_secs=30, shutdown_timeout_secs=0.2)
    s.start()
    yield s
    await s.stop()


async def add(store: CronStore, name: str, **fields: Any) -> CronJob:
    spec = JobSpec(name, "digest", Schedule.interval(every_ms=1000), max_retries=0, **fields)
    (job_id,) = await store.add_jobs([spec])
    job = await store.get_job(job_id)
    assert job is not None
    return job


async def ended(store: CronStore, job: CronJob, count: int) -> list[CronRun]:
    """Wait until ``count`` runs of ``job`` ended; its ended runs, oldest first."""
    runs: list[CronRun] = []
    for _ in range(2000):
        runs = [r for r in reversed(await store.list_runs(job.id, 200)) if r.status.is_final]
        if len(runs) >= count:
            return runs
        await asyncio.sleep(0.005)
    pytest.fail(f"{job.name}: {len(runs)} of {count} runs ended")


async def fire(store: CronStore, clock: ManualClock, job: CronJob, count: int) -> list[CronRun]:
    """Move the clock one fire at a time until ``count`` more runs of ``job`` ended; its first
    runs up to those (a fire claimed ahead and skipped may have ended too)."""
    already = len(await ended(store, job, 0))
    for i in range(1, count + 1):
        clock.advance(1)
        await ended(store, job, already + i)
    return (await ended(store, job, already + count))[: already + count]


def total(rows: list[UsageRow]) -> tuple[int, int, int]:
    return (
        sum(r.runs for r in rows),
        sum(r.tokens for r in rows),
        sum(r.cost_pusd for r in rows),
    )


async def notices(store: CronStore, job: CronJob) -> list[str]:
    rows = await store.list_deliveries(0, None, 10_000)
    return [
        d.payload["text"]
        for d in rows
        if d.job_id == job.id and d.destination == f"tg:{CHAT}" and d.payload.get("text")
        if "spent its budget" in d.payload["text"]
    ]


async def test_costs_add_up_exactly_per_run_job_and_day(
    store: CronStore, scheduler: CronScheduler, model: Model, clock: ManualClock
) -> None:
    job = await add(store, "digest")
    other = await add(store, "other", enabled=False)
    model.answers = [
        JobResult("s", "a", 1000, 500, "m", (ModelUsage("m", 1000, 500),)),
        # escalated: two models, both counted; cached prompt tokens at their own price
        JobResult(
            "s",
            "b",
            1700,
            900,
            "big",
            (ModelUsage("m", 700, 100), ModelUsage("big", 1000, 800, cached_tokens=400)),
        ),
        JobResult("s", "c", 3, 7, "m"),  # no usages: one usage of its model
        JobResult("s", "d"),  # no model, no tokens: costs nothing
        JobResult("s", "e", 10, 10, "unpriced", (ModelUsage("unpriced", 10, 10),)),
    ]
    runs = await fire(store, clock, job, 5)
    costs = [r.cost_usd for r in runs]
    big = 700 * 1_000_000 + 100 * 2_000_000 + 600 * 3_000_000 + 400 * 300_000 + 800 * 15_000_000
    picos = [TWO_TENTHS_CENT, big, 3 * 1_000_000 + 7 * 2_000_000, 0]
    assert costs == [p / 10**12 for p in picos] + [None]  # unpriced: unknown, never 0
    day = await store.usage(scope="job", key=job.id, period="day")
    assert {r.start for r in day} == {START.replace(hour=0)}
    assert total(day) == (5, 1500 + 2600 + 10 + 20, sum(picos))  # exact integers
    assert {r.model: r.unpriced_runs for r in day}["unpriced"] == 1
    month = await store.usage(scope="job", key=job.id, period="month")
    assert total(month) == total(day)
    assert total(await store.usage(scope="global", period="all")) == total(day)
    assert await store.usage(scope="job", key=other.id) == []


async def test_a_spent_day_budget_skips_runs_without_calling_and_says_so_once(
    store: CronStore, scheduler: CronScheduler, model: Model, clock: ManualClock
) -> None:
    job = await add(store, "digest", budget_usd_per_day=0.005)
    runs = await fire(store, clock, job, 6)
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 3 + [RunStatus.SKIPPED] * 3
    assert model.calls == ["digest"] * 3  # no request once the budget is spent
    assert runs[3].error == "budget: $0.006 of $0.005 today for job 'digest'"
    assert runs[3].cost_usd == 0
    assert runs[3].notice is not None and runs[4].notice is None
    said = await notices(store, job)
    assert len(said) == 1 and "until midnight" in said[0]
    # the next day (midnight UTC, the job's zone) the budget starts again, and so do runs
    before = len(await ended(store, job, 6))
    clock.set(START.replace(hour=0) + timedelta(days=1))
    runs = (await fire(store, clock, job, 5))[before:]
    assert [r.status for r in runs].count(RunStatus.SUCCESS) == 3  # after a missed fire
    assert runs[-1].error is not None and runs[-1].error.startswith("budget: $0.006 of")
    assert model.calls == ["digest"] * 6
    assert len(await notices(store, job)) == 2  # one per period and budget


async def test_a_token_budget_and_a_month_budget(
    store: CronStore, scheduler: CronScheduler, model: Model, clock: ManualClock
) -> None:
    tokens = await add(store, "tokens", budget_tokens_per_day=3000)
    runs = await fire(store, clock, tokens, 3)
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 2 + [RunStatus.SKIPPED]
    assert runs[2].error == "budget: 3,000 tokens of 3,000 tokens today for job 'tokens'"
    await store.update_job(tokens.id, JobUpdate(enabled=False))
    month = await add(store, "month", budget_usd_per_month=0.003)
    runs = await fire(store, clock, month, 3)
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 2 + [RunStatus.SKIPPED]
    assert runs[2].error == "budget: $0.004 of $0.003 this month for job 'month'"


@pytest.mark.parametrize(
    "store_settings",
    [settings(spend=SpendSettings(pricing=PRICING, user_budget_usd_per_month=0.003))],
)
async def test_an_owner_budget_covers_every_job_of_the_owner_in_their_zone(
    store: CronStore, scheduler: CronScheduler, model: Model, clock: ManualClock
) -> None:
    await store.set_user_timezone("u1", "Pacific/Auckland")
    first = await add(store, "first", user_id="u1")
    runs = await fire(store, clock, first, 2)
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 2
    await store.update_job(first.id, JobUpdate(enabled=False))
    second = await add(store, "second", user_id="u1")
    runs = await fire(store, clock, second, 1)
    assert runs[0].error == "budget: $0.004 of $0.003 this month for user 'u1'"
    unlimited = await add(store, "agent-level")  # no owner: no owner budget
    runs = await fire(store, clock, unlimited, 1)
    assert runs[0].status == RunStatus.SUCCESS
    owner = await store.usage(scope="owner", key="u1", period="month")
    auckland_month = period_start(to_ms(clock.now()), "Pacific/Auckland", "month")
    assert [to_ms(r.start) for r in owner if r.start] == [auckland_month]


@pytest.mark.parametrize("store_settings", [settings(budget_usd_per_day=0.001)])
async def test_the_global_budget_stops_every_job(
    store: CronStore, scheduler: CronScheduler, model: Model, clock: ManualClock
) -> None:
    one = await add(store, "one")
    runs = await fire(store, clock, one, 2)
    assert [r.status for r in runs] == [RunStatus.SUCCESS, RunStatus.SKIPPED]
    assert runs[1].error == "budget: $0.002 of $0.001 today for all jobs"
    await store.update_job(one.id, JobUpdate(enabled=False))
    two = await add(store, "two")
    runs = await fire(store, clock, two, 1)
    assert runs[0].status == RunStatus.SKIPPED
    assert model.calls == ["one"]


def test_short_usd() -> None:
    assert short_usd(6 * 10**9) == "$0.006"
    assert short_usd(15 * 10**11) == "$1.50"
    assert short_usd(12 * 10**12) == "$12.00"
    assert short_usd(1) == "$0.00"  # under a millionth of a dollar


def test_the_budgets_of_agent_toml_reach_the_store_settings() -> None:
    from starpod_cron.bootstrap import spend_settings
    from starpod_cron.config import parse_config
    from starpod_cron.errors import ConfigError

    config = parse_config(
        "[cron]\nbudget_usd_per_day = 5.0\n[gateway]\nuser_budget_usd_per_month = 10\n"
        '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
        '"bob-token-0123456789abc" = { user_id = "bob", budget_usd_per_month = 2.5 }\n'
        '"bob-token-2-0123456789ab" = { user_id = "bob", budget_usd_per_month = 4 }\n'
        '[pricing]\n"m" = { input_per_mtok = 1, output_per_mtok = 2 }\n'
    )
    assert config.store_settings.budget_usd_per_day == 5.0
    spend = spend_settings(config)
    assert spend.pricing.price("m") is not None
    assert (spend.owner_budget("alice"), spend.owner_budget("bob")) == (10, 2.5)  # the lowest
    assert spend.owner_budget(None) is None  # agent-level jobs have no owner budget
    for bad in (
        "[cron]\nbudget_usd_per_day = -1\n",
        "[gateway]\nuser_budget_usd_per_month = 1e9\n",
    ):
        with pytest.raises(ConfigError, match="budget_usd_per"):
            parse_config(bad)
    with pytest.raises(ConfigError, match="spend"):
        parse_config("[cron]\nspend = 1\n")  # not a [cron] key


@pytest.mark.parametrize("store_settings", [settings(budget_usd_per_day=0.001)])
async def test_a_run_claimed_ahead_is_checked_again_at_its_start(
    store: CronStore, scheduler: CronScheduler, model: Model, clock: ManualClock
) -> None:
    early = START + timedelta(seconds=10)
    late = early + timedelta(milliseconds=500)
    (first,) = await store.add_jobs([JobSpec("early", "p", Schedule.one_shot(early))])
    (second,) = await store.add_jobs([JobSpec("late", "p", Schedule.one_shot(late))])

    async def runs_of(job_id: str, status: RunStatus) -> list[CronRun]:
        for _ in range(2000):
            found = [r for r in await store.list_runs(job_id, 10) if r.status is status]
            if found:
                return found
            await asyncio.sleep(0.005)
        pytest.fail(f"no {status.value} run of {job_id}")

    clock.set(early - timedelta(milliseconds=300))  # both fires within the claim-ahead second
    await runs_of(first, RunStatus.RUNNING)
    await runs_of(second, RunStatus.RUNNING)  # claimed while nothing was spent
    clock.set(early)
    await runs_of(first, RunStatus.SUCCESS)  # spends $0.002 of the day's $0.001
    clock.set(late)
    (skipped,) = await runs_of(second, RunStatus.SKIPPED)
    assert skipped.error == "budget: $0.002 of $0.001 today for all jobs"
    assert skipped.notice is not None and "until midnight" in skipped.notice
    assert model.calls == ["early"]  # no request for the run claimed ahead
    job = await store.get_job(second)
    assert job is not None and job.running_count == 0


async def test_all_time_is_the_sum_of_the_months_and_written_as_two_rows_per_scope(
    store: CronStore, scheduler: CronScheduler, clock: ManualClock, url: str
) -> None:
    job = await add(store, "digest")
    await fire(store, clock, job, 2)  # 21 November
    clock.advance(15 * 86400)  # into December: a month of its own
    await ended(store, job, 3)
    await fire(store, clock, job, 1)
    await scheduler.stop()  # nothing more ends while the views are compared
    months = await store.usage(scope="job", key=job.id, period="month")
    assert sorted({r.start for r in months}) == [
        START.replace(day=1, hour=0),
        START.replace(month=12, day=1, hour=0),
    ]
    runs = [r for r in await store.list_runs(job.id, 100) if r.status == "success"]
    assert len(runs) >= 3 and {r.model for r in runs} == {"m"}
    whole = await store.usage(scope="job", key=job.id, period="all")
    assert {r.period for r in whole} == {"all"} and {r.start for r in whole} == {None}
    for model in {r.model for r in months} | {r.model for r in whole}:
        assert total([r for r in whole if r.model == model]) == total(
            [r for r in months if r.model == model]
        )
    n = len(runs)
    assert total([r for r in whole if r.model == "m"]) == (n, 1500 * n, TWO_TENTHS_CENT * n)
    assert total(whole) == total(months)
    # no all-time row is written (each run upserts its day and its month per scope) ...
    stored = await query(url, "SELECT DISTINCT period FROM spend ORDER BY period")
    assert stored == [("day",), ("month",)]
    # ... and one an earlier version wrote (the sum of the months then) is not read again
    await tamper(
        url,
        "INSERT INTO spend (scope, key, period, start_ms, model, runs, prompt_tokens)"
        f" VALUES ('job', '{job.id}', 'all', 0, 'm', 999, 999)",
    )
    assert await store.usage(scope="job", key=job.id, period="all") == whole
    everything = await store.usage(scope="job", key=job.id)
    assert [r for r in everything if r.period == "all"] == whole
