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
from typing import Any

import httpx

from .common import args, emit
from .provider import CONCURRENCY, burst, free_port

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
    db = os.path.join(directory, "ratelimited.db")
    result, executor = await burst(db, url, n, PROMPT, CONCURRENCY, 600)
    return result | {"pacer_waits": executor.pacer.waits}


def main() -> None:
    a = args()
    if a.workload == "serve":
        serve(a.n)
        return
    emit(asyncio.run(ratelimited(a.n, a.dir)))


if __name__ == "__main__":
    main()
