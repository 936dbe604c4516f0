"""Jitter and overlap through a real store and a real scheduler (time through a ManualClock):
a jittered occurrence fires at its offset but keeps its own time as ``scheduled_for``; each
overlap policy with a slow executor produces exactly the runs it promises."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import (
    Completion,
    CronJob,
    CronScheduler,
    CronStore,
    InvalidJob,
    JobContext,
    JobResult,
    JobSpec,
    JobUpdate,
    ManualClock,
    MisfirePolicy,
    Overlap,
    RunStatus,
    Schedule,
    StoreSettings,
)
from starpod_cron.jitter import fire_offset_ms, following_ms
from starpod_cron.timeutil import from_ms, to_ms
from starpod_cron.views import job_fires, run_json
from tests.conftest import START, until


class Gate:
    """An executor whose runs wait until released; it records every call and the peak of
    calls in flight."""

    def __init__(self) -> None:
        self.calls: list[JobContext] = []
        self.running = 0
        self.peak = 0
        self.open = asyncio.Event()

    async def __call__(self, ctx: JobContext) -> JobResult:
        self.calls.append(ctx)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.open.wait()
            return JobResult(session_id="s", summary="ok")
        finally:
            self.running -= 1

    def fired(self) -> list[datetime]:
        return [c.scheduled_for for c in self.calls]


@pytest.fixture
async def queue_store(url: str, clock: ManualClock) -> AsyncIterator[CronStore]:
    s = await CronStore.open(url, clock=clock, settings=StoreSettings(queue_limit=3))
    yield s
    await s.close()


async def _job(store: CronStore, **options: object) -> CronJob:
    spec = JobSpec("tick", "p", Schedule.interval(every_ms=1000), **options)  # type: ignore[arg-type]
    (job_id,) = await store.add_jobs([spec])
    job = await store.get_job(job_id)
    assert job is not None
    return job


@asynccontextmanager
async def running(store: CronStore, gate: Gate) -> AsyncIterator[CronScheduler]:
    scheduler = _scheduler(store, gate)
    scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()


def _scheduler(store: CronStore, gate: Gate) -> CronScheduler:
    return CronScheduler(
        store,
        gate,
        tick_secs=30,
        max_concurrent_runs=8,
        shutdown_timeout_secs=0.2,
        cancel_grace_secs=0.5,
        lease_secs=600,
    )


def at(seconds: int) -> datetime:
    return START + timedelta(seconds=seconds)


async def _finished(store: CronStore, job_id: str, count: int) -> list[tuple[datetime, str]]:
    """(scheduled_for, status) of the job's finished runs, oldest first, once ``count`` are."""
    result: list[tuple[datetime, str]] = []

    async def check() -> bool:
        nonlocal result
        runs = [r for r in await store.list_runs(job_id, 100) if r.status.is_final]
        result = sorted((r.scheduled_for, r.status.value) for r in runs)
        return len(runs) >= count

    for _ in range(1000):
        if await check():
            return result
        await asyncio.sleep(0.005)
    pytest.fail(f"runs did not finish: {result}")


# ---------------------------------------------------------------------------- overlap
async def test_skip_collapses_fires_missed_while_running_into_one_catch_up(
    store: CronStore, clock: ManualClock
) -> None:
    gate = Gate()
    job = await _job(store)
    async with running(store, gate) as scheduler:
        clock.advance(1)
        await until(lambda: len(gate.calls) == 1, what="the first run")
        clock.advance(3)  # fires at +2, +3 and +4 come while it runs
        await scheduler.checkpoint()
        assert gate.fired() == [at(1)] and gate.peak == 1
        gate.open.set()
        await until(lambda: len(gate.calls) == 2, what="the catch-up run")
        await scheduler.checkpoint()
        assert gate.fired() == [at(1), at(4)]  # one catch-up, for the latest missed fire
        assert await _finished(store, job.id, 2) == [(at(1), "success"), (at(4), "success")]


async def test_queue_runs_every_missed_fire_afterwards_in_order(
    store: CronStore, clock: ManualClock
) -> None:
    gate = Gate()
    job = await _job(store, overlap=Overlap.QUEUE)
    async with running(store, gate) as scheduler:
        clock.advance(1)
        await until(lambda: len(gate.calls) == 1, what="the first run")
        clock.advance(3)
        await scheduler.checkpoint()
        assert gate.fired() == [at(1)]  # never alongside itself
        gate.open.set()
        await until(lambda: len(gate.calls) == 4, what="the three queued fires")
        await scheduler.checkpoint()
        assert gate.fired() == [at(1), at(2), at(3), at(4)]
        assert gate.peak == 1
        finished = await _finished(store, job.id, 4)
        assert finished == [(at(s), "success") for s in (1, 2, 3, 4)]
        after = await store.get_job(job.id)
        # back on schedule (+5 may already be claimed ahead of its time)
        assert after is not None and after.next_run_at in (at(5), at(6))


async def test_queue_keeps_at_most_queue_limit_fires_and_records_the_rest_skipped(
    queue_store: CronStore, clock: ManualClock
) -> None:
    gate = Gate()
    store = queue_store  # queue_limit = 3
    job = await _job(store, overlap=Overlap.QUEUE)
    async with running(store, gate) as scheduler:
        clock.advance(1)
        await until(lambda: len(gate.calls) == 1, what="the first run")
        clock.advance(6)  # +2 .. +7 missed: +5, +6, +7 are kept, +2 .. +4 skipped
        gate.open.set()
        await until(lambda: len(gate.calls) == 4, what="the queued fires")
        await scheduler.checkpoint()
        assert gate.fired() == [at(1), at(5), at(6), at(7)]
        runs = await _finished(store, job.id, 5)
        assert runs == [
            (at(1), "success"),
            (at(2), "skipped"),
            (at(5), "success"),
            (at(6), "success"),
            (at(7), "success"),
        ]
        (skipped,) = [r for r in await store.list_runs(job.id) if r.status is RunStatus.SKIPPED]
        assert skipped.error is not None and "missed 3 occurrence(s)" in skipped.error
        assert "queue_limit (3)" in skipped.error


async def test_allow_runs_alongside_itself_up_to_max_instances(
    store: CronStore, clock: ManualClock
) -> None:
    gate = Gate()
    job = await _job(store, overlap=Overlap.ALLOW, max_instances=2)
    async with running(store, gate) as scheduler:
        clock.advance(1)
        await until(lambda: len(gate.calls) == 1, what="the first run")
        clock.advance(1)
        await until(lambda: len(gate.calls) == 2, what="a second run alongside the first")
        both = await store.get_job(job.id)
        assert both is not None and both.running_count == 2
        clock.advance(1)  # +3: two already in flight, so it waits
        await scheduler.checkpoint()
        assert gate.fired() == [at(1), at(2)] and gate.running == 2
        gate.open.set()
        await until(lambda: len(gate.calls) == 3, what="the waiting fire")
        await scheduler.checkpoint()
        assert gate.fired() == [at(1), at(2), at(3)]
        assert gate.peak == 2
        finished = await _finished(store, job.id, 3)
        assert finished[:3] == [(at(s), "success") for s in (1, 2, 3)]
        await scheduler.stop()  # hands back +4 if it was claimed ahead of its time
        idle = await store.get_job(job.id)
        assert idle is not None and idle.running_count == 0 and idle.running_run_id is None


async def test_allow_with_two_schedulers_runs_each_occurrence_once(
    store: CronStore, clock: ManualClock
) -> None:
    gate = Gate()
    job = await _job(store, overlap=Overlap.ALLOW, max_instances=3)
    first, second = _scheduler(store, gate), _scheduler(store, gate)
    first.start()
    second.start()
    try:
        for step in range(1, 7):
            if gate.open.is_set():  # what ran is recorded before the next fire: a fire whose
                # job is still full when the clock passes the next one is coalesced with it
                await _finished(store, job.id, len(gate.calls))
            clock.advance(1)
            await first.checkpoint()
            await second.checkpoint()
            assert gate.running <= 3
            if step == 4:  # +4 waits: three in flight
                assert gate.fired() == [at(1), at(2), at(3)]
                gate.open.set()  # the first three finish, then +4 runs
                await until(lambda: len(gate.calls) == 4, what="the waiting fire")
        await until(lambda: len(gate.calls) == 6, what="six fires")
        fired = gate.fired()
        assert len(fired) == len(set(fired))  # no occurrence twice
        assert gate.peak == 3
        assert len(await _finished(store, job.id, 6)) == 6
    finally:
        await first.stop()
        await second.stop()


async def test_recovery_frees_every_run_slot_of_an_allow_job(
    store: CronStore, clock: ManualClock
) -> None:
    job = await _job(store, overlap=Overlap.ALLOW, max_instances=2)
    clock.advance(1)
    assert len(await store.claim_due("dead-owner", 10, lease_secs=5)) == 1
    clock.advance(1)
    assert len(await store.claim_due("dead-owner", 10, lease_secs=5)) == 1
    full = await store.get_job(job.id)
    assert full is not None and full.running_count == 2
    clock.advance(1)
    assert await store.claim_due("dead-owner", 10, lease_secs=5) == []  # at max_instances
    clock.advance(10)  # both leases expire
    report = await store.recover()
    assert len(report.interrupted_run_ids) == 2
    freed = await store.get_job(job.id)
    assert freed is not None and freed.running_count == 0 and freed.running_run_id is None
    assert len(await store.claim_due("new-owner", 10, lease_secs=5)) == 1


async def test_switching_allow_back_to_skip_with_runs_in_flight_never_strands_the_job(
    store: CronStore, clock: ManualClock
) -> None:
    job = await _job(store, overlap=Overlap.ALLOW, max_instances=2)
    clock.advance(1)
    (first,) = await store.claim_due("me", 10, lease_secs=60)
    clock.advance(1)
    (second,) = await store.claim_due("me", 10, lease_secs=60)
    await store.update_job(job.id, JobUpdate(overlap=Overlap.SKIP, max_instances=1))
    clock.advance(1)
    assert await store.claim_due("me", 10, lease_secs=60) == []  # two in flight, one allowed
    ok = Completion(first.run_id, RunStatus.SUCCESS, summary="", session_id="")
    assert await store.complete_runs([ok], owner="me") == [True]  # the older run ends first
    assert await store.claim_due("me", 10, lease_secs=60) == []  # one still in flight
    ok = Completion(second.run_id, RunStatus.SUCCESS, summary="", session_id="")
    assert await store.complete_runs([ok], owner="me") == [True]
    idle = await store.get_job(job.id)
    assert idle is not None and idle.running_count == 0 and idle.running_run_id is None
    assert len(await store.claim_due("me", 10, lease_secs=60)) == 1  # due again


async def test_contradicting_overlap_options_are_refused_and_write_nothing(
    store: CronStore,
) -> None:
    with pytest.raises(InvalidJob, match="needs overlap = 'allow'"):
        await _job(store, max_instances=3)
    with pytest.raises(InvalidJob, match="choose one"):
        await _job(store, overlap=Overlap.QUEUE, misfire_policy=MisfirePolicy.SKIP)
    with pytest.raises(InvalidJob, match="jitter_secs must be a number from 0 to 86400"):
        await _job(store, jitter_secs=-1)
    assert await store.list_jobs() == []
    job = await _job(store, overlap=Overlap.ALLOW, max_instances=3)
    with pytest.raises(InvalidJob, match="needs overlap = 'allow'"):
        await store.update_job(job.id, JobUpdate(overlap=Overlap.SKIP))
    unchanged = await store.get_job(job.id)
    assert unchanged is not None and unchanged.overlap is Overlap.ALLOW
    changed = await store.update_job(job.id, JobUpdate(overlap=Overlap.SKIP, max_instances=1))
    assert changed.overlap is Overlap.SKIP and changed.max_instances == 1


# ----------------------------------------------------------------------------- jitter
async def test_a_jittered_occurrence_fires_at_its_offset_and_keeps_its_time(
    store: CronStore, clock: ManualClock
) -> None:
    gate = Gate()
    gate.open.set()
    spec = JobSpec("spread", "p", Schedule.interval(every_ms=60_000), jitter_secs=30)
    (job_id,) = await store.add_jobs([spec])
    job = await store.get_job(job_id)
    assert job is not None and job.next_run_at == at(60)
    offset = job.next_fire_at - job.next_run_at  # type: ignore[operator]
    assert timedelta(0) <= offset < timedelta(seconds=30)
    assert offset > timedelta(0)  # this job's id and time happen to give a non-zero offset
    async with running(store, gate) as scheduler:
        clock.set(job.next_fire_at - timedelta(milliseconds=1))  # type: ignore[operator]
        await scheduler.checkpoint()
        assert gate.calls == []  # its time has passed, its fire time not yet
        clock.advance(0.001)
        await until(lambda: len(gate.calls) == 1, what="the jittered run")
        (run,) = [r for r in await store.list_runs(job_id) if r.status.is_final] or [
            r for r in await store.list_runs(job_id)
        ]
        assert run.scheduled_for == at(60)  # the exactly-once key is the occurrence's time
        assert run.started_at == job.next_fire_at
        assert run_json(run, job)["late_ms"] == 0  # on time, counting its jitter
        assert run_json(run)["late_ms"] == offset // timedelta(milliseconds=1)
        after = await store.get_job(job_id)
        assert after is not None and after.next_run_at == at(120)
        assert job_fires(after, 1) == [after.next_fire_at]


async def test_jitter_longer_than_the_misfire_grace_never_counts_as_a_miss(
    store: CronStore, clock: ManualClock
) -> None:
    """With misfire_policy = "skip", a fire is missed when claimed later than the grace (60 s)
    after its time; a jittered fire's time is its time plus its offset."""
    for attempt in range(50):  # a job whose first offset is longer than the grace
        spec = JobSpec(
            f"spread-{attempt}",
            "p",
            Schedule.cron("0 9 * * *"),
            jitter_secs=1800,
            misfire_policy=MisfirePolicy.SKIP,
        )
        (job_id,) = await store.add_jobs([spec])
        job = await store.get_job(job_id)
        assert job is not None and job.next_fire_at is not None and job.next_run_at is not None
        if job.next_fire_at - job.next_run_at > timedelta(seconds=120):
            break
        await store.remove_job(job_id)
    clock.set(job.next_fire_at)
    (claim,) = await store.claim_due("me", 10, lease_secs=60)
    assert claim.scheduled_for == job.next_run_at
    assert [r.status for r in await store.list_runs(job_id)] == [RunStatus.RUNNING]


@pytest.mark.parametrize(
    ("expression", "jitter_ms"),
    [("0 * * * *", 3_600_000), ("30 2 * * *", 86_400_000), ("*/20 * * * *", 600_000)],
)
def test_jitter_stays_in_range_and_short_of_the_next_fire_across_dst(
    expression: str, jitter_ms: int
) -> None:
    schedule = Schedule.cron(expression)
    offsets = []
    for zone_name, day in (("Europe/Berlin", "2026-03-29"), ("Europe/Berlin", "2026-10-25")):
        nominal = to_ms(datetime.fromisoformat(f"{day}T00:00:00+00:00")) - 86_400_000
        for _ in range(80):  # two days of fires around the change
            following = following_ms(schedule, zone_name, nominal)
            assert following is not None
            offset = fire_offset_ms("job-1", schedule, zone_name, nominal, jitter_ms)
            assert 0 <= offset < min(jitter_ms, following - nominal), (from_ms(nominal), offset)
            offsets.append(offset)
            nominal = following
    assert len(set(offsets)) > len(offsets) // 2  # spread out, not a constant


@pytest.mark.slow
def test_jitter_offsets_are_identical_in_another_process(tmp_path: Path) -> None:
    schedule = Schedule.cron("0 * * * *")
    start = to_ms(datetime.fromisoformat("2026-10-24T20:00:00+00:00"))
    fires = [start + i * 3_600_000 for i in range(12)]  # across Berlin's fall-back
    here = [fire_offset_ms("job-7", schedule, "Europe/Berlin", f, 3_600_000) for f in fires]
    code = (
        "import json, sys\n"
        "from starpod_cron import Schedule\n"
        "from starpod_cron.jitter import fire_offset_ms\n"
        "fires = json.loads(sys.argv[1])\n"
        "s = Schedule.cron('0 * * * *')\n"
        "print(json.dumps([fire_offset_ms('job-7', s, 'Europe/Berlin', f, 3600000) "
        "for f in fires]))\n"
    )
    there = subprocess.run(
        [sys.executable, "-c", code, json.dumps(fires)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(there.stdout) == here


@pytest.mark.slow
async def test_jobs_show_in_another_process_gives_the_same_jittered_times(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "jobs.db")
    store = await CronStore.open(db)
    try:
        spec = JobSpec("morning", "p", Schedule.cron("0 9 * * *"), jitter_secs=1800)
        (job_id,) = await store.add_jobs([spec])
        job = await store.get_job(job_id)
        assert job is not None
        mine = [t.isoformat() for t in job_fires(job, 5)]
    finally:
        await store.close()
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "starpod_cron", "--db", db, "jobs", "show", "morning", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    data = json.loads(shown.stdout)["data"]
    theirs = [datetime.fromisoformat(t).isoformat() for t in data["next_runs"]]
    assert [datetime.fromisoformat(t) for t in theirs] == [datetime.fromisoformat(t) for t in mine]
    assert data["jitter_secs"] == 1800
    assert any(datetime.fromisoformat(t).minute != 0 for t in theirs)  # jitter shows
