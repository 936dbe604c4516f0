"""Reply to manage, with the real python-telegram-bot client against the Bot API stand-in: the
buttons under results and pause alerts, who may press them, and what each press does (once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.telegram_buttons import CONFIRM_SECS, NOT_YOURS
from starpod_cron import CronJob, JobSpec, RunTrigger, Schedule
from tests.gateway.botapi import TOKEN, BotApi, running_botapi
from tests.gateway.conftest import telegram_gateway
from tests.gateway.test_telegram import until

OWNER, FRIEND, STRANGER, GROUP, TOPIC = 42, 43, 666, -100123, 7
HOUR = 3_600_000


@pytest.fixture
async def bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[BotApi, Gateway]]:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    async with (
        running_botapi() as api,
        telegram_gateway(tmp_path, api.base_url, allowed_user_ids=(OWNER, FRIEND)) as gateway,
    ):
        yield api, gateway


def _origin() -> dict[str, Any]:
    return {"telegram_chat_id": GROUP, "telegram_user_id": OWNER, "thread_id": TOPIC}


async def _job(gateway: Gateway, name: str, prompt: str = "hello", **spec: Any) -> CronJob:
    """The owner's hourly job, made in the group's forum topic (results go back there)."""
    assert gateway.store is not None
    fields: dict[str, Any] = {"schedule": Schedule.interval(every_ms=HOUR)} | spec
    (job_id,) = await gateway.store.add_jobs(
        [JobSpec(name, prompt, user_id=f"tg:{OWNER}", origin=_origin(), **fields)]
    )
    job = await gateway.store.get_job(job_id)
    assert job is not None
    return job


def _results(api: BotApi, name: str) -> list[dict[str, Any]]:
    return [m for m in api.sent if m["text"].startswith(f"[{name}] done")]


async def _result(api: BotApi, gateway: Gateway, name: str, count: int = 1) -> dict[str, Any]:
    """The owner runs the job from the chat (/run) and its result arrives: the message."""
    api.type(OWNER, f"/run {name}", chat_id=GROUP, thread_id=TOPIC)
    await until(lambda: len(_results(api, name)) >= count, what=f"the result of {name}")
    return _results(api, name)[-1]


def _buttons(message: dict[str, Any]) -> list[list[tuple[str, str]]]:
    markup = message["reply_markup"] or {"inline_keyboard": []}
    return [[(b["text"], b["callback_data"]) for b in row] for row in markup["inline_keyboard"]]


def _labels(message: dict[str, Any]) -> list[list[str]]:
    return [[label for label, _ in row] for row in _buttons(message)]


def _data(message: dict[str, Any], text: str) -> str:
    for row in _buttons(message):
        for label, data in row:
            if label == text:
                return data
    raise AssertionError(f"no button {text!r} in {_buttons(message)}")


async def _answer(api: BotApi, query_id: str) -> dict[str, Any]:
    await until(lambda: api.answer_to(query_id) is not None, what=f"the answer to {query_id}")
    answer = api.answer_to(query_id)
    assert answer is not None
    return answer


async def _tap(api: BotApi, user: int, message: dict[str, Any], text: str) -> dict[str, Any]:
    return await _answer(api, api.press(user, message, _data(message, text)))


async def _stored(gateway: Gateway, job_id: str) -> CronJob | None:
    assert gateway.store is not None
    return await gateway.store.get_job(job_id)


async def test_a_result_carries_the_four_buttons_on_its_last_piece_in_its_topic(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    job = await _job(gateway, "essay", "long: an essay")  # a result in two pieces
    last = await _result(api, gateway, "essay")
    await until(lambda: any(m["text"].endswith(" end") for m in api.sent), what="the last piece")
    pieces = [m for m in api.sent if "xxxx" in m["text"]]
    assert len(pieces) == 2 and all(p["thread_id"] == TOPIC for p in pieces)  # the forum topic
    assert pieces[0]["reply_markup"] is None and last is pieces[0]
    (row,) = _buttons(pieces[1])
    assert [label for label, _ in row] == ["Run again", "Snooze 1 h", "Pause", "Stop"]
    assert all(job.id in data and len(data.encode()) <= 64 for _, data in row)
    # the answers to commands have no buttons
    assert all(m["reply_markup"] is None for m in api.sent if m["text"].startswith("Running"))


async def test_someone_else_pressing_changes_nothing_and_is_told_so(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    job = await _job(gateway, "mine")
    message = await _result(api, gateway, "mine")
    before = await _stored(gateway, job.id)
    for label in ("Pause", "Snooze 1 h", "Stop", "Run again"):
        answer = await _tap(api, FRIEND, message, label)  # allowed to use the bot, not the owner
        assert answer["text"] == NOT_YOURS and answer.get("show_alert") is True
    stranger = await _tap(api, STRANGER, message, "Pause")  # not allowed at all
    assert stranger["text"] == "Sorry, this bot only works for its owner."
    await asyncio.sleep(0.3)
    assert await _stored(gateway, job.id) == before  # not paused, snoozed, removed or run
    assert api.edits == [] and len(_results(api, "mine")) == 1
    assert gateway.store is not None and len(await gateway.store.list_runs(job.id, 10)) == 1


async def test_a_double_tap_on_pause_pauses_once_and_the_message_says_so(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    job = await _job(gateway, "nightly")
    message = await _result(api, gateway, "nightly")
    pause = _data(message, "Pause")
    first, second = api.press(OWNER, message, pause), api.press(OWNER, message, pause)
    assert (await _answer(api, first))["text"] == "Paused nightly."
    assert (await _answer(api, second))["text"] == "Already done."
    paused = await _stored(gateway, job.id)
    assert paused is not None and not paused.enabled
    assert len(api.edits) == 1  # the second tap edited nothing
    assert _labels(message) == [["Paused"], ["Resume"]]
    assert _data(message, "Resume") == f"res:{job.id}"
    # Pause pressed again under the new buttons (an old client, a forged press): said, no write
    again = await _answer(api, api.press(OWNER, message, pause))
    assert again["text"] == "nightly is already paused."
    assert await _stored(gateway, job.id) == paused  # updated_at included: written once

    resumed = await _tap(api, OWNER, message, "Resume")
    assert resumed["text"] == "Resumed nightly."
    back = await _stored(gateway, job.id)
    assert back is not None and back.enabled
    assert [label for label, _ in _buttons(message)[1]] == [
        "Run again",
        "Snooze 1 h",
        "Pause",
        "Stop",
    ]
    assert _buttons(message)[0][0][0].startswith("Resumed: next ")


async def test_run_again_twice_in_a_row_runs_once(bot: tuple[BotApi, Gateway]) -> None:
    api, gateway = bot
    job = await _job(gateway, "report")
    message = await _result(api, gateway, "report")
    run = _data(message, "Run again")
    first, second = api.press(OWNER, message, run), api.press(OWNER, message, run)
    assert (await _answer(api, first))["text"] == "Running report now; the result will follow."
    assert (await _answer(api, second))["text"] == "Already done."
    await until(lambda: len(_results(api, "report")) == 2, what="the second result")
    await asyncio.sleep(0.5)
    assert gateway.store is not None
    runs = await gateway.store.list_runs(job.id, 10)
    assert [r.trigger for r in runs] == [RunTrigger.MANUAL, RunTrigger.MANUAL]  # /run + 1 tap
    assert _buttons(message)[0][0][0].startswith("Run started ")
    newest = _results(api, "report")[-1]
    assert _buttons(newest)[0][0][0] == "Run again"  # the new result has its own


async def test_stop_removes_only_after_a_second_tap_within_30_seconds(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    job = await _job(gateway, "chore")
    message = await _result(api, gateway, "chore")
    stop = _data(message, "Stop")
    armed, double = api.press(OWNER, message, stop), api.press(OWNER, message, stop)
    assert (await _answer(api, armed))["text"] == f"Tap again to remove within {CONFIRM_SECS} s."
    assert (await _answer(api, double))["text"] == "Already done."  # a double tap only arms
    assert await _stored(gateway, job.id) is not None
    confirm = _data(message, "Tap again to remove")
    action, job_id, deadline = confirm.split(":")
    assert (action, job_id) == ("rm", job.id)
    assert _labels(message)[0] == ["Remove chore? Tap again"]
    assert gateway.store is not None
    now = gateway.store.clock.now_ms() // 1000
    assert now + CONFIRM_SECS - 2 <= int(deadline) <= now + CONFIRM_SECS

    late = await _answer(api, api.press(OWNER, message, f"rm:{job.id}:{now - 1}"))  # 31 s on
    assert late["text"] == "Too late: tap Stop again to remove."
    assert await _stored(gateway, job.id) is not None
    assert _data(message, "Stop") == stop  # disarmed
    assert _labels(message)[0] == ["Not removed: too late"]

    await _tap(api, OWNER, message, "Stop")
    removed = await _tap(api, OWNER, message, "Tap again to remove")
    assert removed["text"] == "Removed chore."
    assert await _stored(gateway, job.id) is None
    assert _labels(message) == [["Removed chore"]]
    label = await _tap(api, OWNER, message, "Removed chore")
    assert label["text"] == "Removed chore"
    gone = await _answer(api, api.press(OWNER, message, stop))  # an old button of it, forged
    assert gone["text"] == "This job no longer exists."


async def test_agent_level_jobs_get_no_buttons_no_one_could_press(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    async with (
        running_botapi() as api,
        telegram_gateway(
            tmp_path, api.base_url, allowed_user_ids=(OWNER,), notify_chat_ids=(GROUP,)
        ) as gateway,
    ):
        assert gateway.store is not None
        await gateway.store.add_job("nightly", "agent task", Schedule.interval(every_ms=1000))
        await until(lambda: any(t.startswith("[nightly] done") for t in api.texts(GROUP)))
    assert all(m["reply_markup"] is None for m in api.sent)


async def test_snooze_moves_the_next_fire_once_under_a_double_tap(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    job = await _job(gateway, "standup")
    assert job.next_run_at is not None
    message = await _result(api, gateway, "standup")
    snooze = _data(message, "Snooze 1 h")
    first, second = api.press(OWNER, message, snooze), api.press(OWNER, message, snooze)
    said = (await _answer(api, first))["text"]
    assert said.startswith("standup: Snoozed: next ") and said.endswith(", then as scheduled.")
    assert (await _answer(api, second))["text"] == "Already done."
    snoozed = await _stored(gateway, job.id)
    assert snoozed is not None and snoozed.schedule == job.schedule
    assert snoozed.next_run_at == job.next_run_at + timedelta(hours=1)  # once, not twice
    assert _buttons(message)[0][0][0].startswith("Snoozed: next ")


async def test_a_pause_alert_carries_resume_and_resume_enables_the_job(
    bot: tuple[BotApi, Gateway],
) -> None:
    api, gateway = bot
    job = await _job(
        gateway,
        "flaky",
        "fail: always",  # the gateway tests' executor raises for it
        schedule=Schedule.interval(every_ms=1000),
        max_retries=0,
        pause_after_failures=1,
    )

    def alerts() -> list[dict[str, Any]]:
        return [m for m in api.sent if m["text"].startswith("[flaky] notice")]

    await until(lambda: len(alerts()) == 1, what="the pause alert")
    alert = alerts()[0]
    assert alert["thread_id"] == TOPIC and "paused after 1 failed runs" in alert["text"]
    assert _buttons(alert) == [[("Resume", f"res:{job.id}")]]
    failed = next(m for m in api.sent if m["text"].startswith("[flaky] failed"))
    assert [label for label, _ in _buttons(failed)[0]] == [
        "Run again",
        "Snooze 1 h",
        "Pause",
        "Stop",
    ]
    paused = await _stored(gateway, job.id)
    assert paused is not None and not paused.enabled

    assert (await _tap(api, FRIEND, alert, "Resume"))["text"] == NOT_YOURS
    assert await _stored(gateway, job.id) == paused
    assert (await _tap(api, OWNER, alert, "Resume"))["text"] == "Resumed flaky."
    resumed_at = api.edits[-1]
    assert resumed_at["message_id"] == alert["message_id"]
    # resumed: it runs (and, failing, pauses itself again: a second alert with Resume)
    await until(lambda: len(alerts()) == 2, what="the second pause alert")
    assert _buttons(alerts()[1]) == [[("Resume", f"res:{job.id}")]]


async def test_the_snooze_command_does_what_the_button_does(bot: tuple[BotApi, Gateway]) -> None:
    api, gateway = bot
    job = await _job(gateway, "tea")
    assert job.next_run_at is not None
    api.type(OWNER, "/snooze tea 30m", chat_id=GROUP, thread_id=TOPIC)
    await until(lambda: any(t.startswith("Snoozed: tea: every 1h") for t in api.texts(GROUP)))
    snoozed = await _stored(gateway, job.id)
    assert snoozed is not None and snoozed.next_run_at == job.next_run_at + timedelta(minutes=30)
    api.type(OWNER, "/snooze tea", chat_id=GROUP, thread_id=TOPIC)  # 1 h by default
    await until(lambda: sum(t.startswith("Snoozed: tea") for t in api.texts(GROUP)) == 2)
    again = await _stored(gateway, job.id)
    assert again is not None and again.next_run_at == job.next_run_at + timedelta(minutes=90)
    api.type(FRIEND, "/snooze tea", chat_id=GROUP, thread_id=TOPIC)  # not theirs
    await until(lambda: "Error: no job named 'tea'" in api.texts(GROUP))
    assert await _stored(gateway, job.id) == again
