"""A job's own model call (issue 25): its model, system prompt, temperature and max_tokens in
the request; fallbacks on a missing model or a last attempt's server error; escalation; the
model and usages each run records. Real store, real scheduler, the OpenAI-compatible
stand-in over HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobSpec,
    ManualClock,
    ModelUsage,
    RunStatus,
    Schedule,
    SessionMode,
)
from starpod_cron.config import ExecutorConfig
from starpod_cron.errors import ModelNotFound, ProviderServerError
from starpod_cron.executors import build_executor
from starpod_cron.models import ModelOptions
from starpod_cron.pricing import ModelPrice, PricingConfig, picodollars
from tests.conftest import START, until
from tests.executors.conftest import FakeOpenAI, Reply


def openai(fake: FakeOpenAI, model: str = "house-model", **kw: object) -> ExecutorConfig:
    return ExecutorConfig(
        kind="openai",
        base_url=fake.base_url,
        model=model,
        api_key_env="",
        system_prompt="House rules.",
        **kw,  # type: ignore[arg-type]
    )


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion}


async def test_a_scheduled_run_sends_the_jobs_model_and_options_and_keeps_them(
    store: CronStore, fake_openai: FakeOpenAI, clock: ManualClock
) -> None:
    due = Schedule.one_shot(START + timedelta(seconds=1))
    own, plain = await store.add_jobs(
        [
            JobSpec(
                "own",
                "Summarize",
                due,
                model="gpt-4o-mini",
                system_prompt="Be terse.",
                temperature=0.2,
                max_tokens=64,
            ),
            JobSpec("plain", "Summarize too", due),
        ]
    )
    executor = build_executor(openai(fake_openai, temperature=0.9, max_tokens=999), store)
    scheduler = CronScheduler(store, executor)
    fake_openai.answer(
        Reply(content="a", usage=usage(12, 3)), Reply(content="b", usage=usage(12, 3))
    )
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: len(fake_openai.requests) == 2)
        await until(lambda: scheduler.running_count == 0)
    finally:
        await scheduler.stop()
        await executor.aclose()
    by_prompt = {r["messages"][-1]["content"]: r for r in fake_openai.requests}
    mine, house = by_prompt["Summarize"], by_prompt["Summarize too"]
    assert (mine["model"], mine["temperature"], mine["max_tokens"]) == ("gpt-4o-mini", 0.2, 64)
    assert mine["messages"][0]["content"].startswith("Be terse.")
    assert "House rules." not in mine["messages"][0]["content"]
    assert (house["model"], house["temperature"], house["max_tokens"]) == ("house-model", 0.9, 999)
    assert house["messages"][0]["content"].startswith("House rules.")
    (run,) = await store.list_runs(own)
    assert (run.model, run.usages) == ("gpt-4o-mini", (ModelUsage("gpt-4o-mini", 12, 3),))
    (other,) = await store.list_runs(plain)
    assert other.model == "house-model"

    # [executor] model changes: the job keeps the model it was created with
    changed = build_executor(openai(fake_openai, model="paid-default"), store)
    try:
        again = await CronScheduler(store, changed).run_now(own)
    finally:
        await changed.aclose()
    assert fake_openai.requests[-1]["model"] == "gpt-4o-mini"
    assert again.model == "gpt-4o-mini"


async def test_a_missing_model_falls_back_in_order_and_the_run_says_which_answered(
    store: CronStore, fake_openai: FakeOpenAI
) -> None:
    (job_id,) = await store.add_jobs(
        [
            JobSpec(
                "fb",
                "Report",
                Schedule.interval(every_ms=3_600_000),
                model="gone",
                fallback_models=["also-gone", "works"],
            )
        ]
    )
    fake_openai.answer(
        Reply(404, "The model `gone` does not exist"),
        Reply(400, "model_not_found: also-gone"),
        Reply(content="report", usage=usage(20, 5)),
    )
    executor = build_executor(openai(fake_openai), store)
    try:
        run = await CronScheduler(store, executor).run_now(job_id)
        assert [r["model"] for r in fake_openai.requests] == ["gone", "also-gone", "works"]
        assert (run.status, run.result_summary, run.model) == (RunStatus.SUCCESS, "report", "works")
        assert run.usages == (ModelUsage("works", 20, 5),)
        assert (run.prompt_tokens, run.completion_tokens) == (20, 5)

        # the last fallback missing too: a permanent failure naming the model
        fake_openai.answer(Reply(404, "nope"), Reply(404, "nope"), Reply(404, "nope"))
        failed = await CronScheduler(store, executor).run_now(job_id)
        assert failed.status is RunStatus.FAILED
        assert failed.error is not None and "'works' not found" in failed.error
    finally:
        await executor.aclose()


def ctx(options: ModelOptions, *, last_attempt: bool) -> JobContext:
    return JobContext(
        prompt="Report",
        session_mode=SessionMode.ISOLATED,
        job_name="fb",
        job_id="job-1",
        user_id=None,
        run_id="run-1",
        attempt=1,
        scheduled_for=START,
        options=options,
        last_attempt=last_attempt,
    )


async def test_a_server_error_falls_back_only_on_the_runs_last_attempt(
    store: CronStore, fake_openai: FakeOpenAI
) -> None:
    options = ModelOptions(model="primary", fallback_models=("backup",))
    executor = build_executor(openai(fake_openai), store)
    try:
        fake_openai.answer(Reply(500, "boom"))
        with pytest.raises(ProviderServerError):  # retried by the scheduler, same model
            await executor(ctx(options, last_attempt=False))
        assert [r["model"] for r in fake_openai.requests] == ["primary"]
        fake_openai.answer(Reply(502, "boom"), Reply(content="saved", usage=usage(7, 2)))
        result = await executor(ctx(options, last_attempt=True))
        assert [r["model"] for r in fake_openai.requests] == ["primary", "primary", "backup"]
        assert (result.summary, result.model) == ("saved", "backup")
        fake_openai.answer(Reply(404, "no such model"))  # no fallback left: the error itself
        with pytest.raises(ModelNotFound):
            await executor(ctx(replace(options, fallback_models=()), last_attempt=True))
    finally:
        await executor.aclose()


async def test_a_claimed_run_knows_whether_it_is_the_last_attempt(
    store: CronStore, fake_openai: FakeOpenAI, clock: ManualClock
) -> None:
    """Through the scheduler: attempt 1 of a job with one retry gets a 500 and is retried with
    the same model; attempt 2 (the last) falls back."""
    (job_id,) = await store.add_jobs(
        [
            JobSpec(
                "fb",
                "Report",
                Schedule.one_shot(START + timedelta(seconds=1)),
                model="primary",
                fallback_models=["backup"],
                max_retries=1,
            )
        ]
    )
    fake_openai.answer(Reply(500, "boom"), Reply(500, "boom"), Reply(content="ok"))
    executor = build_executor(openai(fake_openai), store)
    scheduler = CronScheduler(store, executor)
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: len(fake_openai.requests) == 1)
        await until(lambda: scheduler.running_count == 0)
        clock.advance(30)  # the first retry's backoff
        await until(lambda: len(fake_openai.requests) == 3)
        await until(lambda: scheduler.running_count == 0)
    finally:
        await scheduler.stop()
        await executor.aclose()
    assert [r["model"] for r in fake_openai.requests] == ["primary", "primary", "backup"]
    runs = await store.list_runs(job_id)
    assert [(r.attempt, r.status, r.model) for r in runs] == [
        (2, RunStatus.SUCCESS, "backup"),
        (1, RunStatus.FAILED, None),
    ]


async def test_an_escalated_run_asks_the_stronger_model_the_same_messages(
    store: CronStore, fake_openai: FakeOpenAI
) -> None:
    (job_id,) = await store.add_jobs(
        [
            JobSpec(
                "triage",
                "Triage the alerts",
                Schedule.interval(every_ms=3_600_000),
                model="cheap",
                escalate_to="strong",
            )
        ]
    )
    fake_openai.answer(
        Reply(content="  [ESCALATE] too many alerts", usage=usage(100, 4)),
        Reply(content="3 real incidents", usage=usage(100, 60)),
    )
    executor = build_executor(openai(fake_openai), store)
    try:
        run = await CronScheduler(store, executor).run_now(job_id)
        first, second = fake_openai.requests
        assert (first["model"], second["model"]) == ("cheap", "strong")
        assert first["messages"] == second["messages"]
        assert "[ESCALATE]" in first["messages"][0]["content"]  # the model is told the token
        assert (run.result_summary, run.model) == ("3 real incidents", "strong")
        assert run.usages == (ModelUsage("cheap", 100, 4), ModelUsage("strong", 100, 60))
        assert (run.prompt_tokens, run.completion_tokens) == (200, 64)

        fake_openai.answer(Reply(content="all quiet", usage=usage(100, 2)))
        calm = await CronScheduler(store, executor).run_now(job_id)
        assert (calm.model, len(fake_openai.requests)) == ("cheap", 3)
        assert calm.usages == (ModelUsage("cheap", 100, 2),)
    finally:
        await executor.aclose()


async def test_cached_prompt_tokens_are_recorded_and_priced_at_the_cached_price(
    store: CronStore, fake_openai: FakeOpenAI
) -> None:
    (job_id,) = await store.add_jobs(
        [JobSpec("cached", "Summarize", Schedule.interval(every_ms=3_600_000), model="big")]
    )
    served = {
        "prompt_tokens": 1000,
        "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 800},
    }
    fake_openai.answer(Reply(content="done", usage=served))  # type: ignore[arg-type]
    executor = build_executor(openai(fake_openai), store)
    try:
        run = await CronScheduler(store, executor).run_now(job_id)
    finally:
        await executor.aclose()
    assert run.usages == (ModelUsage("big", 1000, 10, 800),)
    pricing = PricingConfig(
        {"big": ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)}
    )
    # 200 fresh at $2/Mtok, 800 cached at $0.50/Mtok, 10 out at $8/Mtok
    assert pricing.cost(run.usages) == picodollars(200 * 2e-6 + 800 * 0.5e-6 + 10 * 8e-6)
