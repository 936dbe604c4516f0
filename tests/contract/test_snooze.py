"""Store contract: snoozing moves a job's next fire once; the schedule takes over after it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from starpod_cron import (
    Completion,
    CronStore,
    InvalidInput,
    JobNotFound,
    JobSpec,
    ManualClock,
    NothingToSnooze,
    RunStatus,
    Schedule,
)
from starpod_cron.access import Principal
from starpod_cron.operations import JobOperations
from starpod_cron.tools import call_tool
from tests.conftest import START

HOUR = 3_600_000
LEASE = 60


async def _fire(store: CronStore, clock: ManualClock) -> list[tuple[str, object]]:
    """Claim what is due now and finish it: (job name, scheduled_for) of each run."""
    claims = await store.claim_due("me", 10, LEASE)
    await store.complete_runs(
        [Completion(c.run_id, RunStatus.SUCCESS, summary="ok") for c in claims], owner="me"
    )
    return [(c.job_name, c.scheduled_for) for c in claims]


async def test_snooze_moves_the_next_fire_once_then_the_schedule_resumes(
    store: CronStore, clock: ManualClock
) -> None:
    # daily at 13:00 UTC; START is 12:00, so the next fire is today 13:00
    job_id = await store.add_job("daily", "p", Schedule.cron("0 13 * * *"), timezone="UTC")
    today = START.replace(hour=13)
    snoozed = await store.snooze_job(job_id, HOUR)
    assert snoozed.next_run_at == today + timedelta(hours=1)
    assert snoozed.schedule == Schedule.cron("0 13 * * *")  # the schedule is untouched
    stored = await store.get_job(job_id)
    assert stored is not None and stored.next_run_at == today + timedelta(hours=1)

    clock.set(today)  # the schedule's own time: nothing fires, it was snoozed
    assert await _fire(store, clock) == []
    clock.set(today + timedelta(hours=1))
    assert await _fire(store, clock) == [("daily", today + timedelta(hours=1))]
    after = await store.get_job(job_id)
    assert after is not None and after.next_run_at == today + timedelta(days=1)  # 13:00 again
    clock.set(today + timedelta(days=1))
    assert await _fire(store, clock) == [("daily", today + timedelta(days=1))]


async def test_a_second_snooze_adds_to_the_first_and_an_interval_keeps_its_grid(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job("every-2h", "p", Schedule.interval(every_ms=2 * HOUR))
    first = await store.get_job(job_id)
    assert first is not None and first.next_run_at is not None
    due = first.next_run_at
    await store.snooze_job(job_id, HOUR)
    job = await store.snooze_job(job_id, 30 * 60_000)
    assert job.next_run_at == due + timedelta(minutes=90)
    clock.set(due + timedelta(minutes=90))
    assert await _fire(store, clock) == [("every-2h", due + timedelta(minutes=90))]
    after = await store.get_job(job_id)
    assert after is not None and after.next_run_at == due + timedelta(hours=2)  # its grid


async def test_nothing_to_snooze_is_refused_and_writes_nothing(
    store: CronStore, clock: ManualClock
) -> None:
    paused = await store.add_job("paused", "p", Schedule.interval(every_ms=HOUR))
    await store.disable_job(paused)
    with pytest.raises(NothingToSnooze, match="'paused' is paused: resume it"):
        await store.snooze_job(paused, HOUR)
    (ending,) = await store.add_jobs(
        [
            JobSpec(
                "ending", "p", Schedule.interval(every_ms=HOUR), end_at=START + timedelta(hours=2)
            )
        ]
    )
    before = await store.get_job(ending)
    with pytest.raises(NothingToSnooze, match="past its end_at"):
        await store.snooze_job(ending, 3 * HOUR)
    assert await store.get_job(ending) == before
    with pytest.raises(NothingToSnooze, match="at least a second"):
        await store.snooze_job(ending, 0)
    with pytest.raises(JobNotFound):
        await store.snooze_job("no-such-job", HOUR)


async def test_snooze_through_the_tool_is_checked_against_the_owner(store: CronStore) -> None:
    ops = JobOperations(store)
    alice, bob = Principal("alice"), Principal("bob")
    added = await call_tool(
        ops, "cron_add", {"name": "mine", "prompt": "p", "every": "1h"}, user=alice
    )
    before = added["job"]["next_run"]
    with pytest.raises(JobNotFound):
        await call_tool(ops, "cron_snooze", {"name": "mine", "for": "1h"}, user=bob)
    assert (await store.get_job(added["job"]["id"])) is not None
    job = (await call_tool(ops, "cron_snooze", {"name": "mine", "for": "1h"}, user=alice))["job"]
    assert job["next_run"] != before and job["schedule"]["text"] == "every 1h"
    with pytest.raises(InvalidInput, match="invalid duration 'soon'"):
        await call_tool(ops, "cron_snooze", {"name": "mine", "for": "soon"}, user=alice)
