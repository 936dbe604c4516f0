"""Retry of a failed run (JobOperations.retry, CronStore.retry_run, store/retry.py): the same
occurrence again as the next attempt with trigger ``retry``, made by the ordinary claim, so
two retries (two calls at once, two stores on one database) make one run; every refusal is a
specific error, over every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from starpod_cron import CronStore, JobSpec, RunStatus, RunTrigger, Schedule
from starpod_cron.access import LOCAL_ADMIN, Principal
from starpod_cron.clock import ManualClock
from starpod_cron.errors import RunNotFound, RunNotRetryable
from starpod_cron.operations import JobOperations
from starpod_cron.settings import StoreSettings
from starpod_cron.store.types import Claim

ALICE, BOB = Principal("alice"), Principal("bob")
HOUR = 3_600_000


async def _claim(store: CronStore) -> list[Claim]:
    return await store.claim_due("worker", 10, 60)


async def _failed_run(store: CronStore, clock: ManualClock, **spec: object) -> str:
    """A job of alice's whose first scheduled run failed (no automatic retries): its run id."""
    [job_id] = await store.add_jobs(
        [
            JobSpec("nightly", "p", Schedule.interval(HOUR), user_id="alice", max_retries=0, **spec)  # type: ignore[arg-type]
        ]
    )
    clock.advance(HOUR / 1000 + 1)
    [claim] = await _claim(store)
    assert claim.job_id == job_id and claim.trigger is RunTrigger.SCHEDULE
    await store.record_run_complete(claim.run_id, RunStatus.FAILED, error="boom")
    assert await _claim(store) == []  # max_retries = 0: nothing retries it by itself
    return claim.run_id


async def test_a_retry_runs_the_same_occurrence_once_as_the_next_attempt(
    store: CronStore, clock: ManualClock
) -> None:
    run_id = await _failed_run(store, clock)
    failed = await store.get_run(run_id)
    assert failed is not None and failed.status is RunStatus.FAILED
    ops = JobOperations(store)

    # a double click: two retries at once are the same retry, one run
    answers = await asyncio.gather(ops.retry(ALICE, run_id), ops.retry(ALICE, run_id))
    for job, occurrence, attempt in answers:
        assert (job.name, occurrence, attempt) == ("nightly", failed.scheduled_for, 2)
    [claim] = await _claim(store)
    assert (claim.trigger, claim.attempt) == (RunTrigger.RETRY, 2)
    assert claim.scheduled_for == failed.scheduled_for
    assert await _claim(store) == []

    # asked again once the retry exists: refused, with what to do instead
    with pytest.raises(RunNotRetryable, match="retried already"):
        await ops.retry(ALICE, run_id)
    with pytest.raises(RunNotRetryable, match="still running"):
        await ops.retry(ALICE, claim.run_id)
    await store.record_run_complete(claim.run_id, RunStatus.FAILED, error="again")
    # the newest attempt may be retried in turn: attempt 3 of the same occurrence
    _, _, attempt = await ops.retry(ALICE, claim.run_id)
    [third] = await _claim(store)
    assert (third.attempt, third.trigger) == (3, RunTrigger.RETRY)
    assert third.scheduled_for == claim.scheduled_for
    await store.record_run_complete(third.run_id, RunStatus.SUCCESS, "ok")
    with pytest.raises(RunNotRetryable, match="succeeded"):
        await ops.retry(ALICE, third.run_id)
    runs = await store.list_runs(failed.job_id, 10)
    assert [(r.attempt, r.trigger) for r in runs] == [
        (3, RunTrigger.RETRY),
        (2, RunTrigger.RETRY),
        (1, RunTrigger.SCHEDULE),
    ]


async def test_another_users_run_is_not_found_and_nothing_changes(
    store: CronStore, clock: ManualClock
) -> None:
    run_id = await _failed_run(store, clock)
    ops = JobOperations(store)
    for who, what in [(BOB, run_id), (ALICE, "no-such-run"), (Principal(None), run_id)]:
        with pytest.raises(RunNotFound, match="no run"):
            await ops.retry(who, what)
    assert await _claim(store) == []  # nothing was set to run
    _, _, attempt = await ops.retry(LOCAL_ADMIN, run_id)  # an admin may retry anyone's run
    assert attempt == 2


async def test_a_paused_busy_or_running_job_refuses_and_writes_nothing(
    store: CronStore, clock: ManualClock
) -> None:
    first = await _failed_run(store, clock)
    clock.advance(HOUR / 1000)
    [claim] = await _claim(store)
    await store.record_run_complete(claim.run_id, RunStatus.FAILED, error="boom")
    second = claim.run_id
    ops = JobOperations(store)
    await ops.set_enabled(ALICE, "nightly", False)
    with pytest.raises(RunNotRetryable, match="paused: resume it"):
        await ops.retry(ALICE, first)
    paused = await ops.find(ALICE, "nightly")
    assert not paused.enabled and paused.retry_at is None
    await ops.set_enabled(ALICE, "nightly", True)
    await ops.retry(ALICE, first)
    with pytest.raises(RunNotRetryable, match="already has a retry pending"):
        await ops.retry(ALICE, second)  # one retry at a time
    [retry] = await _claim(store)
    assert (retry.scheduled_for, retry.attempt) == (
        (await store.get_run(first)).scheduled_for,  # type: ignore[union-attr]
        2,
    )
    with pytest.raises(RunNotRetryable, match="running now"):
        await ops.retry(ALICE, second)
    await store.record_run_complete(retry.run_id, RunStatus.SUCCESS, "ok")
    _, _, attempt = await ops.retry(ALICE, second)  # once it has finished
    assert attempt == 2


async def test_a_one_shot_that_gave_up_runs_again_on_retry(
    store: CronStore, clock: ManualClock
) -> None:
    at = clock.now() + timedelta(minutes=5)
    [job_id] = await store.add_jobs(
        [JobSpec("once", "p", Schedule.one_shot(at), user_id="alice", max_retries=0)]
    )
    clock.advance(301)
    [claim] = await _claim(store)
    await store.record_run_complete(claim.run_id, RunStatus.TIMEOUT, error="too slow")
    gave_up = await store.get_job(job_id)
    assert gave_up is not None and not gave_up.enabled
    await JobOperations(store).retry(ALICE, claim.run_id)
    [again] = await _claim(store)
    assert (again.attempt, again.scheduled_for) == (2, claim.scheduled_for)
    await store.record_run_complete(again.run_id, RunStatus.SUCCESS, "done")
    done = await store.get_job(job_id)
    assert done is not None and not done.enabled  # a one-shot again, finished


async def test_two_stores_retrying_at_once_make_one_run(
    url: str, store: CronStore, clock: ManualClock
) -> None:
    """Two nodes (two stores, their own connections) retry the same run at once, and again
    while one of them claims: one retry run."""
    run_id = await _failed_run(store, clock)
    other = await CronStore.open(url, clock=clock, settings=StoreSettings())
    try:
        both = [JobOperations(store), JobOperations(other)]
        results = await asyncio.gather(
            *(ops.retry(ALICE, run_id) for ops in both * 3), return_exceptions=True
        )
        assert all(not isinstance(r, BaseException) for r in results), results
        mine, theirs, late = await asyncio.gather(
            _claim(store), _claim(other), both[1].retry(ALICE, run_id), return_exceptions=True
        )
        assert isinstance(mine, list) and isinstance(theirs, list)
        assert [(c.attempt, c.trigger) for c in mine + theirs] == [(2, RunTrigger.RETRY)]
        assert isinstance(late, tuple | RunNotRetryable), late  # before the claim, or refused
        assert await _claim(other) == [] and await _claim(store) == []
    finally:
        await other.close()
