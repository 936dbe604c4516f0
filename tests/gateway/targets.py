"""Executors the gateway tests configure ([executor] kind = "python")."""

from __future__ import annotations

import asyncio
import os

from starpod_cron import JobContext, JobResult


async def run(ctx: JobContext) -> JobResult:
    if ctx.prompt.startswith("long:"):
        return JobResult(session_id=ctx.run_id, summary="x" * 5000 + " end")
    if ctx.prompt.startswith("sleep:"):  # "sleep:30": a run in flight for 30 s
        await asyncio.sleep(float(ctx.prompt.removeprefix("sleep:").split()[0]))
    if ctx.prompt.startswith("fail"):
        raise RuntimeError("the model is down")
    if ctx.prompt.startswith("silent"):
        return JobResult(session_id=ctx.run_id, summary="[SILENT]  \n")
    return JobResult(
        session_id=f"s-{ctx.run_id}",
        summary=f"done: {ctx.prompt}",
        prompt_tokens=len(ctx.prompt),
        completion_tokens=7,
    )


async def run_here(ctx: JobContext) -> JobResult:
    """Like ``run``, with the executing process in the session id (which node ran it)."""
    return JobResult(session_id=f"pid-{os.getpid()}-{ctx.run_id}", summary=f"done: {ctx.prompt}")
