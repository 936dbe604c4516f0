"""Workloads for APScheduler 4.0 (pre-release): AsyncScheduler + SQLAlchemyDataStore on async
SQLite (aiosqlite). Run with APScheduler 4 on sys.path (bench/peers.py installs it apart from
APScheduler 3, since both are the package ``apscheduler``).

Best documented configuration here: ``max_concurrent_jobs`` raised to the burst size (default
100), ``misfire_grace_time=None`` (run late jobs), the default async job executor for
coroutine functions. Lateness and completion come from the scheduler's own JobReleased events
(``started_at - scheduled_start``; a job is released once its result is in the data store).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler import AsyncScheduler, ConflictPolicy, JobReleased
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import create_async_engine

from .common import args, emit, lateness_ms

CONFIG = "AsyncScheduler + SQLAlchemyDataStore(sqlite+aiosqlite), max_concurrent_jobs=N"


async def noop(i: int) -> None:
    """The job: nothing."""


def store(path: str) -> SQLAlchemyDataStore:
    return SQLAlchemyDataStore(create_async_engine(f"sqlite+aiosqlite:///{path}"))


async def burst(n: int, directory: str) -> dict[str, Any]:
    done: list[float] = []
    late: list[float] = []
    finished = asyncio.Event()

    def released(event: JobReleased) -> None:
        done.append(time.time())
        if event.started_at and event.scheduled_start:
            late.append((event.started_at - event.scheduled_start).total_seconds())
        if len(done) == n:
            finished.set()

    async with AsyncScheduler(
        store(os.path.join(directory, "aps4-burst.db")), max_concurrent_jobs=n
    ) as sched:
        sched.subscribe(released, JobReleased)
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5 + n / 100)
        for i in range(n):
            await sched.add_schedule(
                noop,
                DateTrigger(at),
                id=f"job-{i}",
                args=[i],
                misfire_grace_time=None,
                conflict_policy=ConflictPolicy.replace,
            )
        assert time.time() < at.timestamp(), "adding took too long"
        await sched.start_in_background()
        await asyncio.wait_for(finished.wait(), 900)
        await sched.stop()
    return {
        "makespan_s": max(done) - at.timestamp(),
        **lateness_ms(late),
        "runs": len(done),
        "config": CONFIG,
    }


async def steady(n: int, seconds: float, directory: str) -> dict[str, Any]:
    late: list[float] = []

    def released(event: JobReleased) -> None:
        if event.started_at and event.scheduled_start:
            late.append((event.started_at - event.scheduled_start).total_seconds())

    async with AsyncScheduler(
        store(os.path.join(directory, "aps4-steady.db")), max_concurrent_jobs=n
    ) as sched:
        sched.subscribe(released, JobReleased)
        anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3 + n / 100)
        for i in range(n):
            await sched.add_schedule(
                noop,
                IntervalTrigger(seconds=1, start_time=anchor),
                id=f"job-{i}",
                args=[i],
                misfire_grace_time=None,
            )
        await sched.start_in_background()
        await asyncio.sleep((anchor - datetime.now(UTC)).total_seconds() + seconds + 0.5)
        await sched.stop()
    return {
        **lateness_ms(late),
        "runs": len(late),
        "expected_runs": n * (int(seconds) + 1),
        "config": CONFIG,
    }


async def add(n: int, directory: str) -> dict[str, Any]:
    async with AsyncScheduler(store(os.path.join(directory, "aps4-add.db"))) as sched:
        started = time.perf_counter()
        for i in range(n):
            await sched.add_schedule(noop, IntervalTrigger(hours=1), id=f"job-{i}", args=[i])
        rate = n / (time.perf_counter() - started)
    return {"one_by_one_per_s": rate, "batch_per_s": None, "config": "add_schedule (no batch API)"}


def main() -> None:
    a = args()
    jobs = {
        "burst": lambda: burst(a.n, a.dir),
        "steady": lambda: steady(a.n, a.seconds, a.dir),
        "add": lambda: add(a.n, a.dir),
    }
    emit(asyncio.run(jobs[a.workload]()))


if __name__ == "__main__":
    main()
