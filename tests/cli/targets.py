"""Executors for the CLI tests (used as [executor] kind = "python" targets)."""

from __future__ import annotations

from starpod_cron import JobContext, JobResult, PermanentJobError


async def run(ctx: JobContext) -> JobResult:
    if "fail" in ctx.prompt:
        raise PermanentJobError(f"model refused {ctx.job_name}")
    return JobResult(session_id=f"s-{ctx.run_id}", summary=f"done: {ctx.prompt}")
