"""The least an asyncio scheduler does per run, with no store: a task per run under a timeout,
the executor call and its result, the notifier call under a timeout (docs/benchmarks.md: what
is left of the floor's budget once the writes are paid for).

python -m bench.drivers.bare bare --n 10000
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from .common import args, emit


@dataclass(frozen=True, slots=True)
class Context:
    run_id: str
    job_name: str
    prompt: str
    scheduled_for: float


@dataclass(frozen=True, slots=True)
class Result:
    text: str
    session_id: str


async def executor(ctx: Context) -> Result:
    return Result("", "")


async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
    return None


async def bare(n: int) -> dict[str, Any]:
    done = 0
    finished = asyncio.Event()

    async def one(i: int) -> None:
        nonlocal done
        async with asyncio.timeout(60):
            result = await executor(Context(f"{i:032x}", f"job-{i}", "p", time.time()))
        async with asyncio.timeout(30):
            await notifier(f"job-{i}", result.session_id, result.text, True)
        done += 1
        if done == n:
            finished.set()

    tasks = set()
    began, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        task = asyncio.create_task(one(i), name=f"run-{i}")
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await finished.wait()
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"makespan_s": wall, "cpu_per_run_us": cpu / n * 1e6, "runs": done}


def main() -> None:
    a = args()
    emit(asyncio.run(bare(a.n)))


if __name__ == "__main__":
    main()
