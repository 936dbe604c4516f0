"""The real python-telegram-bot Application against a Bot API stand-in on 127.0.0.1: users type
commands, the tests check the jobs stored and the messages sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from gateway.app import Gateway
from gateway.telegram import delivery_error, parse_schedule, split_message
from starpod_cron import InvalidInput, JobSpec, Schedule
from tests.gateway.botapi import TOKEN, BotApi, running_botapi
from tests.gateway.conftest import telegram_gateway

OWNER, STRANGER, GROUP = 42, 666, -100123


async def until(predicate: Callable[[], bool], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[BotApi, Gateway]]:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    async with (
        running_botapi() as api,
        telegram_gateway(
            tmp_path, api.base_url, allowed_user_ids=(OWNER,), notify_chat_ids=(GROUP,)
        ) as gateway,
    ):
        yield api, gateway


async def reply(api: BotApi, chat: int, count: int = 1) -> list[str]:
    await until(lambda: len(api.texts(chat)) >= count, what=f"{count} message(s) to {chat}")
    return api.texts(chat)


async def test_schedule_commands_store_jobs_with_their_origin(bot: tuple[BotApi, Gateway]) -> None:
    api, gateway = bot
    assert gateway.store is not None
    api.type(OWNER, "/every 30m name=standup check the build")
    assert (await reply(api, OWNER))[0].startswith("Scheduled: standup: every 30m")
    assert await gateway.store.get_job_by_name("standup") is None  # not an agent-level job
    job = await gateway.store.get_job_by_name("standup", f"tg:{OWNER}")
    assert job is not None and job.prompt == "check the build" and job.user_id == f"tg:{OWNER}"
    assert job.origin == {"telegram_chat_id": OWNER, "telegram_user_id": OWNER}
    api.type(OWNER, '/cron "0 9 * * 1-5" summarize my inbox')
    api.type(OWNER, "/at 2030-12-01 09:00 file the taxes")
    api.type(OWNER, "/in 20m stretch")
    await reply(api, OWNER, 4)
    jobs = {j.prompt: j for j in await gateway.store.list_jobs()}
    assert jobs["summarize my inbox"].schedule == Schedule.cron("0 9 * * 1-5")
    assert jobs["file the taxes"].next_run_at is not None
    assert jobs["file the taxes"].next_run_at.isoformat() == "2030-12-01T09:00:00+00:00"
    assert jobs["stretch"].delete_after_run
    assert jobs["summarize my inbox"].name.startswith("summarize-my-inbox-")  # generated
    assert all(j.user_id == f"tg:{OWNER}" for j in jobs.values())
    assert all(m["parse_mode"] is None for m in api.sent)  # plain text, never Markdown


async def test_manage_jobs_from_the_chat(bot: tuple[BotApi, Gateway]) -> None:
    api, gateway = bot
    assert gateway.store is not None
    api.type(OWNER, "/tz Asia/Tokyo")
    assert (await reply(api, OWNER))[-1] == "Your time zone is now Asia/Tokyo."
    assert await gateway.store.get_user_timezone(f"tg:{OWNER}") == "Asia/Tokyo"
    api.type(OWNER, '/cron "0 9 * * *" name=morning good morning')
    await reply(api, OWNER, 2)
    job = await gateway.store.get_job_by_name("morning", f"tg:{OWNER}")
    assert job is not None and job.timezone == "Asia/Tokyo"
    for command, expected in [
        ("/jobs", "morning: cron 0 9 * * *"),
        ("/pause morning", "Paused"),
        ("/resume morning", "Resumed"),
        ("/runs morning", "No runs yet."),
        ("/help", "/every 30m"),
        ("/remove morning", "Removed morning."),
    ]:
        before = len(api.texts(OWNER))
        api.type(OWNER, command)
        texts = await reply(api, OWNER, before + 1)
        assert expected in texts[before], (command, texts[before])
    assert await gateway.store.get_job_by_name("morning", f"tg:{OWNER}") is None


async def test_errors_answer_in_the_chat(bot: tuple[BotApi, Gateway]) -> None:
    api, gateway = bot
    assert gateway.store is not None
    for command, error in [
        ("/every 2x check", "invalid duration '2x'"),
        ("/cron 0 9 * * * inbox", "in quotes"),
        ("/every 30m", "add the prompt"),
        ("/tz Mars/Base", "unknown time zone"),
        ("/pause ghost", "no job named 'ghost'"),
        ("/at someday do it", "give a time"),
    ]:
        before = len(api.texts(OWNER))
        api.type(OWNER, command)
        texts = await reply(api, OWNER, before + 1)
        assert texts[before].startswith("Error:") and error in texts[before], (command, texts)
    assert await gateway.store.list_jobs() == []


async def test_when_schedules_in_words_and_says_what_it_understood(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    assert gateway.store is not None
    api.type(OWNER, "/tz Europe/Rome")
    await reply(api, OWNER, 1)
    api.type(OWNER, "/when every weekday at 9:00 | name=standup post the standup")
    said = (await reply(api, OWNER, 2))[1]
    assert said.startswith("Scheduled standup.\nUnderstood 'every weekday at 9:00' as: ")
    assert "At 09:00, Monday through Friday" in said
    assert "Schedule: cron 0 9 * * 1-5 (Europe/Rome)" in said
    assert said.count(":00:00 +01:00") == 5  # the next 5 fires, in the user's zone
    job = await gateway.store.get_job_by_name("standup", f"tg:{OWNER}")
    assert job is not None and job.schedule == Schedule.cron("0 9 * * 1-5")
    assert (job.timezone, job.prompt, job.description) == (
        "Europe/Rome", "post the standup", "every weekday at 9:00"
    )  # fmt: skip
    assert job.origin == {"telegram_chat_id": OWNER, "telegram_user_id": OWNER}
    api.type(OWNER, "/when in 20 minutes | stretch")
    said = (await reply(api, OWNER, 3))[2]
    assert "It is deleted after it runs." in said and "Runs:" in said
    for command, error in [
        ("/when every 9 | check", "could mean a time or a count"),
        ("/when every blursday at 9 | check", "did you mean 'thursday'?"),
        ("/when every day at 9 check", "then | and the prompt"),
        ("/when every day at 9 |", "add the prompt"),
    ]:
        before = len(api.texts(OWNER))
        api.type(OWNER, command)
        texts = await reply(api, OWNER, before + 1)
        assert texts[before].startswith("Error:") and error in texts[before], (command, texts)
    assert len(await gateway.store.list_jobs()) == 2
    api.type(OWNER, "/help")
    assert "/when every weekday at 9:00 | <prompt>" in (await reply(api, OWNER, 8))[7]


async def test_strangers_get_one_polite_refusal_and_nothing_is_stored(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    assert gateway.store is not None
    api.type(STRANGER, "/every 1m mine the bitcoins")
    assert (await reply(api, STRANGER)) == ["Sorry, this bot only works for its owner."]
    api.type(STRANGER, "/jobs")
    api.type(OWNER, "/jobs")
    await reply(api, OWNER)
    assert api.texts(STRANGER) == ["Sorry, this bot only works for its owner."]
    assert await gateway.store.list_jobs() == []
    assert await gateway.store.get_user_timezone(f"tg:{STRANGER}") is None


async def test_results_go_back_to_the_chat_and_thread_long_ones_split(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, _gateway = bot
    api.type(OWNER, "/every 1s name=ping pong", chat_id=GROUP, thread_id=7)
    await until(lambda: any(t.startswith("[ping] done") for t in api.texts(GROUP)))
    result = next(m for m in api.sent if m["text"].startswith("[ping] done"))
    assert result["thread_id"] == 7 and "done: pong" in result["text"]
    api.type(OWNER, "/pause ping", chat_id=GROUP, thread_id=7)
    await until(lambda: "Paused ping." in api.texts(GROUP))
    before = sum(t.startswith("[ping] done") for t in api.texts(GROUP))
    api.type(OWNER, "/run ping", chat_id=GROUP, thread_id=7)
    await until(lambda: "Running ping now; the result will follow." in api.texts(GROUP))
    await until(lambda: sum(t.startswith("[ping] done") for t in api.texts(GROUP)) > before)
    api.type(OWNER, "/in 1s name=essay long: write an essay")
    await until(lambda: any(t.startswith("[essay] done") for t in api.texts(OWNER)))
    await until(lambda: any(t.endswith(" end") for t in api.texts(OWNER)))
    pieces = [t for t in api.texts(OWNER) if "xxxx" in t]
    assert len(pieces) == 2 and all(len(p) <= 4096 for p in pieces)
    assert "".join(pieces).count("x") == 5000


async def test_agent_jobs_notify_the_configured_chats(bot: tuple[BotApi, Gateway]) -> None:
    api, gateway = bot
    assert gateway.store is not None
    await gateway.store.add_job("nightly", "agent task", Schedule.interval(every_ms=1000))
    await until(lambda: any(t.startswith("[nightly] done") for t in api.texts(GROUP)))


async def test_rate_limits_and_server_errors_are_retried_then_delivered_once(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    assert gateway.store is not None
    api.failures = [
        (
            429,
            {"description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}},
        ),
        (502, {"description": "Bad Gateway"}),
    ]
    await gateway.store.add_jobs(
        [
            JobSpec(
                "once",
                "hello",
                Schedule.one_shot(await _soon(gateway)),
                origin={"telegram_chat_id": OWNER},
            )
        ]
    )
    await until(lambda: len(api.texts(OWNER)) >= 1, timeout=20)
    await asyncio.sleep(1.5)
    assert api.texts(OWNER) == ["[once] done\n\ndone: hello"]
    assert api.send_attempts == 3


async def _soon(gateway: Gateway):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from starpod_cron.timeutil import from_ms

    assert gateway.store is not None
    return from_ms(gateway.store.clock.now_ms()) + timedelta(seconds=1)


def test_split_message_prefers_newlines() -> None:
    text = ("a" * 3000 + "\n") * 3
    pieces = split_message(text)
    assert all(len(p) <= 4096 for p in pieces) and len(pieces) == 3
    assert split_message("short") == ["short"]
    assert "".join(split_message("z" * 10_000)) == "z" * 10_000


def test_parse_schedule() -> None:
    now = None
    assert parse_schedule("every", "30m name=x do it", "UTC", now) == {
        "every": "30m",
        "name": "x",
        "prompt": "do it",
    }
    assert parse_schedule("cron", "'*/5 * * * *' check", "UTC", now)["cron"] == "*/5 * * * *"
    assert parse_schedule("cron", "@daily backup", "UTC", now)["cron"] == "@daily"
    with pytest.raises(InvalidInput):
        parse_schedule("in", "", "UTC", now)
    assert parse_schedule("when", " every hour at :15 | name=q poll it ", "UTC", now) == {
        "when": "every hour at :15",
        "name": "q",
        "prompt": "poll it",
    }
    with pytest.raises(InvalidInput, match=r"/when every weekday at 9:00 \| <prompt>"):
        parse_schedule("when", "every day at 9 poll", "UTC", now)


@pytest.mark.parametrize(
    "error, kind",
    [
        (RetryAfter(3), "wait"),
        (InvalidToken("Unauthorized"), "refusing"),  # 401, and 404 on every method
        (NetworkError("Bad Gateway"), "refusing"),  # 5xx and other statuses
        (TimedOut(), "refusing"),
        (httpx.ConnectError("refused"), "refusing"),
        (BadRequest("Chat not found"), "dead"),  # a NetworkError subclass, yet this chat only
        (Forbidden("Forbidden: bot was blocked by the user"), "dead"),
        (ChatMigrated(-1001), "dead"),
        (Conflict("Conflict"), "failed"),
        (TelegramError("Invalid server response"), "failed"),
    ],
)
def test_each_bot_api_error_means_one_outcome_for_a_delivery(error: Exception, kind: str) -> None:
    got = delivery_error(error)  # type: ignore[arg-type]
    outcome = (
        "wait"
        if got.retry_after is not None
        else "refusing"
        if got.refusing
        else "dead"
        if got.permanent
        else "failed"
    )
    assert outcome == kind
    assert (got.retry_after, got.refusing, got.permanent).count(True) <= 1
