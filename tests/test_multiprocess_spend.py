"""Budgets across processes on PostgreSQL: two scheduler processes share one database and one
budget; the spend lives in the store (upserted by each run's completing transaction), so a
job's budget lets exactly as many runs start as one process would, and a global budget is
overshot by at most the runs already in flight."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import CronStore, JobSpec, RunStatus, Schedule
from tests.backends import needs_postgres, pg_schema
from tests.test_multiprocess_pg import spawn

pytestmark = [needs_postgres, pytest.mark.slow, pytest.mark.xdist_group("pg-nodes")]
RUN_PICO = 2_000_000_000  # $0.002 a run


async def two_processes(dsn: str, tmp_path: Path, seconds: str, budget: str) -> list[int]:
    """Run the spend worker twice at once; the pids that executed each run."""
    outs = [tmp_path / f"{n}.json" for n in "ab"]
    procs = [
        await spawn("spend", dsn, str(out), seconds, budget, log=out.with_suffix(".log"))
        for out in outs
    ]
    for proc, out in zip(procs, outs, strict=True):
        await asyncio.wait_for(proc.wait(), 60)
        assert proc.returncode == 0, out.with_suffix(".log").read_text()
    return [pid for out in outs for _, _, pid in json.loads(out.read_text())]


async def test_two_processes_respect_one_job_budget(tmp_path: Path) -> None:
    async with pg_schema() as dsn, CronStore.open(dsn) as store:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        every = Schedule.interval(every_ms=1000, anchor=at)
        (job_id,) = await store.add_jobs(
            [JobSpec("digest", "p", every, max_retries=0, budget_usd_per_day=0.005)]
        )
        calls = await two_processes(dsn, tmp_path, "8", "0")
        runs = await store.list_runs(job_id, 1000)
        day = await store.usage(scope="job", key=job_id, period="day")
    statuses = Counter(r.status for r in runs)
    assert len(calls) == 3 and statuses[RunStatus.SUCCESS] == 3, statuses
    skipped = [r for r in runs if r.status is RunStatus.SKIPPED]
    assert len(skipped) >= 3
    assert {r.error for r in skipped} == {"budget: $0.006 of $0.005 today for job 'digest'"}
    assert sum(1 for r in runs if r.notice) == 1  # one message for the period, not one a run
    assert sum(r.cost_pusd for r in day) == 3 * RUN_PICO


async def test_two_processes_overshoot_a_global_budget_by_the_runs_in_flight_at_most(
    tmp_path: Path,
) -> None:
    async with pg_schema() as dsn, CronStore.open(dsn) as store:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        specs = [  # fires spread over each second: the processes take turns
            JobSpec(f"tick-{i}", "p", Schedule.interval(1000, anchor=at + i * step), max_retries=0)
            for i in range(10)
            for step in [timedelta(milliseconds=100)]
        ]
        await store.add_jobs(specs)
        calls = await two_processes(dsn, tmp_path, "8", "0.03")  # 15 runs' worth
        total = await store.usage(scope="global", period="all")
        runs = await store.list_recent_runs(100_000)
    assert len(set(calls)) == 2, "both processes should have run jobs"
    started = [r for r in runs if r.status is RunStatus.SUCCESS]
    assert 15 <= len(started) == len(calls) <= 15 + len(specs)  # at most one in flight a job
    assert sum(r.cost_pusd for r in total) == len(started) * RUN_PICO  # exact across processes
    assert any(r.status is RunStatus.SKIPPED for r in runs)
