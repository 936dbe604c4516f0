"""A scheduler in its own OS process, for the multi-process and crash tests.

python -m tests.worker fire DB OUT_JSON SECONDS [RUN_SECS]
    # run jobs for SECONDS (each run taking RUN_SECS, default 0.02), record executions
python -m tests.worker spend DB OUT_JSON SECONDS BUDGET_USD_PER_DAY
    # like fire, each run costing $0.002 (model "m"), under a global budget (0: none)
python -m tests.worker hang DB MARKER             # start runs that never finish (to be killed)
python -m tests.worker run DB DIR [--lease S] [--ahead S] [--sleep S] [--concurrency N]
    # run jobs; for each run write DIR/<run_id>.started, then sleep S seconds and write
    # DIR/<run_id>.finished, or DIR/<run_id>.cancelled when cancelled (with the time)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from starpod_cron import CronScheduler, CronStore, JobContext, JobResult, StoreSettings
from starpod_cron.budget import SpendSettings
from starpod_cron.models import ModelUsage
from starpod_cron.pricing import ModelPrice, PricingConfig


def _mark(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic: the test never reads a half-written file


async def fire(db: str, out: str, seconds: float, run_secs: float = 0.02) -> None:
    executed: list[tuple[str, int, int]] = []

    async def executor(ctx: JobContext) -> JobResult:
        executed.append((ctx.job_id, int(ctx.scheduled_for.timestamp() * 1000), os.getpid()))
        await asyncio.sleep(run_secs)
        return JobResult(session_id="", summary="ok")

    store = await CronStore.open(db)
    scheduler = CronScheduler(store, executor, tick_secs=1, max_concurrent_runs=50)
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop()
    await store.close()
    Path(out).write_text(json.dumps(executed))


async def spend(db: str, out: str, seconds: float, budget: float) -> None:
    executed: list[tuple[str, int, int]] = []

    async def executor(ctx: JobContext) -> JobResult:
        executed.append((ctx.job_id, int(ctx.scheduled_for.timestamp() * 1000), os.getpid()))
        await asyncio.sleep(0.02)
        return JobResult("", "ok", 1000, 500, "m", (ModelUsage("m", 1000, 500),))

    pricing = PricingConfig(models={"m": ModelPrice(input_per_mtok=1, output_per_mtok=2)})
    settings = StoreSettings(
        spend=SpendSettings(pricing=pricing), budget_usd_per_day=budget or None
    )
    store = await CronStore.open(db, settings=settings)
    scheduler = CronScheduler(store, executor, tick_secs=1, max_concurrent_runs=50)
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop()
    await store.close()
    Path(out).write_text(json.dumps(executed))


async def hang(db: str, marker: str) -> None:
    async def executor(ctx: JobContext) -> JobResult:
        await asyncio.sleep(0.1)  # well into the run: its start is on record (lease renewed)
        _mark(Path(marker), ctx.run_id)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    store = await CronStore.open(db)
    CronScheduler(store, executor, tick_secs=0.5, lease_secs=1).start()
    await asyncio.Event().wait()


async def run(
    db: str, directory: str, lease: float, ahead: float, sleep: float, concurrency: int = 4
) -> None:
    out = Path(directory)

    async def executor(ctx: JobContext) -> JobResult:
        started = f"{time.time()} {ctx.scheduled_for.timestamp()} {os.getpid()}"
        _mark(out / f"{ctx.run_id}.started", started)
        try:
            await asyncio.sleep(sleep)
        except asyncio.CancelledError:
            _mark(out / f"{ctx.run_id}.cancelled", str(time.time()))
            raise
        _mark(out / f"{ctx.run_id}.finished", str(time.time()))
        return JobResult(session_id="", summary=f"done by {os.getpid()}")

    store = await CronStore.open(db)
    scheduler = CronScheduler(
        store,
        executor,
        tick_secs=0.5,
        lease_secs=lease,
        claim_ahead_secs=ahead,
        max_concurrent_runs=concurrency,
    )
    scheduler.start()
    _mark(out / f"ready-{os.getpid()}", str(os.getpid()))
    await asyncio.Event().wait()


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "fire":
        asyncio.run(fire(rest[0], rest[1], float(rest[2]), *map(float, rest[3:4])))
    elif mode == "spend":
        asyncio.run(spend(rest[0], rest[1], float(rest[2]), float(rest[3])))
    elif mode == "hang":
        asyncio.run(hang(rest[0], rest[1]))
    elif mode == "run":
        parser = argparse.ArgumentParser()
        parser.add_argument("db")
        parser.add_argument("dir")
        parser.add_argument("--lease", type=float, default=30)
        parser.add_argument("--ahead", type=float, default=1)
        parser.add_argument("--sleep", type=float, default=0)
        parser.add_argument("--concurrency", type=int, default=4)
        a = parser.parse_args(rest)
        asyncio.run(run(a.db, a.dir, a.lease, a.ahead, a.sleep, a.concurrency))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
