"""Store contract: leases, crash recovery and missed fires (misfire policies)."""

from __future__ import annotations

from datetime import timedelta

from starpod_cron import (
    Completion,
    CronStore,
    ManualClock,
    MisfirePolicy,
    RunStatus,
    RunTrigger,
    Schedule,
)
from tests.backends import tamper
from tests.conftest import START


async def test_expired_lease_is_interrupted_and_retried_at_once(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job_full(
        "j", "p", Schedule.interval(every_ms=3_600_000), max_retries=2
    )
    clock.advance(3600)
    (claim,) = await store.claim_due("dead-process", 10, 30)
    clock.advance(29)
    assert (await store.recover()).interrupted_run_ids == []
    clock.advance(2)
    report = await store.recover()
    assert report.interrupted_run_ids == [claim.run_id]
    run = await store.get_run(claim.run_id)
    assert run is not None and run.status is RunStatus.INTERRUPTED
    assert run.error is not None and "dead-process" in run.error
    job = await store.get_job(job_id)
    assert job is not None and job.running_run_id is None
    assert job.retry_count == 1 and job.retry_at == clock.now()
    (retry,) = await store.claim_due("survivor", 10, 30)
    assert (retry.attempt, retry.trigger, retry.scheduled_for) == (
        2,
        RunTrigger.RETRY,
        claim.scheduled_for,
    )
    # the dead owner's late completion is refused
    assert await store.complete_runs(
        [Completion(claim.run_id, RunStatus.SUCCESS)], owner="dead-process"
    ) == [False]


async def test_renewed_leases_survive_recovery(store: CronStore, clock: ManualClock) -> None:
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    await store.add_job("k", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    claims = await store.claim_due("alive", 10, 30)
    assert len(claims) == 2
    for _ in range(5):
        clock.advance(20)
        assert await store.renew_leases("alive", 30) == {c.run_id for c in claims}
        assert (await store.recover()).interrupted_run_ids == []
    await store.record_run_complete(claims[0].run_id, RunStatus.SUCCESS)
    assert await store.renew_leases("alive", 30) == {claims[1].run_id}
    assert await store.renew_leases("someone-else", 30) == set()


async def test_interruption_without_counting_keeps_retry_budget(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job_full(
        "j", "p", Schedule.interval(every_ms=3_600_000), max_retries=0
    )
    clock.advance(3600)
    (claim,) = await store.claim_due("me", 10, 30)
    stop = Completion(claim.run_id, RunStatus.INTERRUPTED, error="stopping", count_attempt=False)
    assert await store.complete_runs([stop], owner="me") == [True]
    job = await store.get_job(job_id)
    assert job is not None and job.retry_count == 0 and job.retry_at == clock.now()
    (again,) = await store.claim_due("me", 10, 30)
    assert again.scheduled_for == claim.scheduled_for and again.attempt == 2


async def test_recover_with_no_retries_left_continues_on_schedule(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job_full(
        "j", "p", Schedule.interval(every_ms=3_600_000), max_retries=0
    )
    clock.advance(3600)
    await store.claim_due("dead", 10, 30)
    clock.advance(60)
    await store.recover()
    job = await store.get_job(job_id)
    assert job is not None and job.enabled and job.retry_at is None
    assert job.next_run_at == START + timedelta(hours=2)


async def test_missed_fires_run_once(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(10 * 60 + 5)  # ten fires missed while nothing ran
    (claim,) = await store.claim_due("me", 10, 30)
    assert claim.scheduled_for == START + timedelta(minutes=10)  # the latest missed fire
    runs = await store.list_runs(job_id)
    assert [r.status for r in runs] == [RunStatus.RUNNING]  # no skipped rows
    job = await store.get_job(job_id)
    assert job is not None and job.next_run_at == START + timedelta(minutes=11)


async def test_missed_fires_skip_records_one_skipped_run(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job_full(
        "j", "p", Schedule.interval(every_ms=60_000), misfire_policy=MisfirePolicy.SKIP
    )
    clock.advance(10 * 60 + 90)  # latest fire (t=11m) is 30 s old: within the 60 s grace
    (claim,) = await store.claim_due("me", 10, 30)
    assert claim.scheduled_for == START + timedelta(minutes=11)
    runs = await store.list_runs(job_id)
    assert [r.status for r in runs] == [RunStatus.RUNNING, RunStatus.SKIPPED]
    skipped = runs[1]
    assert skipped.error is not None and "missed 10 occurrence" in skipped.error
    assert skipped.scheduled_for == START + timedelta(minutes=1)


async def test_stale_fires_are_all_skipped(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job_full(
        "daily", "p", Schedule.cron("0 9 * * *"), misfire_policy=MisfirePolicy.SKIP
    )
    clock.set(START.replace(day=22, hour=15))  # the 09:00 fire is six hours stale
    assert await store.claim_due("me", 10, 30) == []
    (run,) = await store.list_runs(job_id)
    assert run.status is RunStatus.SKIPPED and run.error is not None and "missed 1" in run.error
    job = await store.get_job(job_id)
    assert job is not None and job.next_run_at == START.replace(day=23, hour=9)
    assert job.last_status is RunStatus.SKIPPED and job.running_run_id is None


async def test_missed_one_shot_with_skip_is_disabled_not_lost(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job_full(
        "once",
        "p",
        Schedule.one_shot(START + timedelta(hours=1)),
        delete_after_run=True,
        misfire_policy=MisfirePolicy.SKIP,
    )
    clock.advance(3 * 3600)
    assert await store.claim_due("me", 10, 30) == []
    job = await store.get_job(job_id)
    assert job is not None and not job.enabled and job.last_error is not None
    assert [r.status for r in await store.list_runs(job_id)] == [RunStatus.SKIPPED]


async def test_missed_one_shot_runs_late_by_default(store: CronStore, clock: ManualClock) -> None:
    await store.add_job("once", "p", Schedule.one_shot(START + timedelta(hours=1)))
    clock.advance(3 * 3600)
    (claim,) = await store.claim_due("me", 10, 30)
    assert claim.scheduled_for == START + timedelta(hours=1)


async def test_cron_catch_up_after_a_long_outage_is_bounded(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job_full(
        "every-second", "p", Schedule.cron("* * * * * *"), misfire_policy=MisfirePolicy.SKIP
    )
    clock.advance(30 * 86_400)  # a month of per-second fires
    assert await store.claim_due("me", 10, 30) != []
    runs = await store.list_runs(job_id)
    skipped = [r for r in runs if r.status is RunStatus.SKIPPED]
    assert len(skipped) == 1 and skipped[0].error is not None
    assert "missed about 2,591,999 occurrence(s)" in skipped[0].error  # estimated, cheaply


async def test_recovery_spares_the_callers_own_runs(store: CronStore, clock: ManualClock) -> None:
    await store.add_job("mine", "p", Schedule.interval(every_ms=60_000))
    await store.add_job("theirs", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    mine = await store.claim_due("me", 1, 30)
    theirs = await store.claim_due("dead", 1, 30)
    clock.advance(600)  # both leases expired: "me" knows its run is alive, "dead" is not
    report = await store.recover(held={mine[0].run_id})
    assert report.interrupted_run_ids == [theirs[0].run_id]
    run = await store.get_run(mine[0].run_id)
    assert run is not None and run.status is RunStatus.RUNNING
    assert await store.renew_leases("me", 30) == {mine[0].run_id}


async def test_recover_repairs_jobs_left_without_a_next_fire(url: str, clock: ManualClock) -> None:
    async with CronStore.open(url, clock=clock) as store:
        job_id = await store.add_job("j", "p", Schedule.cron("0 * * * *"))
    # damage as an older, buggier writer might have left it
    await tamper(url, "UPDATE jobs SET next_run_at = NULL, running_run_id = 'ghost'")
    async with CronStore.open(url, clock=clock) as store:
        assert await store.get_due_jobs() == []
        assert (await store.recover(repair=False)).rescheduled_jobs == 0  # periodic: no scans
        report = await store.recover()
        assert report.rescheduled_jobs == 1
        job = await store.get_job(job_id)
        assert job is not None and job.running_run_id is None
        assert job.next_run_at is not None and job.next_run_at > clock.now()
        clock.advance(3600)
        (claim,) = await store.claim_due("me", 1, 30)
        await store.record_run_complete(claim.run_id, RunStatus.SUCCESS)
        job = await store.get_job(job_id)
        assert job is not None and job.last_status is RunStatus.SUCCESS


async def test_a_job_that_cannot_be_evaluated_is_disabled_not_blocking(
    url: str, clock: ManualClock
) -> None:
    async with CronStore.open(url, clock=clock) as store:
        bad = await store.add_job("bad", "p", Schedule.cron("0 * * * *"))
        good = await store.add_job("good", "p", Schedule.cron("0 * * * *"))
    # e.g. a zone that a tzdata update removed
    await tamper(url, f"UPDATE jobs SET timezone = 'Gone/Zone' WHERE id = '{bad}'")
    async with CronStore.open(url, clock=clock) as store:
        clock.advance(3600)
        (claim,) = await store.claim_due("me", 10, 30)
        assert claim.job_id == good
        job = await store.get_job(bad)
        assert job is not None and not job.enabled
        assert job.last_error is not None and "Gone/Zone" in job.last_error
