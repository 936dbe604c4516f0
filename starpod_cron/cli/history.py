"""``jobs history`` and ``jobs prune``: the run history, shown as the same run views every
front end uses, and its cleanup."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from ..models import CronJob, CronRun, RunStatus
from ..usage import run_cost_words
from ..views import delivery_words, models_text, run_json
from .context import Context, find_jobs
from .render import Output, at_time, ms, one_line, relative, tokens


async def jobs_history(c: Context, args: argparse.Namespace) -> Output:
    job_id = (await find_jobs(c, [args.job]))[0].id if args.job else None
    status = RunStatus(args.status) if args.status else None
    runs = await c.store.list_recent_runs(args.limit, job_id=job_id, status=status)
    jobs: dict[str, CronJob] = {}
    for run_job in {r.job_id for r in runs}:  # only the jobs shown, not every job in the store
        job = await c.store.get_job(run_job)
        if job is not None:
            jobs[run_job] = job
    now = c.now()

    def tz(run: CronRun) -> str:
        job = jobs.get(run.job_id)
        return c.tz(job.timezone if job else "UTC")

    entries = [run_json(r, jobs.get(r.job_id), tz(r)) for r in runs]
    out = Output({"entries": entries, "total": len(entries)}, "table", "Job Execution History")
    if not runs:
        which = f"{status.value} " if status else ""
        of = f" of {args.job}" if args.job else ""
        out.text = f"No {which}runs{of} recorded."
        return out
    column_tz = c.column_zone(j.timezone for j in jobs.values())
    out.columns = [
        "JOB",
        "STATUS",
        f"RUN AT ({column_tz})",
        "DURATION",
        "ATTEMPT",
        "TRIGGER",
        "MODEL",
        "TOKENS",
        "COST",
        "RESULT / ERROR",
    ]
    out.rows = [
        [
            r.job_name,
            status_words(r, now) + (f" ({words})" if (words := delivery_words(r)) else ""),
            at_time(r.started_at, column_tz, now),
            ms(r.duration_ms),
            str(r.attempt),
            r.trigger.value,
            models_text(r),
            tokens(r.prompt_tokens, r.completion_tokens),
            run_cost_words(r),
            one_line(r.error or r.result_summary or ""),
        ]
        for r in runs
    ]
    return out


async def jobs_prune(c: Context, args: argparse.Namespace) -> Output:
    cutoff = c.now() - timedelta(days=args.days)
    count = await c.store.prune_runs(cutoff, dry_run=args.dry_run)
    verb = "Would delete" if args.dry_run else "Deleted"
    message = f"{verb} {count} run(s) that finished more than {args.days} day(s) ago"
    data = {
        "runs_deleted": 0 if args.dry_run else count,
        "runs_matching": count,
        "days_threshold": args.days,
        "dry_run": args.dry_run,
        "message": message,
    }
    return Output(data, "text", "Run History Cleanup", text=message)


def status_words(run: CronRun, now: datetime) -> str:
    """``handed back`` (a run its stopping scheduler never started), ``due in 1s`` (claimed
    ahead of its fire time), else the status."""
    if run.handed_back:
        return "handed back"
    if run.claimed_ahead(now):
        return f"due {relative(run.started_at, now)}"
    return run.status.value
