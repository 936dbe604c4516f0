"""Chat with the agent: a plain Telegram message (or a WebSocket "chat") goes to the model with
the scheduling tools; the model's tool calls create jobs for that user. The model is the
OpenAI-compatible stand-in, the chat is the real python-telegram-bot against the Bot API
stand-in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.app import Gateway
from starpod_cron import JobSpec, Schedule
from starpod_cron.config import ExecutorConfig
from starpod_cron.tools import TOOLS
from tests.gateway.botapi import TOKEN, BotApi, running_botapi
from tests.gateway.conftest import config, running_gateway, telegram_gateway, ws_client
from tests.gateway.test_telegram import until
from tests.openai_standin import FakeOpenAI, Reply, running_openai, tool_call

OWNER = 42


def openai_config(tmp_path: Path, fake: FakeOpenAI, **executor: object):  # type: ignore[no-untyped-def]
    return replace(
        config(tmp_path),
        executor=ExecutorConfig(kind="openai", base_url=fake.base_url, model="m", **executor),  # type: ignore[arg-type]
    )


@pytest.fixture
async def agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[BotApi, FakeOpenAI, Gateway]]:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    async with running_openai() as fake, running_botapi() as api:
        cfg = openai_config(tmp_path, fake)
        async with telegram_gateway(tmp_path, api.base_url, cfg, allowed_user_ids=(OWNER,)) as gw:
            yield api, fake, gw


async def test_a_plain_message_schedules_a_job_through_the_models_tool_call(
    agent: tuple[BotApi, FakeOpenAI, Gateway],
) -> None:
    api, fake, gateway = agent
    assert gateway.store is not None
    fake.answer(
        Reply(tool_calls=[tool_call("cron_add", {"prompt": "Remind me to stretch", "in": "20m"})]),
        Reply(content="Done: I will remind you to stretch in 20 minutes."),
    )
    api.type(OWNER, "remind me in 20 minutes to stretch")
    await until(lambda: api.texts(OWNER), what="the agent's reply")
    assert api.texts(OWNER) == ["Done: I will remind you to stretch in 20 minutes."]

    (job,) = await gateway.store.list_jobs_for_user(f"tg:{OWNER}")
    assert job.prompt == "Remind me to stretch" and job.delete_after_run
    assert job.origin == {"telegram_chat_id": OWNER, "telegram_user_id": OWNER}
    assert job.next_run_at is not None
    soon = datetime.now(UTC) + timedelta(minutes=20)
    assert abs((job.next_run_at - soon).total_seconds()) < 30

    first, second = fake.requests
    assert {t["function"]["name"] for t in first["tools"]} == set(TOOLS)
    assert first["messages"][-1] == {
        "role": "user",
        "content": "remind me in 20 minutes to stretch",
    }
    tool_answer = second["messages"][-1]
    assert tool_answer["role"] == "tool" and tool_answer["tool_call_id"] == "call_1"
    assert json.loads(tool_answer["content"])["job"]["id"] == job.id


async def test_a_refused_tool_call_is_told_to_the_model_and_nothing_is_written(
    agent: tuple[BotApi, FakeOpenAI, Gateway],
) -> None:
    api, fake, gateway = agent
    assert gateway.store is not None
    fake.answer(
        Reply(tool_calls=[tool_call("cron_add", {"prompt": "x", "cron": "61 * * * *"})]),
        Reply(content="That time does not exist; which minute did you mean?"),
    )
    api.type(OWNER, "every hour at minute 61 do x")
    await until(lambda: api.texts(OWNER), what="the agent's reply")
    told = json.loads(fake.requests[1]["messages"][-1]["content"])
    assert "minute" in told["error"] and "61" in told["error"]
    assert await gateway.store.list_jobs() == []


async def test_a_message_that_cannot_be_stored_is_refused_before_the_model(
    agent: tuple[BotApi, FakeOpenAI, Gateway],
) -> None:
    """A lone surrogate (JSON can carry one escaped) or a NUL in a chat message: the person is
    told, the model is not asked and the conversation stores nothing."""
    api, fake, gateway = agent
    assert gateway.store is not None
    for text, words in (("hi \ud800 there", "lone surrogate"), ("nul \x00 here", "NUL")):
        before = len(api.texts(OWNER))
        api.type(OWNER, text)
        await until(lambda n=before: len(api.texts(OWNER)) > n, what="the refusal")
        said = api.texts(OWNER)[before]
        assert said.startswith("Error: the message contains") and words in said, said
    assert fake.requests == []
    session = await gateway.store.main_session_id(f"user:tg:{OWNER}")
    assert await gateway.store.session_messages(session, 10) == []


async def test_a_scheduled_run_gets_no_tools_unless_allowed(tmp_path: Path) -> None:
    for allowed in (False, True):
        due = Schedule.one_shot(datetime.now(UTC) + timedelta(seconds=1))
        async with running_openai() as fake:
            cfg = openai_config(tmp_path, fake, allow_scheduling_from_runs=allowed)
            async with running_gateway(cfg, str(tmp_path / f"run-{allowed}.db")) as gateway:
                assert gateway.store is not None
                await gateway.store.add_jobs([JobSpec("digest", "write the digest", due)])
                await until(lambda f=fake: f.requests, what="the run's request to the model")
            (request,) = fake.requests
            assert request["messages"][-1]["content"] == "write the digest"
            assert ("tools" in request) is allowed


async def test_websocket_chat_answers_and_schedules_for_that_user(tmp_path: Path) -> None:
    async with running_openai() as fake:
        fake.answer(
            Reply(tool_calls=[tool_call("cron_add", {"prompt": "check the build", "every": "1h"})]),
            Reply(content="Scheduled hourly."),
        )
        async with running_gateway(openai_config(tmp_path, fake), str(tmp_path / "c.db")) as gw:
            assert gw.store is not None
            async with ws_client(gw, "alice-token-0123456789") as alice:
                answer = await alice.request("chat", text="check the build every hour")
                assert answer["data"] == {"reply": "Scheduled hourly."}
                bad = await alice.request("chat", text="   ")
                assert bad["error"]["code"] == "invalid"
            (job,) = await gw.store.list_jobs()
            assert (job.user_id, job.prompt) == ("alice", "check the build")


async def test_jobs_a_scheduled_run_creates_count_against_the_owners_limit(tmp_path: Path) -> None:
    """``allow_scheduling_from_runs``: the run's cron_add calls go through the configured
    ``[gateway]`` limits, not the library defaults. Alice's own job is one of her 3, so of the
    model's three adds two are stored and the third is refused with the limit named."""
    due = Schedule.one_shot(datetime.now(UTC) + timedelta(seconds=1))
    adds = [
        tool_call("cron_add", {"name": f"spawn-{n}", "prompt": f"p{n}", "every": "1h"}, f"c{n}")
        for n in range(3)
    ]
    async with running_openai() as fake:
        fake.answer(Reply(tool_calls=adds), Reply(content="scheduled what I could"))
        cfg = openai_config(tmp_path, fake, allow_scheduling_from_runs=True)
        cfg = replace(cfg, gateway=replace(cfg.gateway, max_jobs_per_user=3))
        async with running_gateway(cfg, str(tmp_path / "spawn.db")) as gateway:
            assert gateway.store is not None
            await gateway.store.add_jobs([JobSpec("digest", "spawn jobs", due, user_id="alice")])
            await until(lambda: len(fake.requests) >= 2, what="the model's second turn")
            spawned = [
                j for j in await gateway.store.list_jobs_for_user("alice") if j.name != "digest"
            ]
    assert sorted(j.name for j in spawned) == ["spawn-0", "spawn-1"]
    results = [m["content"] for m in fake.requests[1]["messages"] if m["role"] == "tool"]
    assert len(results) == 3 and "max_jobs_per_user" in results[2], results
