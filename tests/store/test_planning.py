"""Direct table tests of the pure job state transitions (starpod_cron/store/planning.py):
claims and finishes. No store, no sockets."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from starpod_cron import (
    Completion,
    JobSpec,
    MisfirePolicy,
    RunStatus,
    RunTrigger,
    Schedule,
    StoreSettings,
)
from starpod_cron.store import planning
from starpod_cron.store.records import JobRecord, RunRecord
from starpod_cron.timeutil import to_ms
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
