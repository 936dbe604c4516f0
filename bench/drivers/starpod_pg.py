"""Workloads for starpod-cron on PostgreSQL, with one or several scheduler processes sharing the
database (STARPOD_PG_DSN names the server; each run uses a fresh schema, dropped afterwards).

python -m bench.drivers.starpod_pg burst --n 10000 --procs 3
python -m bench.drivers.starpod_pg steady --n 1000 --seconds 20 --procs 3
python -m bench.drivers.starpod_pg crash --n 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from starpod_cron import CronScheduler, CronStore, JobContext, JobResult, JobSpec, Schedule

from .common import emit, lateness_ms, scratch_dir

CONFIG = "CronScheduler(max_concurrent_runs=N) x {procs} process(es), PostgreSQL 15, asyncpg"
SERVER = os.environ.get("STARPOD_PG_DSN", "postgresql://root@127.0.0.1:5432/test")


def _in_schema(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = [*parse_qsl(parts.query), ("search_path", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _schema() -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    return name, _in_schema(SERVER, name)


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


# ------------------------------------------------------------------ a scheduler process
async def worker(dsn: str, out: str, sleep: float, lease: float, concurrency: int) -> None:
    """Run until SIGTERM; then write ``[[call_time, scheduled_for], ...]`` to ``out``."""
    calls: list[tuple[float, float]] = []

    async def executor(ctx: JobContext) -> JobResult:
        calls.append((time.time(), ctx.scheduled_for.timestamp()))
        if sleep:
            await asyncio.sleep(sleep)
        return JobResult("", "")

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    store = await CronStore.open(dsn)
    scheduler = CronScheduler(
        store, executor, max_concurrent_runs=concurrency, lease_secs=lease, tick_secs=5
    )
    scheduler.start()
    Path(out + ".ready").write_text("ready")
    await stop.wait()
    await scheduler.stop()
    await store.close()
    Path(out).write_text(json.dumps(calls))


def _spawn(dsn: str, out: Path, *, sleep: float = 0, lease: float = 30, n: int = 1000) -> Any:
    argv = [
        sys.executable,
        "-m",
        "bench.drivers.starpod_pg",
        "worker",
        "--dsn",
        dsn,
        "--out",
        str(out),
        "--sleep",
        str(sleep),
        "--lease",
        str(lease),
        "--n",
        str(n),
    ]
    return subprocess.Popen(argv, stderr=subprocess.DEVNULL)


async def _cluster(dsn: str, procs_n: int, directory: str, n: int) -> tuple[list[Any], list[Path]]:
    """``procs_n`` scheduler processes on ``dsn``, started and ready."""
    outs = [Path(directory) / f"w{i}.json" for i in range(procs_n)]
    procs = [_spawn(dsn, out, n=n) for out in outs]
    await _ready(outs)
    return procs, outs


async def _ready(outs: list[Path]) -> None:
    while not all(Path(f"{o}.ready").exists() for o in outs):
        await asyncio.sleep(0.05)


async def _successes(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM runs WHERE status = 'success'"))
    finally:
        await conn.close()


def _collect(procs: list[Any], outs: list[Path]) -> list[tuple[float, float, int]]:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    calls: list[tuple[float, float, int]] = []
    for index, (proc, out) in enumerate(zip(procs, outs, strict=True)):
        proc.wait(timeout=120)
        calls += [(c, s, index) for c, s in json.loads(out.read_text())]
    return calls


# --------------------------------------------------------------------------- workloads
async def burst(n: int, procs_n: int, directory: str) -> dict[str, Any]:
    name, dsn = await _schema()
    try:
        async with CronStore.open(dsn) as store:
            procs, outs = await _cluster(dsn, procs_n, directory, n)
            at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2 + n / 10_000)
            chunk = 5000
            for base in range(0, n, chunk):
                specs = [
                    JobSpec(f"job-{i}", "p", Schedule.one_shot(at))
                    for i in range(base, min(n, base + chunk))
                ]
                await store.add_jobs(specs)
            while await _successes(dsn) < n:
                await asyncio.sleep(0.1)
            runs = await store.list_recent_runs(n)
            last = max(r.completed_at for r in runs if r.completed_at is not None)
        calls = _collect(procs, outs)
    finally:
        await _drop(name)
    per = Counter(i for _, _, i in calls)
    shares = [per[i] for i in range(procs_n)]  # a process that ran nothing counts as 0
    return {
        "makespan_s": (last - at).total_seconds(),
        **lateness_ms([c - s for c, s, _ in calls]),
        "runs": len(calls),
        "share_min": min(shares) / len(calls),
        "share_max": max(shares) / len(calls),
        "config": CONFIG.format(procs=procs_n),
    }


async def steady(n: int, seconds: float, procs_n: int, directory: str) -> dict[str, Any]:
    name, dsn = await _schema()
    try:
        async with CronStore.open(dsn) as store:
            procs, outs = await _cluster(dsn, procs_n, directory, n)
            anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
            every = Schedule.interval(every_ms=1000, anchor=anchor)
            await store.add_jobs([JobSpec(f"job-{i}", "p", every) for i in range(n)])
            await asyncio.sleep((anchor - datetime.now(UTC)).total_seconds() + seconds + 0.5)
        calls = _collect(procs, outs)
    finally:
        await _drop(name)
    window = anchor.timestamp() + seconds
    in_window = [(c, s, i) for c, s, i in calls if s <= window]
    per = Counter(i for _, _, i in in_window)
    shares = [per[i] for i in range(procs_n)]
    return {
        **lateness_ms([c - s for c, s, _ in in_window]),
        "runs": len(in_window),
        "expected_runs": n * (int(seconds) + 1),
        "share_min": min(shares) / max(1, len(in_window)),
        "config": CONFIG.format(procs=procs_n),
    }


async def crash(n: int, directory: str) -> dict[str, Any]:
    """One scheduler with 1,000 runs in flight is SIGKILLed mid-burst; a new one recovers."""
    name, dsn = await _schema()
    try:
        async with CronStore.open(dsn) as store:
            first = Path(directory) / "first.json"
            proc = _spawn(dsn, first, sleep=0.2, lease=5, n=1000)
            await _ready([first])
            at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            ids = await store.add_jobs(
                [JobSpec(f"job-{i}", "p", Schedule.one_shot(at)) for i in range(n)]
            )
            await asyncio.sleep((at - datetime.now(UTC)).total_seconds() + 0.7)  # mid-burst
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            restarted = time.perf_counter()
            second = Path(directory) / "second.json"
            again = _spawn(dsn, second, sleep=0.2, lease=5, n=1000)
            while await _successes(dsn) < n and time.perf_counter() - restarted < 120:
                await asyncio.sleep(0.2)
            recovered_in = time.perf_counter() - restarted
            _collect([again], [second])
            runs = await store.list_recent_runs(n * 2)
    finally:
        await _drop(name)
    per_job = Counter(r.job_id for r in runs if r.status.value == "success")
    return {
        "lost": sum(1 for job in ids if per_job[job] == 0),
        "twice": sum(1 for c in per_job.values() if c > 1),
        "in_flight_at_kill": sum(1 for r in runs if r.status.value == "interrupted"),
        "recover_s": recovered_in,
        "config": "PostgreSQL, lease_secs=5, executor sleeps 200 ms, max_concurrent_runs=1000",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where its files go (default: a fresh one)")
    parser.add_argument("--dsn", default="")
    parser.add_argument("--out", default="")
    parser.add_argument("--sleep", type=float, default=0)
    parser.add_argument("--lease", type=float, default=30)
    a = parser.parse_args()
    a.dir = a.dir or scratch_dir()
    if a.workload == "worker":
        asyncio.run(worker(a.dsn, a.out, a.sleep, a.lease, a.n))
        return
    jobs = {
        "burst": lambda: burst(a.n, a.procs, a.dir),
        "steady": lambda: steady(a.n, a.seconds, a.procs, a.dir),
        "crash": lambda: crash(a.n, a.dir),
    }
    emit(asyncio.run(jobs[a.workload]()))


if __name__ == "__main__":
    main()
