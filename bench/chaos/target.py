"""The nodes' executor (``[executor] kind = "python"``): every call is appended to the node's
call log (the checker counts the calls made twice), then it takes the time its prompt says
(``sleep=SECONDS``) and answers with the run's id, so every message is unique."""

from __future__ import annotations

import asyncio
import json
import os
import time

from starpod_cron import JobContext, JobResult
from starpod_cron.timeutil import to_ms


async def run(ctx: JobContext) -> JobResult:
    call = {
        "job": ctx.job_id,
        "at": to_ms(ctx.scheduled_for),
        "attempt": ctx.attempt,
        "run": ctx.run_id,
        "node": os.environ.get("CHAOS_NODE"),
        "mono": time.monotonic(),
    }  # not faked: the checker places calls on the real clock
    with open(os.environ["CHAOS_CALLS"], "a", encoding="utf-8") as log:
        log.write(json.dumps(call) + "\n")
    secs = float(ctx.prompt.partition("sleep=")[2] or 0)
    if secs:
        await asyncio.sleep(secs)
    return JobResult(session_id=f"chaos-{ctx.run_id}", summary=f"{ctx.job_name} {ctx.run_id}")
