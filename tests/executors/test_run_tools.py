"""Tools per job (issue 25): a job's ``tools`` says which cron tools its scheduled runs may
call; none by default; ``[executor] allow_scheduling_from_runs = true`` keeps meaning "all"
for jobs without their own. A run acts as its owner: never for another owner, never past the
owner's job limit. The model is the OpenAI-compatible stand-in calling the tools."""

from __future__ import annotations

from typing import Any

import pytest

from starpod_cron import CronScheduler, CronStore, InvalidJob, JobSpec, Schedule
from starpod_cron.config import ExecutorConfig
from starpod_cron.execfields import RUN_TOOL_NAMES
from starpod_cron.executors import build_executor
from starpod_cron.operations import UserLimits
from starpod_cron.tools import TOOLS
from tests.executors.conftest import FakeOpenAI, Reply
from tests.openai_standin import tool_call

HOURLY = Schedule.interval(every_ms=3_600_000)


def config(fake: FakeOpenAI, allow: bool = False) -> ExecutorConfig:
    return ExecutorConfig(
        kind="openai",
        base_url=fake.base_url,
        model="m",
        api_key_env="",
        allow_scheduling_from_runs=allow,
    )


def offered(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools", [])]


def tool_answers(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_the_names_a_job_may_list_are_the_cron_tools() -> None:
    assert set(RUN_TOOL_NAMES) == set(TOOLS)


async def test_an_unknown_tool_name_is_refused_with_the_names_it_may_be(store: CronStore) -> None:
    with pytest.raises(InvalidJob) as refused:
        await store.add_jobs([JobSpec("j", "p", HOURLY, tools=["cron_add", "rm_rf"])])
    assert "'rm_rf'" in str(refused.value) and "cron_add, cron_list" in str(refused.value)
    assert await store.list_jobs() == []


@pytest.mark.parametrize(
    ("allow", "tools", "expected"),
    [
        (False, None, []),  # the default: none
        (False, ["cron_list"], ["cron_list"]),
        (True, None, sorted(TOOLS)),  # allow_scheduling_from_runs: all, for compatibility
        (True, [], []),  # --no-tools wins over it
        (True, ["cron_get", "cron_list"], ["cron_get", "cron_list"]),
    ],
)
async def test_a_run_is_offered_exactly_its_jobs_tools(
    store: CronStore,
    fake_openai: FakeOpenAI,
    allow: bool,
    tools: list[str] | None,
    expected: list[str],
) -> None:
    (job_id,) = await store.add_jobs([JobSpec("j", "p", HOURLY, tools=tools)])
    executor = build_executor(config(fake_openai, allow), store)
    try:
        await CronScheduler(store, executor).run_now(job_id)
    finally:
        await executor.aclose()
    (request,) = fake_openai.requests
    assert sorted(offered(request)) == expected
    told = request["messages"][0]["content"]
    assert ("Do not create, change or schedule jobs" in told) is (not expected)


async def test_a_run_never_schedules_for_another_owner_nor_past_the_owners_limit(
    store: CronStore, fake_openai: FakeOpenAI
) -> None:
    (job_id,) = await store.add_jobs(
        [JobSpec("spawner", "make jobs", HOURLY, user_id="alice", tools=["cron_add"])]
    )
    calls = [
        tool_call("cron_add", {"prompt": "for bob", "every": "1h", "user_id": "bob"}, "c0"),
        tool_call("cron_add", {"name": "a1", "prompt": "one", "every": "1h"}, "c1"),
        tool_call("cron_add", {"name": "a2", "prompt": "two", "every": "1h"}, "c2"),
        tool_call("cron_remove", {"name": "spawner"}, "c3"),  # not one of its tools
    ]
    fake_openai.answer(Reply(tool_calls=calls), Reply(content="done"))
    limits = UserLimits(max_jobs_per_user=2)  # the spawner itself is one of alice's two
    executor = build_executor(config(fake_openai), store, limits=limits)
    try:
        await CronScheduler(store, executor).run_now(job_id)
    finally:
        await executor.aclose()
    answers = tool_answers(fake_openai.requests[1])
    assert "only an admin" in answers[0]
    assert '"job"' in answers[1] and "max_jobs_per_user" in answers[2]
    assert "cron_remove is not allowed" in answers[3]
    assert sorted(j.name for j in await store.list_jobs_for_user("alice")) == ["a1", "spawner"]
    assert await store.list_jobs_for_user("bob") == []


async def test_an_agent_jobs_run_is_the_agent_not_an_admin(
    store: CronStore, fake_openai: FakeOpenAI
) -> None:
    await store.add_jobs([JobSpec("bobs", "bob's job", HOURLY, user_id="bob")])
    (job_id,) = await store.add_jobs(
        [JobSpec("agent", "tidy up", HOURLY, tools=["cron_add", "cron_pause"])]
    )
    calls = [
        tool_call("cron_add", {"prompt": "for bob", "every": "1h", "user_id": "bob"}, "c0"),
        tool_call("cron_pause", {"name": "bobs"}, "c1"),
    ]
    fake_openai.answer(Reply(tool_calls=calls), Reply(content="done"))
    executor = build_executor(config(fake_openai), store)
    try:
        await CronScheduler(store, executor).run_now(job_id)
    finally:
        await executor.aclose()
    first, second = tool_answers(fake_openai.requests[1])
    assert "only an admin" in first and "no job named 'bobs'" in second
    (bobs,) = await store.list_jobs_for_user("bob")
    assert bobs.enabled and bobs.name == "bobs"
