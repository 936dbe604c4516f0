"""A scheduler in its own OS process, for the multi-process and crash tests.

python -m tests.worker fire DB OUT_JSON SECONDS   # run jobs for SECONDS, record executions
python -m tests.worker hang DB MARKER             # start runs that never finish (to be killed)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from starpod_cron import CronScheduler, CronStore, JobContext, JobResult


async def fire(db: str, out: str, seconds: float) -> None:
    executed: list[tuple[str, int, int]] = []

    async def executor(ctx: JobContext) -> JobResult:
        executed.append((ctx.job_id, int(ctx.scheduled_for.timestamp() * 1000), os.getpid()))
        await asyncio.sleep(0.02)
        return JobResult(session_id="", summary="ok")

    store = await CronStore.open(db)
    scheduler = CronScheduler(store, executor, tick_secs=1, max_concurrent_runs=50)
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop()
    await store.close()
    Path(out).write_text(json.dumps(executed))


async def hang(db: str, marker: str) -> None:
    async def executor(ctx: JobContext) -> JobResult:
        await asyncio.sleep(0.1)  # well into the run: its start is on record (lease renewed)
        Path(marker + ".tmp").write_text(ctx.run_id)
        os.replace(marker + ".tmp", marker)  # atomic: the test never reads a half-written id
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    store = await CronStore.open(db)
    CronScheduler(store, executor, tick_secs=0.5, lease_secs=1).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "fire":
        asyncio.run(fire(args[0], args[1], float(args[2])))
    elif mode == "hang":
        asyncio.run(hang(args[0], args[1]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
