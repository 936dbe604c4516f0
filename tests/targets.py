"""Executors the fault tests configure ([executor] kind = "python", target = "tests.targets:run"),
steered by the prompt:

    sleep:N       sleep N seconds (cancellable)
    block:N       time.sleep(N): blocks the event loop
    exit:N        sys.exit(N)
    interrupt     raise KeyboardInterrupt
    stubborn      ignore cancellation forever
    big:N         return N characters
    anything else return "done: <prompt>"
"""

from __future__ import annotations

import asyncio
import sys
import time

from starpod_cron import JobContext, JobResult


async def run(ctx: JobContext) -> JobResult:
    verb, _, arg = ctx.prompt.partition(":")
    if verb == "sleep":
        await asyncio.sleep(float(arg))
    elif verb == "block":
        time.sleep(float(arg))  # noqa: ASYNC251 - blocking on purpose: the fault under test
    elif verb == "exit":
        sys.exit(int(arg))
    elif verb == "interrupt":
        raise KeyboardInterrupt
    elif verb == "stubborn":
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue
    elif verb == "big":
        return JobResult(session_id=ctx.run_id, summary="x" * int(arg))
    return JobResult(session_id=ctx.run_id, summary=f"done: {ctx.prompt}")


def run_sync(ctx: JobContext) -> str:
    """A plain function: it may block, it runs in a thread of its own."""
    verb, _, arg = ctx.prompt.partition(":")
    if verb == "sleep":
        time.sleep(float(arg))
    return f"done: {ctx.prompt}"
