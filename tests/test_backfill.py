"""Backfill on every backend with a real scheduler and a ManualClock: each past occurrence
without a recorded run runs once, oldest first (twice over one range runs nothing more; the
scheduler's catch-up never repeats one); skipped and interrupted occurrences count as unrun;
above the limit nothing runs; two processes backfilling one range run each occurrence once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    InvalidInput,
    JobSpec,
    ManualClock,
    MisfirePolicy,
    RunStatus,
    RunTrigger,
    Schedule,
)
from starpod_cron.access import LOCAL_ADMIN, Principal
from starpod_cron.errors import LimitExceeded
from starpod_cron.operations import JobOperations
from tests.conftest import START, until
from tests.processes import CLI, ROOT, environment
from tests.test_scheduler import Recorder

TEN_MINUTES = Schedule.cron("*/10 * * * *")


@pytest.fixture
async def scheduler(store: CronStore, recorder: Recorder) -> AsyncIterator[CronScheduler]:
    s = CronScheduler(store, recorder, tick_secs=30, max_concurrent_runs=4)
    yield s
    await s.stop()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def add(store: CronStore, name: str = "report", **fields: object) -> str:
    spec = JobSpec(name=name, prompt="p", schedule=TEN_MINUTES, **fields)  # type: ignore[arg-type]
    (job_id,) = await store.add_jobs([spec])
    return job_id


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


async def test_backfill_over_a_range_twice_runs_each_occurrence_once(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    job_id = await add(store)
    clock.set(at(60))  # an hour passes with no scheduler: 12:10 ... 13:00 never ran
    planned = await store.backfill_occurrences(job_id, at(0), at(60))
    assert planned == [at(m) for m in range(0, 61, 10)]  # 12:00 too: the schedule's, not the job's

    runs = await scheduler.backfill(job_id, at(0), at(60))
    assert [r.scheduled_for for r in runs] == planned
    assert {(r.status, r.trigger, r.attempt) for r in runs} == {
        (RunStatus.SUCCESS, RunTrigger.BACKFILL, 1)
    }
    assert [c.scheduled_for for c in recorder.calls] == planned  # oldest first
    assert await scheduler.backfill(job_id, at(0), at(60)) == []  # again: nothing left
    assert await store.backfill_occurrences(job_id, at(0), at(60)) == []

    scheduler.start()  # the scheduler's catch-up of 13:00 finds it taken: it does not repeat it
    await scheduler.checkpoint()
    await until(lambda: scheduler.running_count == 0)
    assert len(recorder.calls) == 7
    assert len(await store.list_runs(job_id, 100)) == 7
    job = await store.get_job(job_id)
    assert job is not None and job.next_run_at == at(70) and job.enabled
    clock.set(at(70))  # and it goes on with the next fire
    await until(lambda: len(recorder.calls) == 8, what="the 13:10 fire")


async def test_skipped_and_interrupted_occurrences_count_as_unrun(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    job_id = await add(store, misfire_policy=MisfirePolicy.SKIP, max_retries=0)
    clock.set(at(35))  # a scheduler that starts late skips 12:10-12:30 (one row, 12:10's)
    assert await store.claim_due("late", 10, lease_secs=60) == []
    (skipped,) = await store.list_runs(job_id)
    assert (skipped.status, skipped.scheduled_for) == (RunStatus.SKIPPED, at(10))
    clock.set(at(40))
    (held,) = await store.claim_due("vanished", 10, lease_secs=1)  # its holder then vanishes
    clock.advance(5)
    await store.recover()
    interrupted = await store.get_run(held.run_id)
    assert interrupted is not None and interrupted.status is RunStatus.INTERRUPTED

    runs = await scheduler.backfill(job_id, at(0), at(40))
    assert [(r.scheduled_for, r.attempt) for r in runs] == [
        (at(0), 1),
        (at(10), 2),  # after its skipped row
        (at(20), 1),
        (at(30), 1),
        (at(40), 2),  # after its interrupted attempt
    ]
    assert all(r.status is RunStatus.SUCCESS for r in runs)
    assert await scheduler.backfill(job_id, at(0), at(40)) == []


async def test_above_the_limit_nothing_runs_and_the_error_says_what_to_do(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    (job_id,) = await store.add_jobs(
        [
            JobSpec(
                name="minutely",
                prompt="p",
                schedule=Schedule.interval(every_ms=60_000),
                user_id="alice",
            )
        ]
    )
    clock.set(START + timedelta(days=1))
    ops = JobOperations(store, backfiller=scheduler.backfill)
    after_start = "2026-11-21T12:00:01+00:00"  # the grid's anchor (12:00) is not in the range
    with pytest.raises(InvalidInput) as refused:
        await ops.backfill(LOCAL_ADMIN, "minutely", after_start, "now")
    assert str(refused.value) == (
        "the range holds 1,440 occurrences; the limit is 1,000: narrow --from/--to or pass "
        "--max 1440"
    )
    with pytest.raises(LimitExceeded):  # only an admin may go past [cron] backfill_limit
        await ops.backfill(Principal("alice"), "minutely", after_start, "now", limit=1440)
    assert recorder.calls == [] and await store.list_runs(job_id) == []  # nothing written

    _, occurrences, runs = await ops.backfill(
        LOCAL_ADMIN, "minutely", "2026-11-21 12:00", "2026-11-21 12:05", dry_run=True
    )
    assert occurrences == [START + timedelta(minutes=m) for m in range(6)] and runs == []
    assert recorder.calls == [] and await store.list_runs(job_id) == []
    with pytest.raises(InvalidInput, match=r"holds 6 occurrences; the limit is 5: .* --max 6"):
        await ops.backfill(LOCAL_ADMIN, "minutely", "2026-11-21 12:00", "2026-11-21 12:05", limit=5)
    assert recorder.calls == [] and await store.list_runs(job_id) == []
    _, occurrences, runs = await ops.backfill(
        LOCAL_ADMIN, "minutely", "2026-11-21 12:00", "2026-11-21 12:05", limit=6
    )
    assert len(runs) == 6 and len(recorder.calls) == 6
    for bad in ("yesterday-ish", ""):
        with pytest.raises(InvalidInput):
            await ops.backfill(LOCAL_ADMIN, "minutely", bad, "now")
    with pytest.raises(InvalidInput, match="before --from"):
        await ops.backfill(LOCAL_ADMIN, "minutely", "now", START.isoformat())


async def test_max_instances_bounds_backfill_runs_at_once(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    recorder.block = True
    one = await add(store, "one")
    three = await add(store, "three", max_instances=3, overlap="allow")
    clock.set(at(60))
    first = asyncio.ensure_future(scheduler.backfill(one, at(0), at(60)))
    await until(lambda: recorder.running == 1)
    second = asyncio.ensure_future(scheduler.backfill(three, at(0), at(60)))
    await until(lambda: recorder.running == 4)  # 1 + 3: each job's max_instances
    await asyncio.sleep(0.05)
    assert recorder.running == 4
    recorder.release.set()
    assert len(await first) == 7 and len(await second) == 7
    assert recorder.peak == 4


@pytest.mark.slow
async def test_two_processes_backfilling_one_range_run_each_occurrence_once(
    url: str, tmp_path: Path
) -> None:
    (tmp_path / "agent.toml").write_text(
        '[executor]\nkind = "python"\ntarget = "tests.targets:run"\n'
    )
    async with CronStore.open(url) as store:
        (job_id,) = await store.add_jobs(
            [JobSpec(name="minutely", prompt="sleep:0.05", schedule=Schedule.cron("* * * * *"))]
        )
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = (now - timedelta(minutes=29)).isoformat()
    command = [CLI, "--db", url, "--json", "jobs", "backfill", "minutely", "--from", start]
    procs = [
        await asyncio.create_subprocess_exec(
            *command,
            "--to",
            now.isoformat(),
            cwd=tmp_path,
            env=environment({"PYTHONPATH": str(ROOT)}),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    answers = []
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        answers.append(json.loads(out)["data"])
    assert all("runs" in a for a in answers), answers
    ran = Counter(run["scheduled_for"] for a in answers for run in a["runs"])
    assert len(ran) == 30 and set(ran.values()) == {1}, ran
    async with CronStore.open(url) as store:
        runs = await store.list_runs(job_id, 100)
        assert len(runs) == 30
        assert len({r.scheduled_for for r in runs}) == 30
        assert {r.trigger for r in runs} == {RunTrigger.BACKFILL}
