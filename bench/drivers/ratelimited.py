"""The ``ratelimited`` workload: N prompts due at one instant, the ``openai`` executor against
an OpenAI-compatible stand-in (its own process: tests/openai_standin.py with
:class:`~tests.openai_standin.Limits`) that admits 50 requests/s and 200,000 tokens/min, as
token buckets announced in OpenAI's ``x-ratelimit-*`` headers on every answer, and answers 429
past them. Reported: the 429s (target 0), the makespan and the physical limit (what the two
budgets allow: past the first full bucket of each, the rest at its rate), and their ratio
(target within 15%).

python -m bench.drivers.ratelimited ratelimited --n 5000 --dir /tmp/x
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from starpod_cron import CronScheduler, CronStore, JobSpec, RunStatus, Schedule
from starpod_cron.executors import OpenAIExecutor

from .common import args, emit
from .provider import CONCURRENCY, free_port

REQUESTS_PER_SEC = 50
TOKENS_PER_MIN = 200_000
PROMPT = "Summarize what changed in the service since the last report, in one short paragraph."


def serve(port: int) -> None:
    from aiohttp import web

    from tests.openai_standin import FakeOpenAI, Limits

    fake = FakeOpenAI(Limits(REQUESTS_PER_SEC, TOKENS_PER_MIN))

    async def report(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": len(fake.requests),
                "refused": fake.refused,
                "admitted": len(fake.admitted_at),
                "tokens": fake.tokens_charged,
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    app.router.add_get("/stats", report)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=1024)


async def ratelimited(n: int, directory: str) -> dict[str, Any]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.drivers.ratelimited", "serve", "--n", str(port)]
    proc = subprocess.Popen(argv)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    await client.get(url + "/stats")
                    break
                await asyncio.sleep(0.05)
        result = await through_scheduler(n, directory, url)
        async with httpx.AsyncClient() as client:
            stats: dict[str, int] = (await client.get(url + "/stats")).json()
    finally:
        proc.terminate()
        proc.wait(10)
    requests_s = max(0.0, (n - REQUESTS_PER_SEC) / REQUESTS_PER_SEC)
    tokens_s = max(0.0, (stats["tokens"] - TOKENS_PER_MIN) / (TOKENS_PER_MIN / 60))
    physical = max(requests_s, tokens_s)
    return {
        **result,
        "refused_429": stats["refused"],
        "tokens_total": stats["tokens"],
        "tokens_per_call": stats["tokens"] / max(1, stats["admitted"]),
        "physical_limit_s": physical,
        "over_physical": result["makespan_s"] / physical - 1 if physical else None,
        "config": f"max_concurrent_runs {CONCURRENCY}, {REQUESTS_PER_SEC} req/s, "
        f"{TOKENS_PER_MIN:,} tokens/min announced in x-ratelimit-* headers",
    }


async def through_scheduler(n: int, directory: str, url: str) -> dict[str, Any]:
    store = await CronStore.open(os.path.join(directory, "ratelimited.db"))
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    specs = [JobSpec(f"job-{i}", PROMPT, Schedule.one_shot(at)) for i in range(n)]
    await store.add_jobs(specs)
    executor = OpenAIExecutor(store, base_url=url + "/v1", model="m")
    recorded = 0
    finished = asyncio.Event()

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        nonlocal recorded
        recorded += 1
        if recorded == n:
            finished.set()

    scheduler = CronScheduler(store, executor, max_concurrent_runs=CONCURRENCY)
    scheduler.with_notifier(notifier)
    scheduler.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), 600)
    runs = await store.list_recent_runs(n * 3)
    await scheduler.stop()
    await executor.aclose()
    await store.close()
    done = [r for r in runs if r.status is RunStatus.SUCCESS and r.completed_at is not None]
    last = max((r.completed_at for r in done if r.completed_at), default=at)
    return {
        "makespan_s": (last - at).total_seconds(),
        "succeeded": len(done),
        "failed_runs": sum(r.status is RunStatus.FAILED for r in runs),
        "held_runs": sum(r.status is RunStatus.HELD for r in runs),
        "pacer_waits": executor.pacer.waits,
    }


def main() -> None:
    a = args()
    if a.workload == "serve":
        serve(a.n)
        return
    emit(asyncio.run(ratelimited(a.n, a.dir)))


if __name__ == "__main__":
    main()
