"""``jobs run``: run jobs now through the configured executor and record the runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from ..errors import InvalidInput, JobAlreadyRunning
from ..executors import build_executor
from ..models import CronJob, RunStatus
from ..notify import summarize
from ..scheduler import CronScheduler
from .commands import Context, find_jobs
from .render import Output


async def jobs_run(c: Context, args: argparse.Namespace) -> Output:
    if args.all and args.names:
        raise InvalidInput("give job names or --all, not both")
    if not args.all and not args.names:
        raise InvalidInput("name the jobs to run, or use --all")
    jobs = (
        [j for j in await c.store.list_jobs() if j.enabled]
        if args.all
        else await find_jobs(c, args.names)
    )
    executor = build_executor(c.config.executor, c.store)
    if "executor" not in c.config.configured:
        print(
            "note: no [executor] configured in agent.toml: using the built-in echo executor "
            "(a demo that returns each prompt)",
            file=sys.stderr,
        )
    options = c.config.scheduler_options()
    scheduler = CronScheduler(c.store, executor, **options)
    limit = asyncio.Semaphore(1 if args.sequential else options["max_concurrent_runs"])
    results: list[dict[str, Any]] = []
    progress = _Progress(len(jobs))

    async def run_one(job: CronJob) -> dict[str, Any]:
        async with limit:
            started = time.monotonic()
            try:
                run = await scheduler.run_now(job.id)
            except JobAlreadyRunning as exc:
                entry = {
                    "job_name": job.name,
                    "status": "not_run",
                    "duration_ms": 0,
                    "run_id": None,
                    "result": {"success": False, "message": str(exc)},
                }
            else:
                text = run.result_summary if run.status is RunStatus.SUCCESS else run.error
                entry = {
                    "job_name": job.name,
                    "status": run.status.value,
                    "duration_ms": run.duration_ms,
                    "run_id": run.id,
                    "result": {
                        "success": run.status is RunStatus.SUCCESS,
                        "message": summarize(text or ""),
                        "session_id": run.session_id,
                    },
                }
            progress.done(job.name, str(entry["status"]), time.monotonic() - started)
            return entry

    try:
        results = list(await asyncio.gather(*(run_one(j) for j in jobs)))
    finally:
        await scheduler.stop()
        await executor.aclose()
    succeeded = sum(1 for r in results if r["status"] == "success")
    data = {
        "jobs_run": results,
        "total": len(results),
        "succeeded": succeeded,
        "failed": len(results) - succeeded,
        "executor": executor.description,
    }
    out = Output(data, "table", "Job Execution Results")
    out.columns = ["JOB", "STATUS", "DURATION", "RESULT"]
    out.rows = [
        [
            r["job_name"],
            r["status"],
            f"{r['duration_ms'] or 0} ms",
            " ".join(str(r["result"]["message"]).split())[:80],
        ]
        for r in results
    ]
    out.text = f"{succeeded} of {len(results)} succeeded ({executor.description})"
    out.exit_code = 0 if succeeded == len(results) else 1
    return out


class _Progress:
    """One line per finished job on stderr when several run (stdout stays the result)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0

    def done(self, name: str, status: str, seconds: float) -> None:
        self.finished += 1
        if self.total > 1:
            print(
                f"[{self.finished}/{self.total}] {name}: {status} ({seconds:.2f}s)",
                file=sys.stderr,
                flush=True,
            )
