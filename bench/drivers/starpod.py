"""Workloads for starpod-cron (SQLite store, WAL, synchronous=full: the durable default)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    ManualClock,
    Schedule,
)

from .common import args, emit, lateness_ms, percentile, reset_peak, rss_mb

CONFIG = "CronScheduler(max_concurrent_runs=N), SQLite WAL, synchronous=full"


async def burst(n: int, directory: str, concurrency: int | None = None) -> dict[str, Any]:
    """``n`` one-shots due at one instant; ``concurrency`` is ``max_concurrent_runs`` (default:
    unlimited, i.e. ``n``)."""
    store = await CronStore.open(os.path.join(directory, "burst.db"))
    lead = 2 + n / 10_000
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
    await store.add_jobs([JobSpec(f"job-{i}", "p", Schedule.one_shot(at)) for i in range(n)])
    setup_rss = rss_mb()  # adding n jobs in one call peaks on its own: the burst's peak is
    gc.collect()  # counted from here
    peak_reset = reset_peak()
    calls: list[float] = []
    finished = asyncio.Event()
    recorded = 0

    async def executor(ctx: JobContext) -> JobResult:
        calls.append(time.time())
        return JobResult("", "")

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        nonlocal recorded  # called only once the run is durably recorded
        recorded += 1
        if recorded == n:
            finished.set()

    limit = concurrency or n
    scheduler = CronScheduler(store, executor, max_concurrent_runs=limit).with_notifier(notifier)
    cpu = time.process_time()
    scheduler.start()
    await asyncio.wait_for(finished.wait(), 600)
    cpu = time.process_time() - cpu  # the scheduler process: event loop and store thread
    burst_rss = rss_mb()  # before the runs are read back to be counted
    runs = await store.list_recent_runs(n + 100)
    last = max(r.completed_at for r in runs if r.completed_at is not None)
    await scheduler.stop()
    await store.close()
    t0 = at.timestamp()
    return {
        "makespan_s": (last - at).total_seconds(),
        **lateness_ms([c - t0 for c in calls]),
        "runs": len(calls),
        "recorded_twice": len(runs) - len({r.job_id for r in runs}),
        "not_recorded": n - len({r.job_id for r in runs}),
        "scheduler_rss_mb": burst_rss,
        "setup_rss_mb": setup_rss,
        "rss_counts_setup": not peak_reset,
        "cpu_per_job_us": cpu / n * 1e6,
        "config": CONFIG,
    }


async def steady(n: int, seconds: float, directory: str) -> dict[str, Any]:
    store = await CronStore.open(os.path.join(directory, "steady.db"))
    anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    every = Schedule.interval(every_ms=1000, anchor=anchor)
    await store.add_jobs([JobSpec(f"job-{i}", "p", every) for i in range(n)])
    late: list[float] = []

    async def executor(ctx: JobContext) -> JobResult:
        late.append(time.time() - ctx.scheduled_for.timestamp())
        return JobResult("", "")

    scheduler = CronScheduler(store, executor, max_concurrent_runs=n)
    scheduler.start()
    await asyncio.sleep((anchor - datetime.now(UTC)).total_seconds() + seconds + 0.5)
    await scheduler.stop()
    await store.close()
    expected = n * (int(seconds) + 1)
    return {**lateness_ms(late), "runs": len(late), "expected_runs": expected, "config": CONFIG}


async def add(n: int, directory: str) -> dict[str, Any]:
    store = await CronStore.open(os.path.join(directory, "add.db"))
    hourly = Schedule.interval(every_ms=3_600_000)
    started = time.perf_counter()
    for i in range(n):
        await store.add_job(f"single-{i}", "p", hourly)
    single = n / (time.perf_counter() - started)
    batch_n = max(n * 4, 20_000)
    specs = [JobSpec(f"batch-{i}", "p", hourly) for i in range(batch_n)]
    started = time.perf_counter()
    await store.add_jobs(specs)
    batch = batch_n / (time.perf_counter() - started)
    await store.close()
    return {"one_by_one_per_s": single, "batch_per_s": batch, "config": "add_job / add_jobs"}


async def scale(n: int, directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "scale.db")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ManualClock(start)
    store = await CronStore.open(path, clock=clock)
    yearly = Schedule.cron("0 0 1 1 *")
    chunk = 50_000
    for base in range(0, n, chunk):
        await store.add_jobs(
            [
                JobSpec(f"job-{i:07}", f"prompt {i}", yearly)
                for i in range(base, min(n, base + chunk))
            ]
        )
    rounds = 5
    for r in range(rounds):
        due = start + timedelta(hours=r + 1)
        await store.add_jobs(
            [JobSpec(f"due-{r}-{k}", "p", Schedule.one_shot(due)) for k in range(5)]
        )
    claim_ms = []
    for r in range(rounds):
        clock.set(start + timedelta(hours=r + 1))
        began = time.perf_counter()
        claims = await store.claim_due("bench", 100, 30)
        claim_ms.append((time.perf_counter() - began) * 1000)
        assert len(claims) == 5, claims
    await store.close()
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    rss = subprocess.run(
        [sys.executable, "-m", "bench.drivers.starpod", "scale_rss", "--dir", directory],
        capture_output=True,
        text=True,
        check=True,
    )
    cli = Path(sys.executable).with_name("starpod-cron")
    show = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run(
            [str(cli), "--db", path, "jobs", "show", f"job-{n // 2:07}"],
            capture_output=True,
            check=True,
        )
        show.append(time.perf_counter() - began)
    return {
        "jobs": n + rounds * 5,
        "claim_ms": percentile(claim_ms, 50),
        "scheduler_rss_mb": float(rss.stdout.strip()),
        "db_mb": size / 1024 / 1024,
        "jobs_show_s": percentile(show, 50),
        "config": CONFIG,
    }


async def scale_rss(directory: str) -> None:
    """A real scheduler process on the big store: its peak resident memory."""
    store = await CronStore.open(os.path.join(directory, "scale.db"))

    async def executor(ctx: JobContext) -> JobResult:
        return JobResult("", "")

    scheduler = CronScheduler(store, executor, tick_secs=1)
    scheduler.start()
    await asyncio.sleep(2)
    await scheduler.stop()
    await store.close()
    print(f"{rss_mb():.1f}")


async def crash_worker(directory: str) -> None:
    """A scheduler process that the crash workload kills with SIGKILL mid-burst."""
    store = await CronStore.open(os.path.join(directory, "crash.db"))

    async def executor(ctx: JobContext) -> JobResult:
        await asyncio.sleep(0.2)
        return JobResult("", "")

    CronScheduler(store, executor, max_concurrent_runs=1000, lease_secs=5).start()
    await asyncio.Event().wait()


async def crash(n: int, directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "crash.db")
    store = await CronStore.open(path)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    ids = await store.add_jobs([JobSpec(f"job-{i}", "p", Schedule.one_shot(at)) for i in range(n)])
    argv = [sys.executable, "-m", "bench.drivers.starpod", "crash_worker", "--dir", directory]
    first = subprocess.Popen(argv)
    await asyncio.sleep((at - datetime.now(UTC)).total_seconds() + 0.7)  # mid-burst
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_at_kill = len(await store.list_recent_runs(n * 2, status="success"))  # type: ignore[arg-type]
    restarted = time.perf_counter()
    second = subprocess.Popen(argv)
    try:
        while True:
            successes = await store.list_recent_runs(n * 2, status="success")  # type: ignore[arg-type]
            if len(successes) >= n or time.perf_counter() - restarted > 120:
                break
            await asyncio.sleep(0.2)
        recovered_in = time.perf_counter() - restarted
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait()
    per_job: dict[str, int] = dict.fromkeys(ids, 0)
    for run in successes:
        per_job[run.job_id] += 1
    interrupted = await store.list_recent_runs(n * 2, status="interrupted")  # type: ignore[arg-type]
    await store.close()
    return {
        "lost": sum(1 for c in per_job.values() if c == 0),
        "twice": sum(1 for c in per_job.values() if c > 1),
        "done_before_kill": done_at_kill,
        "in_flight_at_kill": len(interrupted),
        "recover_s": recovered_in,
        "config": "lease_secs=5, executor sleeps 200 ms, max_concurrent_runs=1000",
    }


def rss_now_mb() -> float:
    """Current resident memory of this process (VmRSS), not the peak."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


async def memory(n: int, directory: str) -> dict[str, Any]:
    """n runs of 1,000 per-second jobs (default two-hour timeouts) on a ManualClock moved a
    second at a time: does the scheduler's memory follow the runs in flight, or every run
    ever made? Resident memory after 10% of the runs and after all of them."""
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = await CronStore.open(os.path.join(directory, "memory.db"), clock=clock)
    jobs = 1000
    every = Schedule.interval(every_ms=1000)
    await store.add_jobs([JobSpec(f"job-{i}", "p", every) for i in range(jobs)])
    recorded = 0
    round_done = asyncio.Event()

    async def executor(ctx: JobContext) -> JobResult:
        return JobResult("", "ok")

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        nonlocal recorded
        recorded += 1
        if recorded % jobs == 0:
            round_done.set()

    scheduler = CronScheduler(store, executor, max_concurrent_runs=jobs).with_notifier(notifier)
    scheduler.start()
    rounds = n // jobs
    samples: dict[int, float] = {}
    began = time.perf_counter()
    for r in range(1, rounds + 1):
        round_done.clear()
        clock.advance(1)
        await asyncio.wait_for(round_done.wait(), 60)
        if r in (rounds // 10, rounds):
            gc.collect()
            samples[r * jobs] = rss_now_mb()
    elapsed = time.perf_counter() - began
    heap = scheduler._watchdog.heap_size
    await scheduler.stop()
    await store.close()
    first, last = samples[(rounds // 10) * jobs], samples[rounds * jobs]
    return {
        "runs": recorded,
        "rss_at_10pct_mb": first,
        "rss_at_end_mb": last,
        "rss_growth_mb": last - first,
        "watchdog_entries": heap,
        "runs_per_s": recorded / elapsed,
        "config": CONFIG + ", 1,000 jobs x 1 s on a ManualClock",
    }


async def catchup(n: int, directory: str) -> dict[str, Any]:
    """n per-second crons (half misfire_policy=skip), 30 minutes without a scheduler, then one
    starts: how long is the event loop stalled, and how long until every job caught up?"""
    from starpod_cron import MisfirePolicy
    from starpod_cron.loopwatch import LoopWatch

    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = await CronStore.open(os.path.join(directory, "catchup.db"), clock=clock)
    await store.add_jobs(
        [
            JobSpec(
                f"job-{i}",
                "p",
                Schedule.cron("* * * * * *"),
                misfire_policy=MisfirePolicy.SKIP if i % 2 else MisfirePolicy.RUN_ONCE,
            )
            for i in range(n)
        ]
    )
    clock.advance(30 * 60)
    done = 0
    all_done = asyncio.Event()

    async def executor(ctx: JobContext) -> JobResult:
        nonlocal done
        done += 1
        if done == n:
            all_done.set()
        return JobResult("", "")

    watch = LoopWatch.for_loop()
    await asyncio.sleep(0.2)
    watch.max_lag = 0.0
    scheduler = CronScheduler(store, executor, max_concurrent_runs=n)
    began = time.perf_counter()
    scheduler.start()
    await asyncio.wait_for(all_done.wait(), 300)
    caught_up = time.perf_counter() - began
    await asyncio.sleep(0.2)
    stall = watch.max_lag
    watch.release()
    await scheduler.stop()
    await store.close()
    return {
        "max_stall_ms": stall * 1000,
        "catch_up_s": caught_up,
        "jobs": n,
        "config": CONFIG + ", 30 minutes down, half misfire_policy=skip",
    }


def main() -> None:
    a = args()
    if a.workload == "scale_rss":
        asyncio.run(scale_rss(a.dir))
        return
    if a.workload == "crash_worker":
        asyncio.run(crash_worker(a.dir))
        return
    jobs = {
        "burst": lambda: burst(a.n, a.dir),
        "burst256": lambda: burst(a.n, a.dir, concurrency=256),
        "steady": lambda: steady(a.n, a.seconds, a.dir),
        "add": lambda: add(a.n, a.dir),
        "scale": lambda: scale(a.n, a.dir),
        "crash": lambda: crash(a.n, a.dir),
        "memory": lambda: memory(a.n, a.dir),
        "catchup": lambda: catchup(a.n, a.dir),
    }
    emit(asyncio.run(jobs[a.workload]()))


if __name__ == "__main__":
    main()
