"""Objects and tasks per run: what the scheduler keeps and starts for each run of a burst.

python -m bench.drivers.alloc alloc --n 10000      # unlimited: every run in flight at once
python -m bench.drivers.alloc alloc256 --n 10000   # max_concurrent_runs = 256

``n`` one-shots due at one instant on a SQLite store, the executor answering at once. Counted:

- ``tasks_per_run``: asyncio tasks created from the first claim to the last recorded run
  (a task factory on the loop counts them), per run;
- ``blocks_per_run``: memory blocks (tracemalloc) still allocated while every run of the
  burst is in flight, per run: the executor holds each call until all ``n`` have started, and
  the snapshot is compared with one taken before the scheduler started (``alloc`` only);
- ``peak_kb_per_run``: tracemalloc's peak over the burst (traced from the scheduler's start),
  per run (``alloc`` only).

tracemalloc runs only in ``alloc`` (it slows everything several times); ``alloc256`` counts
tasks only, at full speed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
from collections.abc import Coroutine, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

from starpod_cron import CronScheduler, CronStore, JobContext, JobResult, JobSpec, Schedule

from .common import args, emit

CONFIG = "CronScheduler, SQLite WAL, synchronous=full"


class _Counting:
    """A task factory counting the tasks the loop creates."""

    def __init__(self) -> None:
        self.created = 0

    def __call__(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        self.created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)


async def measure(n: int, directory: str, concurrency: int | None) -> dict[str, Any]:
    store = await CronStore.open(os.path.join(directory, "alloc.db"))
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2 + n / 10_000)
    await store.add_jobs([JobSpec(f"job-{i}", "p", Schedule.one_shot(at)) for i in range(n)])
    limit = concurrency or n
    started = 0
    all_started, finished = asyncio.Event(), asyncio.Event()
    recorded = 0
    held_blocks: int | None = None

    async def executor(ctx: JobContext) -> JobResult:
        nonlocal started, held_blocks
        started += 1
        if concurrency is None:
            if started == n:
                gc.collect()
                held_blocks = _blocks() - before
                all_started.set()
            await all_started.wait()
        return JobResult("", "")

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        nonlocal recorded
        recorded += 1
        if recorded == n:
            finished.set()

    counting = _Counting()
    loop = asyncio.get_running_loop()
    scheduler = CronScheduler(store, executor, max_concurrent_runs=limit).with_notifier(notifier)
    gc.collect()
    if concurrency is None:
        tracemalloc.start(1)  # from here: only what the burst allocates is traced
    before = _blocks()
    loop.set_task_factory(counting)
    scheduler.start()
    await asyncio.wait_for(finished.wait(), 600)
    tasks = counting.created
    loop.set_task_factory(None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    await scheduler.stop()
    await store.close()
    return {
        "tasks_per_run": tasks / n,
        **(
            {"blocks_per_run": held_blocks / n, "peak_kb_per_run": peak / 1024 / n}
            if held_blocks is not None
            else {}
        ),
        "runs": recorded,
        "config": CONFIG
        + (f", max_concurrent_runs={concurrency}" if concurrency else ", tracemalloc (1 frame)"),
    }


def _blocks() -> int:
    if not tracemalloc.is_tracing():
        return 0
    return sum(stat.count for stat in tracemalloc.take_snapshot().statistics("filename"))


def main() -> None:
    a = args()
    concurrency = {"alloc": None, "alloc256": 256}[a.workload]
    emit(asyncio.run(measure(a.n, a.dir, concurrency)))


if __name__ == "__main__":
    main()
