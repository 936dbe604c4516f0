"""Jobs declared in code, for tests/test_declared.py (imported through [cron] job_modules)."""

from __future__ import annotations

from starpod_cron import JobContext
from starpod_cron.declared import jobs


@jobs.every("1s", description="proves the scheduler runs code jobs")
async def heartbeat(ctx: JobContext) -> str:
    return f"beat {ctx.attempt}"


@jobs.cron("0 9 * * 1-5", tz="Europe/Rome", name="inbox", prompt="Summarize my inbox")
async def inbox(ctx: JobContext) -> str:  # a prompt job: the executor runs it, not this
    raise AssertionError("a prompt job's function is never called")
