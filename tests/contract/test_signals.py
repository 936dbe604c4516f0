"""Which writes wake which listeners (the same rule on every dialect), and a claim that loses
the race for an occurrence."""

from __future__ import annotations

import asyncio
from collections import Counter

from starpod_cron import (
    Completion,
    CronStore,
    ManualClock,
    RunFinished,
    RunStatus,
    Schedule,
    Topic,
)
from starpod_cron.timeutil import to_ms
from tests.backends import query, tamper


def count_signals(store: CronStore) -> Counter[Topic]:
    seen: Counter[Topic] = Counter()
    for topic in Topic:
        store.on_change(lambda t=topic: seen.update([t]), topic)
    return seen


async def settled(seen: Counter[Topic]) -> None:
    """Let the wake-ups of earlier writes (and of a listener's first connection) arrive, then
    start counting afresh."""
    await asyncio.sleep(0.6)
    seen.clear()


async def test_a_completion_wakes_the_scheduler_only_when_it_finished_a_run(
    store: CronStore, clock: ManualClock
) -> None:
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    (claim,) = await store.claim_due("me", 10, 30)
    seen = count_signals(store)
    await settled(seen)

    fenced = Completion(claim.run_id, RunStatus.SUCCESS)
    assert await store.complete_runs([fenced], owner="someone else") == [False]
    assert seen == Counter()  # nothing changed: nobody is woken

    assert await store.complete_runs([fenced], owner="me") == [True]
    assert seen[Topic.JOBS] >= 1  # the job is released (PostgreSQL: its NOTIFY may echo too)
    assert seen[Topic.DELIVERIES] == 0  # no planner: nothing queued


async def test_a_claim_and_a_renewal_wake_nobody(store: CronStore, clock: ManualClock) -> None:
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    seen = count_signals(store)
    await settled(seen)
    (claim,) = await store.claim_due("me", 10, 30)
    assert await store.renew_leases("me", 30) == {claim.run_id}
    assert seen == Counter()


async def test_a_claim_whose_occurrence_is_already_recorded_loses_the_race_quietly(
    store: CronStore, clock: ManualClock, url: str
) -> None:
    """The database judges "once": an occurrence someone recorded first is dropped from the
    claim (no error, no StoreUnavailable for the scheduler to back off on), the job is not
    left marked running, and the other due jobs are claimed as usual."""
    taken = await store.add_job("taken", "p", Schedule.interval(every_ms=60_000))
    other = await store.add_job("other", "p", Schedule.interval(every_ms=60_000))
    job = await store.get_job(taken)
    assert job is not None and job.next_run_at is not None
    fire = to_ms(job.next_run_at)
    await tamper(
        url,
        "INSERT INTO runs (id, job_id, job_name, trigger, scheduled_for, attempt, started_at, "
        f"completed_at, status) VALUES ('{'f' * 32}', '{taken}', 'taken', 'schedule', {fire}, "
        f"1, {fire}, {fire}, 'success')",
    )
    clock.advance(60)

    claims = await store.claim_due("me", 10, 30)

    assert [c.job_id for c in claims] == [other]
    job = await store.get_job(taken)
    assert job is not None and job.running_run_id is None and job.running_count == 0
    assert job.next_run_at is not None and to_ms(job.next_run_at) > fire
    assert [r.id for r in await store.list_runs(taken)] == ["f" * 32]
    rows = await query(url, f"SELECT count(*) FROM runs WHERE job_id = '{taken}'")
    assert rows == [(1,)]
    clock.advance(60)  # its next occurrence is claimed as usual ("other" is still running)
    (claim,) = await store.claim_due("me", 10, 30)
    assert claim.job_id == taken


async def test_a_finished_run_is_told_with_its_job_as_it_was_and_its_run_as_recorded(
    store: CronStore, clock: ManualClock
) -> None:
    """A run-finished listener gets the run as ``get_run`` reads it after the commit, and the
    job as it was when the run finished (before the completion counted the run); the outcome
    a notifier reads says the same as the view."""
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    told: list[RunFinished] = []
    store.on_run_finished(told.extend)
    clock.advance(60)
    (claim,) = await store.claim_due("me", 10, 30)
    running = await store.get_job(job_id)
    assert running is not None
    failed = Completion(claim.run_id, RunStatus.FAILED, error="boom", session_id="s1")
    assert await store.complete_runs([failed], owner="me") == [True]
    (event,) = told
    assert event.run == await store.get_run(claim.run_id)
    assert event.job == running  # as it was: not yet counting the failure
    after = await store.get_job(job_id)
    assert after is not None and after.last_status is RunStatus.FAILED != running.last_status
    outcome = event.outcome
    assert (outcome.id, outcome.job_name, outcome.session_id) == (claim.run_id, "j", "s1")
    assert (outcome.status, outcome.error, outcome.suppressed) == ("failed", "boom", None)
    assert event == RunFinished(event.job, event.run) and "status=<RunStatus.FAILED" in repr(event)
