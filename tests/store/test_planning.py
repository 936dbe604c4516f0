"""Direct table tests of the pure pieces: job state transitions, the WebSocket decoder, the
delivery router, the watchdog and group commit. No store, no sockets."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from gateway import protocol
from starpod_cron import (
    Completion,
    CronRun,
    JobSpec,
    ManualClock,
    MisfirePolicy,
    RunStatus,
    RunTrigger,
    Schedule,
    StoreSettings,
)
from starpod_cron.completions import GiveUp, GroupCommit
from starpod_cron.routing import DeliveryRouter
from starpod_cron.store import planning
from starpod_cron.store.records import JobRecord, RunRecord
from starpod_cron.timeutil import to_ms
from starpod_cron.watchdog import Watchdog
from tests.conftest import START

T0 = to_ms(START)
S = 1000
SETTINGS = StoreSettings(retry_backoff_secs=(30, 60))


def job(schedule: Schedule, **changes: Any) -> JobRecord:
    spec = JobSpec("j", "p", schedule, max_retries=2)
    record = planning.new_job(spec, T0, SETTINGS)
    return dataclasses.replace(record, **changes)


# ------------------------------------------------------------------------ claims
@pytest.mark.parametrize(
    ("name", "record", "now", "expected"),
    [
        # (name, job, now, (trigger, scheduled_for, attempt, next_run_at, skipped?))
        (
            "on time",
            job(Schedule.interval(60 * S)),
            T0 + 60 * S,
            (RunTrigger.SCHEDULE, T0 + 60 * S, 1, T0 + 120 * S, False),
        ),
        (
            "retry due first",
            job(
                Schedule.interval(60 * S),
                retry_at=T0 + 30 * S,
                retry_scheduled_for=T0,
                retry_attempt=2,
            ),
            T0 + 30 * S,
            (RunTrigger.RETRY, T0, 2, T0 + 60 * S, False),
        ),
        (
            "a regular fire supersedes a later retry",
            job(
                Schedule.interval(60 * S),
                retry_at=T0 + 90 * S,
                retry_scheduled_for=T0,
                retry_attempt=2,
            ),
            T0 + 60 * S,
            (RunTrigger.SCHEDULE, T0 + 60 * S, 1, T0 + 120 * S, False),
        ),
        (
            "missed fires run once (the latest)",
            job(Schedule.interval(60 * S)),
            T0 + 600 * S,
            (RunTrigger.SCHEDULE, T0 + 600 * S, 1, T0 + 660 * S, False),
        ),
        (
            "skip: run the latest, skip the older",
            job(Schedule.interval(60 * S), misfire_policy=MisfirePolicy.SKIP.value),
            T0 + 600 * S,
            (RunTrigger.SCHEDULE, T0 + 600 * S, 1, T0 + 660 * S, True),
        ),
    ],
)
def test_plan_claim(name: str, record: JobRecord, now: int, expected: tuple[object, ...]) -> None:
    plan = planning.plan_claim(record, now, "me", now + 30 * S, 60 * S, now)
    assert plan.run is not None, name
    got = (
        RunTrigger(plan.run.trigger),
        plan.run.scheduled_for,
        plan.run.attempt,
        record.next_run_at,
        plan.skipped is not None,
    )
    assert got == expected, name
    assert record.running_run_id == plan.run.id and plan.run.lease_owner == "me"


def test_a_skip_beyond_the_grace_period_runs_nothing_and_counts_exactly() -> None:
    record = job(Schedule.interval(3600 * S), misfire_policy=MisfirePolicy.SKIP.value)
    now = T0 + 10 * 3600 * S + 120 * S  # ten hourly fires missed; the latest 2 min ago
    plan = planning.plan_claim(record, now, "me", now + 30 * S, 60 * S, now)
    assert plan.run is None and plan.skipped is not None
    assert plan.skipped.error is not None and "missed 10 occurrence(s)" in plan.skipped.error


def test_a_claim_ahead_records_when_its_holder_was_last_alive() -> None:
    record = job(Schedule.interval(60 * S))
    fire = T0 + 60 * S
    plan = planning.plan_claim(record, fire, "me", fire + 30 * S, 60 * S, claimed_at=fire - S)
    assert plan.run is not None and plan.run.started_at == fire
    assert plan.run.lease_renewed_at == fire - S  # before its start: not started yet


# ----------------------------------------------------------------------- finishes
def claimed(record: JobRecord, trigger: RunTrigger = RunTrigger.SCHEDULE) -> RunRecord:
    run = planning.start_run(record, trigger, T0, 1, T0, "me", T0 + 30 * S)
    return run


@pytest.mark.parametrize(
    ("name", "schedule", "completion", "expected"),
    [
        # expected: (action, enabled, retry_count, retry_at offset from T0 in s or None)
        (
            "success",
            Schedule.interval(60 * S),
            {"status": RunStatus.SUCCESS},
            ("update", True, 0, None),
        ),
        (
            "failure retries after 30 s",
            Schedule.interval(60 * S),
            {"status": RunStatus.FAILED},
            ("update", True, 1, 30),
        ),
        (
            "retry_after wins when longer",
            Schedule.interval(60 * S),
            {"status": RunStatus.FAILED, "retry_after_secs": 90},
            ("update", True, 1, 90),
        ),
        (
            "permanent: no retry",
            Schedule.interval(60 * S),
            {"status": RunStatus.FAILED, "permanent": True},
            ("update", True, 0, None),
        ),
        (
            "timeout counts as a failure",
            Schedule.interval(60 * S),
            {"status": RunStatus.TIMEOUT},
            ("update", True, 1, 30),
        ),
        (
            "interrupted: retried at once",
            Schedule.interval(60 * S),
            {"status": RunStatus.INTERRUPTED},
            ("update", True, 1, 0),
        ),
        (
            "interrupted, not counted: keeps the budget",
            Schedule.interval(60 * S),
            {"status": RunStatus.INTERRUPTED, "count_attempt": False},
            ("update", True, 0, 0),
        ),
        (
            "one-shot success is deleted",
            Schedule.one_shot(START + timedelta(seconds=1)),
            {"status": RunStatus.SUCCESS, "delete": True},
            ("delete", True, 0, None),
        ),
        (
            "one-shot success is disabled",
            Schedule.one_shot(START + timedelta(seconds=1)),
            {"status": RunStatus.SUCCESS},
            ("update", False, 0, None),
        ),
    ],
)
def test_plan_finish(
    name: str, schedule: Schedule, completion: dict[str, Any], expected: tuple[object, ...]
) -> None:
    record = job(schedule, delete_after_run=bool(completion.pop("delete", False)))
    if isinstance(schedule, type(Schedule.one_shot(START))):
        record.next_run_at = None  # its one fire was claimed
    run = claimed(record)
    action = planning.plan_finish(record, run, Completion(run.id, **completion), T0, SETTINGS)
    retry = None if record.retry_at is None else (record.retry_at - T0) // S
    assert (action, record.enabled, record.retry_count, retry) == expected, name
    assert record.running_run_id is None and run.status == completion["status"].value


def test_retries_run_out_then_the_count_resets() -> None:
    record = job(Schedule.interval(60 * S))
    for attempt, retry in ((1, 30), (2, 60), (3, None)):
        run = claimed(record)
        planning.plan_finish(record, run, Completion(run.id, RunStatus.FAILED), T0, SETTINGS)
        got = None if record.retry_at is None else (record.retry_at - T0) // S
        assert got == retry, attempt
    assert record.retry_count == 0 and record.enabled


def test_manual_runs_never_retry_or_consume_the_schedule() -> None:
    record = job(Schedule.interval(60 * S))
    before = record.next_run_at
    run = claimed(record, RunTrigger.MANUAL)
    planning.plan_finish(record, run, Completion(run.id, RunStatus.FAILED, error="x"), T0, SETTINGS)
    assert (record.retry_at, record.next_run_at, record.last_error) == (None, before, "x")


# ------------------------------------------------------------------------ decoder
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"id": 1, "type": "cron.list"}', None),
        ('{"id": 1, "type": "cron.runs", "name": "a", "limit": 200}', None),
        ('{"id": 1, "type": "replay", "since": 0}', None),
        ("{nope", "bad_json"),
        ("[1, 2]", "bad_request"),
        ('{"id": 1, "type": "cron.launch"}', "unknown_type"),
        ('{"id": 1, "type": "cron.get"}', "invalid"),
        ('{"id": 1, "type": "cron.get", "name": 5}', "invalid"),
        ('{"id": 1, "type": "cron.add", "prompt": "p", "colour": "red"}', "invalid"),
        ('{"id": 1, "type": "cron.runs", "name": "a", "limit": 201}', "invalid"),
        ('{"id": 1, "type": "cron.runs", "name": "a", "limit": true}', "invalid"),
        ('{"id": 1, "type": "cron.runs", "name": "a", "limit": 2.5}', "invalid"),
        ('{"id": 1, "type": "replay", "since": -1}', "invalid"),
        ('{"id": 1, "type": "replay", "since": 9223372036854775808}', "invalid"),
    ],
)
def test_decode(frame: str, code: str | None) -> None:
    if code is None:
        assert protocol.decode(frame).id == 1
        return
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.decode(frame)
    assert err.value.code == code and str(err.value)


# ----------------------------------------------------------------------- routing
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
    record = job(Schedule.interval(60 * S), user_id=owner)
    public = dataclasses.replace(record.to_public(), name="report", origin=origin)
    specs = DeliveryRouter(notify_chat_ids=notify)(public, run_of(RunStatus.FAILED, error="boom"))
    assert [s.destination for s in specs] == destinations
    event = specs[0].payload
    assert (event["type"], event["success"], event["result_preview"]) == (
        "notification",
        False,
        "boom",
    )
    for spec in specs[1:]:
        assert spec.payload == {"text": "[report] failed\n\nboom"}


# ------------------------------------------------------------------ watchdog
async def test_watchdog_fires_in_deadline_order_and_never_for_discarded_items() -> None:
    clock = ManualClock(START)
    fired: list[str] = []
    watchdog: Watchdog[str] = Watchdog(clock, fired.append)
    for name, secs in (("c", 30), ("a", 10), ("b", 20), ("gone", 15)):
        watchdog.watch(name, clock.now_ms() + secs * S)
    watchdog.discard("gone")
    assert len(watchdog) == 3
    clock.advance(25)
    for _ in range(5):
        await asyncio.sleep(0)
    assert fired == ["a", "b"]
    clock.advance(10)
    for _ in range(5):
        await asyncio.sleep(0)
    assert fired == ["a", "b", "c"] and len(watchdog) == 0
    await watchdog.close()


# --------------------------------------------------------------- group commit
async def test_group_commit_batches_items_submitted_during_a_write() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            await gate.wait()
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(write, what="numbers")
    first = asyncio.create_task(group.write(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.write(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 10 and [await t for t in rest] == [20, 30, 40]
    assert batches == [[1], [2, 3, 4]]  # three items, one transaction
    assert await group.close()


async def test_group_commit_retries_failed_writes_and_gives_up_only_on_close() -> None:
    attempts = 0

    async def flaky(items: Sequence[int]) -> list[int]:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise OSError("database or disk is full")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(flaky, what="numbers", retry_delays=(0.01,))
    assert await group.write(7) == 7 and attempts == 3  # retried, not lost

    async def broken(items: Sequence[int]) -> list[int]:
        raise OSError("still full")

    stuck: GroupCommit[int, int] = GroupCommit(broken, what="numbers", retry_delays=(0.01,))
    pending = asyncio.create_task(stuck.write(8))
    await asyncio.sleep(0.05)
    assert not pending.done()  # waiting, not failed
    assert await stuck.close(within=0.1) is False
    with pytest.raises(GiveUp, match="still full"):
        await pending
