"""Silent answers and notify policies through a running gateway: real WebSocket clients and the
Bot API stand-in see what the store decided (tests/test_quiet.py covers the rules on every
backend with a ManualClock; here: what reaches people)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.app import Gateway
from starpod_cron import JobSpec, NotifyPolicy, Schedule
from tests.gateway.botapi import TOKEN, running_botapi
from tests.gateway.conftest import telegram_gateway, ws_client

OWNER, GROUP = 42, -100123


async def until(predicate: Callable[[], bool], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def test_subscribers_see_silent_and_suppressed_runs_nobody_is_notified_of(
    gateway: Gateway,
) -> None:
    async with (
        ws_client(gateway, "alice-token-0123456789") as alice,
        ws_client(gateway, "alice-token-0123456789") as plain,
    ):
        answer = await alice.request("subscribe", events=["notification", "run.finished"])
        assert answer["ok"], answer
        added = await alice.request("cron.add", name="beat", prompt="silent beat", every="1s")
        assert added["ok"], added
        added = await alice.request(
            "cron.add", name="same", prompt="unchanged", every="1s", notify="on_change"
        )
        assert added["ok"] and added["data"]["notify"] == "on_change", added

        def reports(job: str) -> list[dict[str, object]]:
            return [e for e in alice.events if e["type"] == "run.finished" and e["job_name"] == job]

        await alice.until(lambda: len(reports("beat")) >= 3 and len(reports("same")) >= 3)
        await alice.request("cron.pause", name="beat")
        await alice.request("cron.pause", name="same")
        assert all(
            (r["status"], r["silent"], r["suppressed"], r["reason"])
            == ("success", True, True, "silent answer")
            for r in reports("beat")
        )
        first, *rest = reports("same")
        assert (first["suppressed"], first["reason"]) == (False, None)
        assert rest and {(r["suppressed"], r["reason"]) for r in rest} == {
            (True, "unchanged (notify=on_change)")
        }
        for client in (alice, plain):
            told = [e["job_name"] for e in client.events if e["type"] == "notification"]
            assert told == ["same"]  # once; the heartbeat never
        runs = await alice.request("cron.runs", name="beat")
        ended = [r for r in runs["data"]["runs"] if r["status"] == "success"]
        assert ended and {(r["silent"], r["suppressed_reason"]) for r in ended} == {
            (True, "silent answer")
        }
        job = (await alice.request("cron.get", name="same"))["data"]
        assert job["suppressed_runs"] == len(rest) and job["silent_runs"] == 0


async def test_telegram_gets_no_message_for_a_silent_answer_but_a_reminder_always(
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
        every = Schedule.interval(every_ms=1000)
        beat, _loud = await gateway.store.add_jobs(
            [JobSpec("beat", "silent beat", every), JobSpec("loud", "hello", every)]
        )
        api.type(OWNER, "/in 1s name=remind silent reminder")
        await until(lambda: any(t.startswith("[remind] done") for t in api.texts(OWNER)))
        assert "[remind] done\n\n[SILENT]" in api.texts(OWNER)  # a one-shot always speaks
        await until(lambda: sum(t.startswith("[loud] done") for t in api.texts(GROUP)) >= 3)
        beats = await gateway.store.list_runs(beat, 100)
        assert sum(r.silent for r in beats) >= 2
        assert not any(t.startswith("[beat]") for t in api.texts(GROUP) + api.texts(OWNER))
        job = await gateway.store.get_job(beat)
        assert job is not None and job.silent_runs >= 2 and job.notify is NotifyPolicy.ALWAYS
