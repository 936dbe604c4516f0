"""The openai executor over real HTTP against an OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    ManualClock,
    PermanentJobError,
    ProviderSaturated,
    RunStatus,
    Schedule,
    SessionMode,
    StoreSettings,
    TransientJobError,
)
from starpod_cron.config import ExecutorConfig
from starpod_cron.executors import OpenAIExecutor, build_executor
from starpod_cron.executors.openai import retry_after_secs
from tests.conftest import START, until
from tests.executors.conftest import FakeOpenAI, Reply


def ctx(
    prompt: str = "Summarize overnight alerts",
    *,
    mode: SessionMode = SessionMode.ISOLATED,
    user: str | None = None,
    run: str = "run-1",
) -> JobContext:
    return JobContext(
        prompt=prompt,
        session_mode=mode,
        job_name="morning-check",
        job_id="job-1",
        user_id=user,
        run_id=run,
        attempt=1,
        scheduled_for=START,
    )


@pytest.fixture
async def executor(store: CronStore, fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIExecutor]:
    ex = OpenAIExecutor(
        store,
        base_url=fake_openai.base_url,
        model="llama3.2",
        api_key="sk-test",
        system_prompt="You are helpful.",
        request_timeout_secs=10,  # a loaded machine (a parallel run) may take a second to connect
        max_history_messages=4,
    )
    yield ex
    await ex.aclose()


async def test_success_returns_text_usage_and_a_fresh_session(
    executor: OpenAIExecutor, fake_openai: FakeOpenAI
) -> None:
    fake_openai.answer(
        Reply(content="All clear", usage={"prompt_tokens": 42, "completion_tokens": 3})
    )
    result = await executor(ctx())
    assert (result.summary, result.prompt_tokens, result.completion_tokens) == ("All clear", 42, 3)
    (request,) = fake_openai.requests
    assert request["model"] == "llama3.2"
    system, user = request["messages"]
    assert system["role"] == "system" and system["content"].startswith("You are helpful.")
    assert "automated, scheduled run of the job 'morning-check'" in system["content"]
    assert "Do not create, change or schedule jobs" in system["content"]
    assert user == {"role": "user", "content": "Summarize overnight alerts"}
    assert fake_openai.headers[0]["Authorization"] == "Bearer sk-test"
    second = await executor(ctx())
    assert second.session_id != result.session_id  # isolated: a new session every run
    assert second.prompt_tokens is None  # no usage reported


async def test_isolated_sends_no_history_main_sends_earlier_turns(
    executor: OpenAIExecutor, fake_openai: FakeOpenAI, store: CronStore
) -> None:
    main = SessionMode.MAIN
    first = await executor(ctx("What is 2+2?", mode=main, user="u1", run="r1"))
    second = await executor(ctx("And times 3?", mode=main, user="u1", run="r2"))
    assert first.session_id == second.session_id
    assert [m["content"] for m in fake_openai.requests[1]["messages"][1:]] == [
        "What is 2+2?",
        "echo: What is 2+2?",
        "And times 3?",
    ]
    await executor(ctx("Unrelated", run="r3"))  # isolated
    assert len(fake_openai.requests[2]["messages"]) == 2
    other = await executor(ctx("Hi", mode=main, user="u2", run="r4"))  # another user's session
    assert other.session_id != first.session_id
    assert len(fake_openai.requests[3]["messages"]) == 2
    # trimmed to max_history_messages (4): the oldest turn is dropped
    await executor(ctx("Third", mode=main, user="u1", run="r5"))
    assert [m["content"] for m in fake_openai.requests[4]["messages"][1:]] == [
        "What is 2+2?",
        "echo: What is 2+2?",
        "And times 3?",
        "echo: And times 3?",
        "Third",
    ]
    await executor(ctx("Fourth", mode=main, user="u1", run="r6"))
    assert [m["content"] for m in fake_openai.requests[5]["messages"][1:-1]] == [
        "And times 3?",
        "echo: And times 3?",
        "Third",
        "echo: Third",
    ]
    stored = await store.session_messages(first.session_id, 100)
    assert len(stored) == 4 and stored[-1].run_id == "r6"


@pytest.mark.parametrize(
    ("reply", "error", "retry_after", "text"),
    [
        (Reply(429, "slow down", {"Retry-After": "120"}), ProviderSaturated, 120, "HTTP 429"),
        (Reply(503, "overloaded"), ProviderSaturated, None, "HTTP 503"),
        (Reply(502, "bad gateway"), TransientJobError, None, "HTTP 502"),
        (Reply(500, "boom"), TransientJobError, None, "HTTP 500"),
        (Reply(408, "timeout"), TransientJobError, None, "HTTP 408"),
        (Reply(400, "model 'nope' not found"), PermanentJobError, None, "not found"),
        (Reply(401, "bad key"), PermanentJobError, None, "HTTP 401"),
        (Reply(200, raw="<html>proxy error</html>"), TransientJobError, None, "unexpected"),
    ],
)
async def test_errors_are_classified(
    executor: OpenAIExecutor,
    fake_openai: FakeOpenAI,
    store: CronStore,
    reply: Reply,
    error: type[Exception],
    retry_after: float | None,
    text: str,
) -> None:
    fake_openai.answer(reply)
    with pytest.raises(error) as err:
        await executor(ctx(mode=SessionMode.MAIN))
    assert text in str(err.value)
    assert getattr(err.value, "retry_after", None) == retry_after
    session = await store.main_session_id("agent")
    assert await store.session_messages(session, 10) == []  # nothing appended on failure


async def test_a_server_that_does_not_answer_in_time_is_a_transient_error(
    store: CronStore, fake_openai: FakeOpenAI
) -> None:
    fake_openai.answer(Reply(delay=2.0))
    ex = OpenAIExecutor(
        store, base_url=fake_openai.base_url, model="llama3.2", request_timeout_secs=0.5
    )
    try:
        with pytest.raises(TransientJobError, match=r"did not answer within 0\.5s"):
            await ex(ctx(mode=SessionMode.MAIN))
    finally:
        await ex.aclose()
    session = await store.main_session_id("agent")
    assert await store.session_messages(session, 10) == []  # nothing appended on failure


async def test_unreachable_server_is_transient(store: CronStore) -> None:
    ex = OpenAIExecutor(store, base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(TransientJobError, match="cannot reach model server"):
        await ex(ctx())
    await ex.aclose()


def test_retry_after_forms() -> None:
    assert retry_after_secs("7") == 7
    assert retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10
    assert retry_after_secs("soon") is None and retry_after_secs(None) is None


async def test_through_the_scheduler_usage_retry_after_and_permanent(
    store: CronStore,
    fake_openai: FakeOpenAI,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-from-env")
    config = ExecutorConfig(
        kind="openai", base_url=fake_openai.base_url, model="qwen", api_key_env="MY_KEY"
    )
    executor = build_executor(config, store)
    scheduler = CronScheduler(store, executor)
    fake_openai.answer(
        Reply(429, "rate limited", {"Retry-After": "600"}),
        Reply(content="Done at last", usage={"prompt_tokens": 10, "completion_tokens": 5}),
        Reply(400, "unknown model"),
    )
    job_id = await store.add_job(
        "report", "Write the report", Schedule.one_shot(START + timedelta(seconds=1))
    )
    bad_id = await store.add_job("bad", "x", Schedule.one_shot(START + timedelta(hours=1)))
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: len(fake_openai.requests) == 1)
        # 429: not a failure; the same attempt waits for the provider's Retry-After
        await scheduler.checkpoint()
        assert scheduler.running_count == 1 and await store.list_runs(job_id) != []
        clock.advance(599)
        await scheduler.checkpoint()
        assert len(fake_openai.requests) == 1  # not before the provider's delay
        clock.advance(1)
        await until(lambda: len(fake_openai.requests) == 2)
        await until(lambda: scheduler.running_count == 0)
        runs = await store.list_runs(job_id)
        assert [(r.status, r.attempt) for r in runs] == [(RunStatus.SUCCESS, 1)]
        assert (runs[0].result_summary, runs[0].prompt_tokens, runs[0].completion_tokens) == (
            "Done at last",
            10,
            5,
        )
        assert fake_openai.headers[0]["Authorization"] == "Bearer sk-from-env"
        clock.advance(3600)
        await until(lambda: len(fake_openai.requests) == 3)
        await until(lambda: scheduler.running_count == 0)
        bad = await store.get_job(bad_id)
        assert bad is not None and bad.retry_at is None and not bad.enabled
        assert bad.last_error is not None and "HTTP 400" in bad.last_error
    finally:
        await scheduler.stop()
        await executor.aclose()


async def test_job_timeout_cancels_the_http_call(
    store: CronStore, fake_openai: FakeOpenAI, clock: ManualClock
) -> None:
    executor = OpenAIExecutor(
        store, base_url=fake_openai.base_url, model="m", request_timeout_secs=60
    )
    fake_openai.answer(Reply(delay=30))
    scheduler = CronScheduler(store, executor)
    job_id = await store.add_job_full(
        "slow", "p", Schedule.one_shot(START + timedelta(seconds=1)), timeout_secs=5, max_retries=0
    )
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: len(fake_openai.requests) == 1)
        clock.advance(5)
        await until(lambda: scheduler.running_count == 0)
        (run,) = await store.list_runs(job_id)
        assert run.status is RunStatus.TIMEOUT
    finally:
        await scheduler.stop()
        await executor.aclose()


async def test_a_recurring_run_is_told_the_silent_token_and_a_one_shot_is_not(
    url: str, fake_openai: FakeOpenAI, clock: ManualClock
) -> None:
    settings = StoreSettings(silent_token="NOTHING_NEW")
    async with CronStore.open(url, clock=clock, settings=settings) as store:
        config = ExecutorConfig(kind="openai", base_url=fake_openai.base_url, model="qwen")
        executor = build_executor(config, store)  # the store's [cron] silent_token
        scheduler = CronScheduler(store, executor)
        fake_openai.answer(Reply(content=" NOTHING_NEW "), Reply(content="NOTHING_NEW"))
        watch = await store.add_job("watch", "Anything new?", Schedule.interval(every_ms=60_000))
        remind = await store.add_job(
            "remind", "Call Anna", Schedule.one_shot(START + timedelta(seconds=90))
        )
        scheduler.start()
        try:
            clock.advance(60)
            await until(lambda: len(fake_openai.requests) == 1)
            clock.advance(30)
            await until(lambda: len(fake_openai.requests) == 2)
            await until(lambda: scheduler.running_count == 0)
        finally:
            await scheduler.stop()
            await executor.aclose()
        recurring, once = (r["messages"][0]["content"] for r in fake_openai.requests)
        assert "answer exactly NOTHING_NEW and nothing else" in recurring
        assert "NOTHING_NEW" not in once and "automated, scheduled run" in once
        (quiet,) = await store.list_runs(watch)
        (told,) = await store.list_runs(remind)
        assert (quiet.silent, quiet.suppressed) == (True, "silent answer")
        assert (told.silent, told.result_summary) == (False, "NOTHING_NEW")  # always delivered


async def test_the_previous_result_is_sent_before_the_prompt_with_its_time(
    executor: OpenAIExecutor, fake_openai: FakeOpenAI
) -> None:
    ended = START - timedelta(hours=1)
    fake_openai.answer(Reply(content="changed: 3 alerts"), Reply(content="first"))
    remembered = replace(ctx(), previous_result="changed: 2 alerts", previous_at=ended)
    await executor(remembered)
    _, previous, user = fake_openai.requests[0]["messages"]
    assert previous["role"] == "system"
    assert ended.isoformat() in previous["content"]
    assert previous["content"].endswith("\n\nchanged: 2 alerts")
    assert user == {"role": "user", "content": "Summarize overnight alerts"}
    await executor(ctx())  # no previous result: no such message
    assert [m["role"] for m in fake_openai.requests[1]["messages"]] == ["system", "user"]
