"""Real OS processes on one SQLite file: exactly-once firing and recovery after SIGKILL."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    Overlap,
    RunStatus,
    RunTrigger,
    Schedule,
)
from tests.conftest import until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.worker",
        *args,
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_two_processes_keep_each_overlap_promise_with_slow_runs(tmp_path: Path) -> None:
    """Runs take 1.5 s, fires come every second: queue jobs run every fire, one at a time and
    in order; allow jobs run alongside themselves, at most 3 at once; no occurrence twice."""
    db = str(tmp_path / "overlap.db")
    store = await CronStore.open(db)
    anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    every = Schedule.interval(every_ms=1000, anchor=anchor)
    queued = [JobSpec(f"q-{i:02}", "p", every, overlap=Overlap.QUEUE) for i in range(10)]
    allowed = [
        JobSpec(f"a-{i:02}", "p", every, overlap=Overlap.ALLOW, max_instances=3) for i in range(10)
    ]
    await store.add_jobs([*queued, *allowed])
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    procs = [await spawn("fire", db, str(out), "5", "1.5") for out in outs]
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()

    executed = [tuple(e) for out in outs for e in json.loads(out.read_text())]
    occurrences = Counter((job, at) for job, at, _ in executed)
    assert max(occurrences.values()) == 1, "an occurrence was executed twice"
    peaks = []
    for job in await store.list_jobs():
        runs = [r for r in await store.list_runs(job.id, 100) if r.status is RunStatus.SUCCESS]
        spans = sorted((r.started_at, r.completed_at, r.scheduled_for) for r in runs)
        assert len(spans) >= 3, (job.name, spans)
        at_once = max(
            sum(1 for s, e, _ in spans if s <= start < e)  # type: ignore[operator]
            for start, _, _ in spans
        )
        if job.overlap is Overlap.QUEUE:
            assert at_once == 1, job.name
            fired = [when for _, _, when in spans]
            assert fired == sorted(fired), job.name  # in order
            assert [(b - a).total_seconds() for a, b in itertools.pairwise(fired)] == [1.0] * (
                len(fired) - 1
            ), job.name  # every fire, none skipped
        else:
            assert at_once <= 3, job.name
            peaks.append(at_once)
    assert max(peaks) > 1  # allow did run jobs alongside themselves
    await store.close()


async def test_two_processes_fire_each_occurrence_of_200_jobs_exactly_once(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "shared.db")
    store = await CronStore.open(db)
    anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    every = Schedule.interval(every_ms=1000, anchor=anchor)
    await store.add_jobs([JobSpec(f"job-{i:03}", f"prompt {i}", every) for i in range(200)])

    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    procs = [await spawn("fire", db, str(out), "4") for out in outs]
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()

    executed = [tuple(e) for out in outs for e in json.loads(out.read_text())]
    per_pid = Counter(pid for _, _, pid in executed)
    occurrences = Counter((job, at) for job, at, _ in executed)
    print("executions per process:", dict(per_pid), "total", len(executed))
    assert len(per_pid) == 2, f"both processes should have run jobs: {per_pid}"
    assert max(occurrences.values()) == 1, "an occurrence was executed twice"

    runs = await store.list_recent_runs(100_000)
    # A graceful stop hands back fires it had claimed ahead but not started: those are
    # recorded "interrupted" and stay pending as a retry at their fire time, never lost.
    assert {r.status for r in runs} <= {RunStatus.SUCCESS, RunStatus.INTERRUPTED}
    successes = [r for r in runs if r.status is RunStatus.SUCCESS]
    recorded = Counter((r.job_id, int(r.scheduled_for.timestamp() * 1000)) for r in successes)
    assert max(recorded.values()) == 1
    assert set(recorded) == set(occurrences)
    for run in runs:
        key = (run.job_id, int(run.scheduled_for.timestamp() * 1000))
        if run.status is RunStatus.INTERRUPTED and key not in recorded:
            job = await store.get_job(run.job_id)
            assert job is not None and job.retry_at == run.scheduled_for
    by_job: dict[str, list[int]] = {}
    for job, at in occurrences:
        by_job.setdefault(job, []).append(at)
    assert len(by_job) == 200
    for times in by_job.values():
        times.sort()
        assert len(times) >= 2
        assert all(b - a == 1000 for a, b in itertools.pairwise(times)), "a fire was lost"
    await store.close()


async def test_sigkill_mid_run_is_recovered_on_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "crash.db")
    marker = tmp_path / "started"
    store = await CronStore.open(db)
    job_id = await store.add_job_full(
        "report",
        "write the report",
        Schedule.one_shot(datetime.now(UTC) + timedelta(seconds=0.5)),
        max_retries=3,
    )

    proc = await spawn("hang", db, str(marker))
    await until(marker.exists, timeout=15, what="the worker to start the run")
    killed_run = marker.read_text()
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    killed_at = time.monotonic()
    (run,) = await store.list_runs(job_id)
    assert run.id == killed_run and run.status is RunStatus.RUNNING  # orphaned by the kill

    done: list[JobContext] = []

    async def executor(ctx: JobContext) -> JobResult:
        done.append(ctx)
        return JobResult(session_id="", summary="report written")

    scheduler = CronScheduler(store, executor, tick_secs=0.5, lease_secs=1)
    scheduler.start()
    try:
        await until(lambda: len(done) == 1, timeout=10, what="the interrupted run to be retried")
        recovered_in = time.monotonic() - killed_at
        await until(lambda: scheduler.running_count == 0)
    finally:
        await scheduler.stop()
    runs = await store.list_runs(job_id)
    assert [(r.status, r.attempt, r.trigger) for r in runs] == [
        (RunStatus.SUCCESS, 2, RunTrigger.RETRY),
        (RunStatus.INTERRUPTED, 1, RunTrigger.SCHEDULE),
    ]
    # the killed scheduler ran on this machine: recovery sees its process is gone at once
    assert runs[1].error is not None and "is no longer running" in runs[1].error
    assert "no retry is used up" not in runs[1].error  # it had started: the attempt counts
    assert done[0].scheduled_for == runs[1].scheduled_for
    assert recovered_in < 5, f"recovery took {recovered_in:.1f}s, expected about one lease (1 s)"
    job = await store.get_job(job_id)
    assert job is not None and job.running_run_id is None and job.last_status is RunStatus.SUCCESS
    assert os.path.exists(db)
    await store.close()
