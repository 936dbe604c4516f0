"""Workloads for APScheduler 3.11: AsyncIOScheduler + SQLAlchemyJobStore on a SQLite file.

Best documented configuration for these workloads: the AsyncIOExecutor (coroutine jobs run on
the event loop, no thread pool), ``misfire_grace_time=None`` (always run a late job instead of
dropping it), ``coalesce=True`` and ``max_instances=1``.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .common import args, emit, lateness_ms

CONFIG = "AsyncIOScheduler + SQLAlchemyJobStore(sqlite), AsyncIOExecutor, misfire_grace_time=None"


async def noop(i: int) -> None:
    """The job: nothing. Lateness comes from the executed events (noop returns at once)."""


def scheduler(path: str) -> AsyncIOScheduler:
    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{path}")},
        executors={"default": AsyncIOExecutor()},
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        timezone="UTC",
    )


async def burst(n: int, directory: str) -> dict[str, Any]:
    sched = scheduler(os.path.join(directory, "aps3-burst.db"))
    finished = asyncio.Event()
    done: list[float] = []
    late: list[float] = []

    def listener(event: JobExecutionEvent) -> None:
        now = time.time()
        done.append(now)
        late.append(now - event.scheduled_run_time.timestamp())
        if len(done) == n:
            finished.set()

    sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    sched.start()
    began = time.time()
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5 + n / 200)
    for i in range(n):
        sched.add_job(noop, "date", run_date=at, args=[i], id=f"job-{i}")
    assert time.time() < at.timestamp(), f"adding took {time.time() - began:.1f}s: too slow"
    await asyncio.wait_for(finished.wait(), 900)
    sched.shutdown(wait=False)
    return {
        "makespan_s": max(done) - at.timestamp(),
        **lateness_ms(late),
        "runs": len(done),
        "config": CONFIG,
    }


async def steady(n: int, seconds: float, directory: str) -> dict[str, Any]:
    sched = scheduler(os.path.join(directory, "aps3-steady.db"))
    late: list[float] = []

    def listener(event: JobExecutionEvent) -> None:
        late.append(time.time() - event.scheduled_run_time.timestamp())

    sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    sched.start()
    anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3 + n / 500)
    for i in range(n):
        sched.add_job(noop, "interval", seconds=1, start_date=anchor, args=[i], id=f"job-{i}")
    await asyncio.sleep((anchor - datetime.now(UTC)).total_seconds() + seconds + 0.5)
    sched.shutdown(wait=False)
    return {
        **lateness_ms(late),
        "runs": len(late),
        "expected_runs": n * (int(seconds) + 1),
        "config": CONFIG,
    }


async def add(n: int, directory: str) -> dict[str, Any]:
    sched = scheduler(os.path.join(directory, "aps3-add.db"))
    sched.start(paused=True)
    started = time.perf_counter()
    for i in range(n):
        sched.add_job(noop, "interval", hours=1, args=[i], id=f"job-{i}")
    rate = n / (time.perf_counter() - started)
    sched.shutdown(wait=False)
    return {"one_by_one_per_s": rate, "batch_per_s": None, "config": "add_job (no batch API)"}


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
