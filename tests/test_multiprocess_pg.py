"""Exactly once across processes on PostgreSQL: three scheduler processes share one database
(row locks with SKIP LOCKED, the unique key per occurrence, fenced completions), and one of
them is SIGKILLed mid-burst."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import CronStore, JobSpec, RunStatus, Schedule
from tests.backends import needs_postgres, pg_schema
from tests.conftest import eventually

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [needs_postgres, pytest.mark.slow, pytest.mark.xdist_group("pg-nodes")]


async def spawn(*args: str, log: Path) -> asyncio.subprocess.Process:
    """A worker process logging to ``log`` (a pipe nobody reads would fill up and block it)."""
    with open(log, "ab") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.worker", *args, cwd=ROOT, stderr=stderr
        )


async def test_three_processes_run_every_occurrence_exactly_once(tmp_path: Path) -> None:
    async with pg_schema() as dsn, CronStore.open(dsn) as store:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        every = Schedule.interval(every_ms=1000, anchor=at)
        specs = [JobSpec(f"once-{i:03}", "p", Schedule.one_shot(at)) for i in range(500)]
        specs += [JobSpec(f"tick-{i:02}", "p", every) for i in range(20)]
        await store.add_jobs(specs)
        outs = [tmp_path / f"{n}.json" for n in "abc"]
        logs = [out.with_suffix(".log") for out in outs]
        procs = [
            await spawn("fire", dsn, str(out), "14", log=log)
            for out, log in zip(outs, logs, strict=True)
        ]
        for proc, log in zip(procs, logs, strict=True):
            await asyncio.wait_for(proc.wait(), 60)
            assert proc.returncode == 0, log.read_text()
        executed = [tuple(e) for out in outs for e in json.loads(out.read_text())]
        runs = await store.list_recent_runs(100_000)
        jobs = {j.id: j.name for j in await store.list_jobs()}
    per_pid = Counter(pid for _, _, pid in executed)
    assert len(per_pid) == 3, f"all three processes should have run jobs: {per_pid}"
    calls = Counter((job, fire) for job, fire, _ in executed)
    assert max(calls.values()) == 1, "an occurrence was executed twice"
    successes = Counter((r.job_id, r.scheduled_for) for r in runs if r.status is RunStatus.SUCCESS)
    assert max(successes.values()) == 1, "an occurrence was recorded twice"
    once = [j for j, name in jobs.items() if name.startswith("once-")]
    assert len(once) == 500 and all(successes[(j, at)] == 1 for j in once)
    ticks = {j for j, name in jobs.items() if name.startswith("tick-")}
    for job in ticks:  # every second from the first fire on, none missing, none twice
        fires = sorted(fire for j, fire in successes if j == job)
        assert len(fires) >= 8, fires
        assert fires[0] == at and all(
            (b - a) == timedelta(seconds=1) for a, b in itertools.pairwise(fires)
        ), f"a fire was lost or repeated: {fires}"
    for log in logs:  # lock order: no transaction lost a deadlock and had to be retried
        assert "lost a race" not in log.read_text(), log.read_text()
    print("executions per process:", dict(per_pid))


async def test_a_process_killed_mid_burst_loses_nothing_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    async with pg_schema() as dsn, CronStore.open(dsn) as store:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        specs = [
            JobSpec(f"once-{i:03}", "p", Schedule.one_shot(at), max_retries=1) for i in range(500)
        ]
        ids = await store.add_jobs(specs)
        args = ["--lease", "3", "--sleep", "1", "--concurrency", "100"]
        procs = [
            await spawn("run", dsn, str(tmp_path), *args, log=tmp_path / f"worker-{n}.log")
            for n in range(3)
        ]
        try:
            recovered_in = await _kill_one_mid_burst(store, tmp_path, procs)
            runs = await store.list_recent_runs(5000)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    successes = Counter(r.job_id for r in runs if r.status is RunStatus.SUCCESS)
    assert set(successes) == set(ids) and max(successes.values()) == 1  # none lost, none twice
    interrupted = [r for r in runs if r.status is RunStatus.INTERRUPTED]
    assert interrupted, "the killed scheduler had runs in flight"
    for run in interrupted:
        assert "no longer running" in (run.error or "") or "lease" in (run.error or "")
    assert recovered_in < 3 + 1 + 5, f"recovery took {recovered_in:.1f}s (lease 3 s, runs 1 s)"
    print(f"{len(interrupted)} runs recovered; all done {recovered_in:.1f}s after the kill")


async def _kill_one_mid_burst(
    store: CronStore, tmp_path: Path, procs: list[asyncio.subprocess.Process]
) -> float:
    """SIGKILL a scheduler that has runs in flight; seconds until every job succeeded."""
    await eventually(lambda: _count(tmp_path, "ready-*", 3), timeout=20, what="three schedulers")
    await eventually(lambda: _count(tmp_path, "*.started", 200), what="the burst")
    started_by = Counter(p.read_text().split()[2] for p in tmp_path.glob("*.started"))
    victim = next(p for p in procs if str(p.pid) in started_by)
    victim.send_signal(signal.SIGKILL)  # mid-burst, with runs in flight
    await victim.wait()
    killed_at = time.monotonic()

    async def all_succeeded() -> bool:
        runs = await store.list_recent_runs(5000, status=RunStatus.SUCCESS)
        return len({r.job_id for r in runs}) == 500

    await eventually(all_succeeded, timeout=30, what="every job to succeed")
    recovered_in = time.monotonic() - killed_at
    for proc in procs:
        if proc is not victim:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
    return recovered_in


async def _count(directory: Path, pattern: str, at_least: int) -> bool:
    return len(list(directory.glob(pattern))) >= at_least
