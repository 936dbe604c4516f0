"""Store contract: claiming occurrences, completing runs, retries, one-shots, history."""

from __future__ import annotations

import asyncio
from dataclasses import MISSING, fields, replace
from datetime import timedelta

import pytest

from starpod_cron import (
    Completion,
    CronStore,
    InvalidInput,
    JobAlreadyRunning,
    JobNotFound,
    ManualClock,
    MisfirePolicy,
    RunNotFound,
    RunNotRunning,
    RunStatus,
    RunTrigger,
    Schedule,
    StoreSettings,
)
from starpod_cron.store.records import RUN_COLUMNS, RUN_START_COLUMNS, RunRecord, started_rows
from tests.backends import query
from tests.conftest import START
from tests.contract.conftest import Opener

LEASE = 30.0


async def claim_one(store: CronStore, owner: str = "me") -> str:
    claims = await store.claim_due(owner, 10, LEASE)
    assert len(claims) == 1, claims
    return claims[0].run_id


async def test_claim_advances_next_fire_and_marks_running(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job("j", "prompt", Schedule.interval(every_ms=60_000))
    assert await store.claim_due("me", 10, LEASE) == []
    clock.advance(60)
    (claim,) = await store.claim_due("me", 10, LEASE)
    assert claim.job_id == job_id and claim.prompt == "prompt"
    assert claim.scheduled_for == START + timedelta(minutes=1)
    assert (claim.attempt, claim.trigger) == (1, RunTrigger.SCHEDULE)
    job = await store.get_job(job_id)
    assert job is not None and job.running_run_id == claim.run_id
    assert job.next_run_at == START + timedelta(minutes=2) and job.last_run_at == clock.now()
    run = await store.get_run(claim.run_id)
    assert run is not None and run.status is RunStatus.RUNNING and run.completed_at is None
    # a job never runs concurrently with itself, even when its next fire comes
    clock.advance(120)
    assert await store.claim_due("other", 10, LEASE) == []
    assert await store.get_due_jobs() == []


async def test_claims_earliest_first_up_to_limit(store: CronStore, clock: ManualClock) -> None:
    for i, secs in enumerate([50, 10, 40, 20, 30]):
        await store.add_job(f"j{i}", "p", Schedule.one_shot(START + timedelta(seconds=secs)))
    clock.advance(60)
    first = await store.claim_due("me", 2, LEASE)
    assert [c.job_name for c in first] == ["j1", "j3"]
    rest = await store.claim_due("me", 10, LEASE)
    assert [c.job_name for c in rest] == ["j4", "j2", "j0"]


async def test_concurrent_claimers_on_two_store_objects_never_share_an_occurrence(
    store: CronStore, open_store: Opener, settings: StoreSettings, clock: ManualClock
) -> None:
    other = await open_store(settings, clock)
    try:
        for i in range(200):
            await store.add_job(f"j{i:03}", "p", Schedule.one_shot(START + timedelta(seconds=1)))
        clock.advance(2)
        results = await asyncio.gather(
            *[(store if i % 2 else other).claim_due(f"o{i}", 7, LEASE) for i in range(60)]
        )
        claimed = [c.job_id for batch in results for c in batch]
        assert len(claimed) == 200 and len(set(claimed)) == 200
    finally:
        await other.close()


async def test_success_releases_job_and_records_result(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    run_id = await claim_one(store)
    clock.advance(2.5)
    done = Completion(run_id, RunStatus.SUCCESS, summary="All clear", session_id="sess-1")
    assert await store.complete_runs([done], owner="me") == [True]
    run = await store.get_run(run_id)
    assert run is not None
    assert (run.status, run.result_summary, run.session_id) == (
        RunStatus.SUCCESS,
        "All clear",
        "sess-1",
    )
    assert run.duration_ms == 2500 and run.completed_at == clock.now()
    job = await store.get_job(job_id)
    assert job is not None and job.running_run_id is None
    assert job.last_status is RunStatus.SUCCESS and job.run_count == 1
    # completing twice or with another owner changes nothing
    assert await store.complete_runs([done], owner="me") == [False]


async def test_completion_by_a_non_owner_is_refused(store: CronStore, clock: ManualClock) -> None:
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    run_id = await claim_one(store, owner="a")
    assert await store.complete_runs([Completion(run_id, RunStatus.SUCCESS)], owner="b") == [False]
    run = await store.get_run(run_id)
    assert run is not None and run.status is RunStatus.RUNNING


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.SKIPPED])
async def test_completion_needs_a_final_status(
    store: CronStore, clock: ManualClock, status: RunStatus
) -> None:
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    run_id = await claim_one(store)
    with pytest.raises(InvalidInput):
        await store.record_run_complete(run_id, status, "x")
    run = await store.get_run(run_id)
    assert run is not None and run.status is RunStatus.RUNNING


async def test_failures_retry_with_backoff_then_give_up(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job_full("j", "p", Schedule.cron("0 9 * * *"), max_retries=3)
    clock.set(START.replace(day=22, hour=9))
    occurrence = clock.now()
    run_id = await claim_one(store)
    for attempt, delay, status in [
        (2, 30, RunStatus.FAILED),
        (3, 60, RunStatus.TIMEOUT),
        (4, 300, RunStatus.FAILED),
    ]:
        await store.record_run_complete(run_id, status, error=f"boom {attempt}")
        job = await store.get_job(job_id)
        assert job is not None and job.retry_count == attempt - 1
        assert job.retry_at == clock.now() + timedelta(seconds=delay)
        assert job.last_error == f"boom {attempt}"
        clock.advance(delay - 1)
        assert await store.claim_due("me", 10, LEASE) == []
        clock.advance(1)
        (claim,) = await store.claim_due("me", 10, LEASE)
        assert (claim.attempt, claim.trigger, claim.scheduled_for) == (
            attempt,
            RunTrigger.RETRY,
            occurrence,
        )
        run_id = claim.run_id
    await store.record_run_complete(run_id, RunStatus.FAILED, error="still broken")
    job = await store.get_job(job_id)
    assert job is not None
    assert (job.retry_count, job.retry_at, job.last_error) == (0, None, "still broken")
    assert job.enabled and job.next_run_at == START.replace(day=23, hour=9)
    runs = await store.list_runs(job_id, 10)
    assert [r.attempt for r in runs] == [4, 3, 2, 1]  # newest first
    assert [r.status for r in runs] == [
        RunStatus.FAILED,
        RunStatus.FAILED,
        RunStatus.TIMEOUT,
        RunStatus.FAILED,
    ]


async def test_success_resets_retry_count(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job("j", "p", Schedule.cron("0 9 * * *"))
    clock.set(START.replace(day=22, hour=9))
    await store.record_run_complete(await claim_one(store), RunStatus.FAILED, error="x")
    clock.advance(30)
    await store.record_run_complete(await claim_one(store), RunStatus.SUCCESS, "ok")
    job = await store.get_job(job_id)
    assert job is not None and (job.retry_count, job.retry_at, job.last_error) == (0, None, None)


async def test_permanent_failure_skips_retries(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=3_600_000))
    clock.advance(3600)
    await store.record_run_complete(
        await claim_one(store), RunStatus.FAILED, error="400 bad model", permanent=True
    )
    job = await store.get_job(job_id)
    assert job is not None and job.retry_at is None and job.last_error == "400 bad model"


async def test_retry_after_delays_the_retry(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=3_600_000))
    clock.advance(3600)
    run_id = await claim_one(store)
    await store.complete_runs(
        [Completion(run_id, RunStatus.FAILED, error="429", retry_after_secs=120)], owner="me"
    )
    job = await store.get_job(job_id)
    assert job is not None and job.retry_at == clock.now() + timedelta(seconds=120)


async def test_a_regular_fire_before_the_retry_supersedes_it(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    run_id = await claim_one(store)
    clock.advance(50)
    await store.complete_runs(
        [Completion(run_id, RunStatus.FAILED, error="x", retry_after_secs=600)], owner="me"
    )
    clock.advance(10)  # the next regular fire (t=120 s) is due before the retry (t=710 s)
    (claim,) = await store.claim_due("me", 10, LEASE)
    assert claim.trigger is RunTrigger.SCHEDULE and claim.attempt == 1
    job = await store.get_job(job_id)
    assert job is not None and job.retry_at is None and job.retry_count == 0


async def test_one_shot_success_deletes_or_disables(store: CronStore, clock: ManualClock) -> None:
    at = Schedule.one_shot(START + timedelta(minutes=20))
    gone = await store.add_job("remind", "p", at, delete_after_run=True)
    kept = await store.add_job("keep", "p", at)
    clock.advance(1200)
    for claim in await store.claim_due("me", 10, LEASE):
        await store.record_run_complete(claim.run_id, RunStatus.SUCCESS, "done")
    assert await store.get_job(gone) is None
    job = await store.get_job(kept)
    assert job is not None and not job.enabled and job.next_run_at is None
    history = await store.list_recent_runs(10)
    assert sorted(r.job_name for r in history) == ["keep", "remind"]  # history survives


async def test_failed_one_shot_retries_then_stays_disabled_with_error(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job_full(
        "remind",
        "p",
        Schedule.one_shot(START + timedelta(hours=1)),
        delete_after_run=True,
        max_retries=1,
    )
    clock.advance(3600)
    await store.record_run_complete(await claim_one(store), RunStatus.FAILED, error="first")
    job = await store.get_job(job_id)
    assert job is not None and job.enabled and job.retry_at is not None
    clock.advance(30)
    await store.record_run_complete(await claim_one(store), RunStatus.FAILED, error="second")
    job = await store.get_job(job_id)
    assert job is not None, "a failed one-shot is never deleted"
    assert not job.enabled and job.last_error == "second" and job.retry_at is None


async def test_manual_runs(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job(
        "remind", "p", Schedule.one_shot(START + timedelta(hours=1)), delete_after_run=True
    )
    run_id = await store.record_run_start(job_id)
    with pytest.raises(JobAlreadyRunning):
        await store.record_run_start(job_id)
    clock.advance(3600)
    assert await store.claim_due("me", 10, LEASE) == [], "never alongside a manual run"
    await store.record_run_complete(run_id, RunStatus.FAILED, error="manual failure")
    job = await store.get_job(job_id)
    assert job is not None and job.retry_at is None, "manual runs never schedule retries"
    assert job.last_error == "manual failure" and job.last_status is RunStatus.FAILED
    run_id = await store.record_run_start(job_id)
    await store.record_run_complete(run_id, RunStatus.SUCCESS, "ok")
    job = await store.get_job(job_id)
    assert job is not None and job.enabled, "a manual run does not consume the one-shot"
    (run,) = await store.list_runs(job_id, 1)
    assert run.trigger is RunTrigger.MANUAL and run.status is RunStatus.SUCCESS
    (claim,) = await store.claim_due("me", 10, LEASE)  # the scheduled fire still happens
    assert claim.trigger is RunTrigger.SCHEDULE
    with pytest.raises(JobNotFound):
        await store.record_run_start("missing")
    with pytest.raises(RunNotFound):
        await store.record_run_complete("missing", RunStatus.SUCCESS)
    with pytest.raises(RunNotRunning):
        await store.record_run_complete(run_id, RunStatus.SUCCESS)


async def test_list_runs_newest_first_with_limit(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=1000))
    for i in range(5):
        clock.advance(1)
        await store.record_run_complete(await claim_one(store), RunStatus.SUCCESS, f"run {i}")
    runs = await store.list_runs(job_id, 3)
    assert [r.result_summary for r in runs] == ["run 4", "run 3", "run 2"]
    recent = await store.list_recent_runs(2, job_id=job_id, status=RunStatus.SUCCESS)
    assert [r.result_summary for r in recent] == ["run 4", "run 3"]
    assert await store.list_recent_runs(10, status=RunStatus.FAILED) == []


async def test_history_keeps_the_last_runs_per_job(open_store: Opener, clock: ManualClock) -> None:
    store = await open_store(StoreSettings(runs_keep_per_job=5), clock)
    try:
        a = await store.add_job("a", "p", Schedule.interval(every_ms=1000))
        b = await store.add_job("b", "p", Schedule.interval(every_ms=1000))
        for i in range(12):
            clock.advance(1)
            for claim in await store.claim_due("me", 10, LEASE):
                await store.record_run_complete(claim.run_id, RunStatus.SUCCESS, f"{i}")
        for job_id in (a, b):
            runs = await store.list_runs(job_id, 100)
            assert [r.result_summary for r in runs] == ["11", "10", "9", "8", "7"]
            job = await store.get_job(job_id)
            assert job is not None and job.run_count == 12
    finally:
        await store.close()


async def test_prune_runs_by_age(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=86_400_000))
    for _ in range(3):
        clock.advance(86_400)
        await store.record_run_complete(await claim_one(store), RunStatus.SUCCESS, "ok")
    cutoff = clock.now() - timedelta(seconds=1)
    assert await store.prune_runs(cutoff, dry_run=True) == 2
    assert len(await store.list_runs(job_id)) == 3
    assert await store.prune_runs(cutoff) == 2
    assert len(await store.list_runs(job_id)) == 1


async def test_long_results_are_capped(store: CronStore, clock: ManualClock) -> None:
    await store.add_job("j", "p", Schedule.interval(every_ms=1000))
    clock.advance(1)
    run_id = await claim_one(store)
    await store.record_run_complete(run_id, RunStatus.SUCCESS, "é" * 300_000)
    run = await store.get_run(run_id)
    assert run is not None and run.result_summary is not None
    assert len(run.result_summary) == 256 * 1024 and run.result_summary.endswith("…")


async def test_sub_millisecond_one_shot_fires_on_time_without_misfire(
    store: CronStore, clock: ManualClock
) -> None:
    at = START + timedelta(seconds=3, microseconds=123_456)
    job_id = await store.add_job_full(
        "precise", "p", Schedule.one_shot(at), misfire_policy=MisfirePolicy.SKIP
    )
    job = await store.get_job(job_id)
    assert job is not None and job.next_run_at == START + timedelta(seconds=3, milliseconds=123)
    clock.set(job.next_run_at)
    (claim,) = await store.claim_due("me", 10, LEASE)
    assert claim.trigger is RunTrigger.SCHEDULE and claim.scheduled_for == job.next_run_at
    assert [r.status for r in await store.list_runs(job_id)] == [RunStatus.RUNNING]


async def test_claim_ahead_starts_runs_at_their_fire_time(
    store: CronStore, clock: ManualClock
) -> None:
    soon = await store.add_job("soon", "p", Schedule.one_shot(START + timedelta(seconds=2)))
    await store.add_job("later", "p", Schedule.one_shot(START + timedelta(seconds=5)))
    clock.advance(1)
    assert await store.claim_due("me", 10, LEASE) == []  # nothing due yet
    (claim,) = await store.claim_due("me", 10, LEASE, ahead_secs=1.5)
    assert claim.job_id == soon and claim.start_at == START + timedelta(seconds=2)
    run = await store.get_run(claim.run_id)
    assert run is not None and run.started_at == START + timedelta(seconds=2)


async def test_run_stats_count_runs_errors_and_tokens_per_job(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    for status, tokens in [(RunStatus.SUCCESS, 10), (RunStatus.FAILED, None)]:
        clock.advance(60)
        (claim,) = await store.claim_due("me", 10, 30)
        done = Completion(claim.run_id, status, "r", prompt_tokens=tokens, completion_tokens=tokens)
        assert await store.complete_runs([done], owner="me") == [True]
    stats = await store.run_stats()
    assert stats[job_id].runs == 2 and stats[job_id].errors == 1
    assert stats[job_id].last_duration_ms is not None
    assert (stats[job_id].prompt_tokens, stats[job_id].completion_tokens) == (10, 10)


async def test_a_claim_writes_only_a_starts_columns_and_the_rest_read_as_a_new_run(
    store: CronStore, clock: ManualClock, url: str
) -> None:
    """A burst's claims insert a run's 11 start columns and leave the others to the table's
    defaults: read back, those are exactly a fresh run's (no outcome, not silent), on every
    dialect; a claim that also records a skipped run writes both whole, in order."""
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    (claim,) = await store.claim_due("me", 10, 30)
    (row,) = await query(url, f"SELECT {', '.join(RUN_COLUMNS)} FROM runs")
    run = RunRecord.from_row(row)
    assert run.id == claim.run_id and run.status == "running" and run.lease_owner == "me"
    rest = [c for c in RUN_COLUMNS if c not in RUN_START_COLUMNS]
    fresh = {f.name: f.default for f in fields(RunRecord) if f.default is not MISSING}
    assert {c: getattr(run, c) for c in rest} == {c: fresh.get(c) for c in rest}
    assert started_rows([run]) == [tuple(getattr(run, c) for c in RUN_START_COLUMNS)]
    skipped = replace(run, status="skipped", error="missed", completed_at=run.started_at)
    assert started_rows([run, skipped]) is None
