"""Workloads against a model provider: the ``openai`` executor and an OpenAI-compatible stand-in
(its own process) that takes 200 ms per request and, with ``--limit``, admits at most that many
at once (429 with ``Retry-After: 1`` beyond), as hosted providers do.

- ``saturated``: N prompts due at one instant, the provider admitting 100 at a time. The
  physical limit is N x 0.2 s / 100. Reported: makespan, failed runs, failure notifications,
  429s answered.
- ``overhead``: the same N calls with no limit at concurrency 100, through the scheduler and
  through a plain ``httpx`` loop; reported: both times and their ratio.

python -m bench.drivers.provider saturated --n 5000 --dir /tmp/x
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from starpod_cron import CronScheduler, CronStore, JobSpec, RunStatus, Schedule
from starpod_cron.executors import OpenAIExecutor

from .common import args, emit

DELAY = 0.2
LIMIT = 100
CONCURRENCY = 256  # the scheduler's max_concurrent_runs: more than the provider admits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ the stand-in
def serve(port: int, limit: int | None) -> None:
    from aiohttp import web

    in_flight = 0
    stats = {"requests": 0, "refused": 0, "peak": 0}

    async def complete(request: web.Request) -> web.Response:
        nonlocal in_flight
        await request.read()
        stats["requests"] += 1
        if limit is not None and in_flight >= limit:
            stats["refused"] += 1
            return web.json_response(
                {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "1"}
            )
        in_flight += 1
        stats["peak"] = max(stats["peak"], in_flight)
        try:
            await asyncio.sleep(DELAY)
        finally:
            in_flight -= 1
        return web.json_response(
            {"choices": [{"message": {"role": "assistant", "content": "ok"}}], "usage": {}}
        )

    async def report(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/stats", report)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=1024)


class Provider:
    def __init__(self, limit: int | None) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "bench.drivers.provider", "serve", "--n", str(self.port)]
        env = {**os.environ, "PROVIDER_LIMIT": "" if limit is None else str(limit)}
        self.proc = subprocess.Popen(argv, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    await client.get(self.url + "/stats")
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        raise RuntimeError("the provider stand-in did not start")

    async def stats(self) -> dict[str, int]:
        async with httpx.AsyncClient() as client:
            data: dict[str, int] = (await client.get(self.url + "/stats")).json()
            return data

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# ------------------------------------------------------------------------------- workloads
async def burst(
    db: str, url: str, n: int, prompt: str, concurrency: int, wait_secs: float
) -> tuple[dict[str, Any], OpenAIExecutor]:
    """``n`` one-shots due at once, run by a scheduler through an ``openai`` executor at
    ``url`` until every run is recorded (or ``timeout``): the makespan and outcomes, and the
    executor (closed) for its counters (``wait_secs``: the longest wait). A run never recorded shows as "succeeded" short of n."""
    store = await CronStore.open(db)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    await store.add_jobs([JobSpec(f"job-{i}", prompt, Schedule.one_shot(at)) for i in range(n)])
    executor = OpenAIExecutor(store, base_url=url + "/v1", model="m")
    recorded = 0
    failures = 0
    finished = asyncio.Event()

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        nonlocal recorded, failures
        recorded += 1
        failures += not success
        if recorded == n:
            finished.set()

    scheduler = CronScheduler(store, executor, max_concurrent_runs=concurrency)
    scheduler.with_notifier(notifier)
    scheduler.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), wait_secs)
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
        "failure_notifications": failures,
    }, executor


async def through_scheduler(
    n: int, directory: str, provider: Provider, concurrency: int
) -> dict[str, Any]:
    db = os.path.join(directory, "provider.db")
    result, _ = await burst(db, provider.url, n, "p", concurrency, 300)
    return result | {"physical_limit_s": n * DELAY / LIMIT}


async def saturated(n: int, directory: str) -> dict[str, Any]:
    provider = Provider(LIMIT)
    try:
        await provider.ready()
        result = await through_scheduler(n, directory, provider, CONCURRENCY)
        stats = await provider.stats()
    finally:
        provider.stop()
    return {**result, "refused_429": stats["refused"], "provider_peak": stats["peak"]}


async def overhead(n: int, directory: str) -> dict[str, Any]:
    provider = Provider(None)
    try:
        await provider.ready()
        ours = await through_scheduler(n, directory, provider, LIMIT)
        limit = asyncio.Semaphore(LIMIT)
        body = {"model": "m", "messages": [{"role": "user", "content": "p"}]}
        async with httpx.AsyncClient(base_url=provider.url + "/v1/") as client:

            async def one() -> None:
                async with limit:
                    (await client.post("chat/completions", json=body)).raise_for_status()

            started = time.monotonic()
            await asyncio.gather(*(one() for _ in range(n)))
            plain = time.monotonic() - started
    finally:
        provider.stop()
    return {
        "ours_s": ours["makespan_s"],
        "plain_httpx_s": plain,
        "ratio": ours["makespan_s"] / plain,
        "physical_limit_s": n * DELAY / LIMIT,
    }


def main() -> None:
    a = args()
    if a.workload == "serve":
        raw = os.environ.get("PROVIDER_LIMIT", "")
        serve(a.n, int(raw) if raw else None)
        return
    runners = {"saturated": saturated, "overhead": overhead}
    emit(asyncio.run(runners[a.workload](a.n, a.dir)))


if __name__ == "__main__":
    main()
