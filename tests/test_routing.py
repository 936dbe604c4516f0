"""The delivery router (starpod_cron/routing.py), as a table: which destinations a finished
run is sent to, by its job's owner, origin and the configured chats. No store."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from starpod_cron import CronRun, JobSpec, RunStatus, RunTrigger, Schedule, StoreSettings
from starpod_cron.routing import DeliveryRouter
from starpod_cron.store import planning
from starpod_cron.store.records import JobRecord
from starpod_cron.timeutil import to_ms
from tests.conftest import START


def job(schedule: Schedule, **changes: Any) -> JobRecord:
    spec = JobSpec("j", "p", schedule, max_retries=2)
    record = planning.new_job(spec, to_ms(START), StoreSettings())
    return dataclasses.replace(record, **changes)


def run_of(status: RunStatus, summary: str = "ok", error: str | None = None) -> CronRun:
    return CronRun(
        "r1",
        "j1",
        "report",
        START,
        START,
        START,
        status,
        1,
        RunTrigger.SCHEDULE,
        summary,
        error,
        "s1",
        10,
    )


@pytest.mark.parametrize(
    ("owner", "origin", "notify", "destinations"),
    [
        (None, None, (), ["ws:agent"]),
        (None, None, (7, 8), ["ws:agent", "tg:7", "tg:8"]),
        ("alice", None, (7,), ["ws:user:alice"]),
        ("tg:42", {"telegram_chat_id": 42}, (7,), ["ws:user:tg:42", "tg:42"]),
        ("tg:42", {"telegram_chat_id": -100, "thread_id": 3}, (), ["ws:user:tg:42", "tg:-100:3"]),
        (None, {"telegram_chat_id": True}, (), ["ws:agent"]),  # a bool is not a chat id
    ],
)
def test_delivery_router(
    owner: str | None, origin: dict[str, Any] | None, notify: Sequence[int], destinations: list[str]
) -> None:
    record = job(Schedule.interval(60_000), user_id=owner)
    public = dataclasses.replace(record.to_public(), name="report", origin=origin)
    router = DeliveryRouter(notify_chat_ids=notify, finished_events=False)
    specs = router(public, run_of(RunStatus.FAILED, error="boom"))
    assert [s.destination for s in specs] == destinations
    event = specs[0].payload
    assert (event["type"], event["success"], event["result_preview"]) == (
        "notification",
        False,
        "boom",
    )
    for spec in specs[1:]:
        assert spec.payload == {"text": "[report] failed\n\nboom"}


def test_a_suppressed_run_reaches_subscribers_only_and_a_notice_reaches_every_place() -> None:
    record = job(Schedule.interval(60_000), user_id="tg:42")
    public = dataclasses.replace(record.to_public(), origin={"telegram_chat_id": 42})
    quiet = dataclasses.replace(run_of(RunStatus.SUCCESS), silent=True, suppressed="silent answer")
    (report,) = DeliveryRouter()(public, quiet)
    assert (report.destination, report.event, report.broadcast) == ("ws:user:tg:42", "report", True)
    assert report.payload["type"] == "run.finished"
    assert (report.payload["silent"], report.payload["suppressed"]) == (True, True)
    assert report.payload["reason"] == "silent answer"
    assert DeliveryRouter(finished_events=False)(public, quiet) == []

    paused = dataclasses.replace(
        run_of(RunStatus.FAILED, error="boom"),
        suppressed="notify=never",
        notice="paused after 3 failed runs in a row; last error: boom",
    )
    specs = DeliveryRouter(finished_events=False)(public, paused)
    assert [(s.destination, s.event) for s in specs] == [
        ("ws:user:tg:42", "notice"),
        ("tg:42", "notice"),
    ]
    assert specs[0].payload["notice"].startswith("paused after 3")
    assert specs[1].payload == {
        "text": "[j] notice\n\npaused after 3 failed runs in a row; last error: boom",
        "event": "notice",  # the Telegram channel puts Resume under it while the job is paused
    }


def test_a_delivered_run_is_also_reported_with_its_own_event_kind() -> None:
    public = job(Schedule.interval(60_000)).to_public()
    specs = DeliveryRouter()(public, run_of(RunStatus.SUCCESS))
    assert [(s.payload["type"], s.event) for s in specs] == [
        ("notification", ""),
        ("run.finished", "report"),
    ]
    assert specs[1].payload["suppressed"] is False and specs[1].payload["reason"] is None
