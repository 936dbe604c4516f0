"""The ``jobs`` commands. Each takes parsed options, makes library calls and returns an Output;
nothing here schedules anything itself."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..config import AgentConfig
from ..errors import InvalidInput, JobNotFound
from ..models import UNSET, CronJob, CronRun, JobUpdate, MisfirePolicy, RunStatus, SessionMode
from ..schedules import Schedule
from ..store.base import CronStore
from ..timeutil import check_zone, from_ms
from . import parse
from .render import (
    Output,
    iso,
    local,
    next_fires,
    relative,
    schedule_human,
    schedule_text,
    when,
)

PREVIEW_CHARS = 500


@dataclass
class Context:
    store: CronStore
    config: AgentConfig
    display_tz: str | None

    def tz(self, job_tz: str) -> str:
        return self.display_tz or job_tz

    def now(self) -> datetime:
        return from_ms(self.store.clock.now_ms())


async def find_jobs(c: Context, names: list[str]) -> list[CronJob]:
    """Every named job, or JobNotFound naming all missing ones (before anything is changed)."""
    found = [(name, await c.store.get_job_by_name(name)) for name in names]
    missing = [name for name, job in found if job is None]
    if missing:
        raise JobNotFound("no job named " + ", ".join(repr(m) for m in missing))
    return [job for _, job in found if job is not None]


def job_data(job: CronJob, c: Context) -> dict[str, Any]:
    tz = c.tz(job.timezone)
    return {
        "name": job.name,
        "id": job.id,
        "schedule": schedule_text(job.schedule),
        "schedule_kind": job.schedule.kind,
        "schedule_human": schedule_human(job.schedule, job.timezone),
        "timezone": job.timezone,
        "enabled": job.enabled,
        "next_run": iso(job.next_run_at, tz),
        "last_run": iso(job.last_run_at, tz),
        "last_status": job.last_status.value if job.last_status else None,
        "user_id": job.user_id,
    }


# ------------------------------------------------------------------------------- reading
async def jobs_list(c: Context, args: argparse.Namespace) -> Output:
    jobs = await (c.store.list_jobs_for_user(args.user) if args.user else c.store.list_jobs())
    if not args.all:
        jobs = [j for j in jobs if j.enabled]
    now = c.now()
    out = Output(
        {"jobs": [job_data(j, c) for j in jobs], "total": len(jobs)}, "table", "Scheduled Jobs"
    )
    if not jobs:
        out.text = "No jobs. Add one: starpod-cron jobs add NAME PROMPT --every 30m"
        return out
    out.columns = ["NAME", "SCHEDULE", "IN WORDS", "ENABLED", "NEXT RUN", "LAST STATUS"]
    out.rows = [
        [
            j.name,
            schedule_text(j.schedule),
            schedule_human(j.schedule, j.timezone),
            "yes" if j.enabled else "no",
            when(j.next_run_at, c.tz(j.timezone), now),
            j.last_status.value if j.last_status else "-",
        ]
        for j in jobs
    ]
    return out


async def jobs_show(c: Context, args: argparse.Namespace) -> Output:
    (job,) = await find_jobs(c, [args.name])
    tz = c.tz(job.timezone)
    now = c.now()
    last = await c.store.list_runs(job.id, 1)
    upcoming = next_fires(job, 5, now)
    data = job_data(job, c) | {
        "prompt": job.prompt,
        "delete_after_run": job.delete_after_run,
        "session_mode": job.session_mode.value,
        "misfire_policy": job.misfire_policy.value,
        "max_retries": job.max_retries,
        "retry_count": job.retry_count,
        "retry_at": iso(job.retry_at, tz),
        "timeout_secs": job.timeout_secs,
        "created_at": iso(job.created_at, tz),
        "updated_at": iso(job.updated_at, tz),
        "next_runs": [iso(t, tz) for t in upcoming],
        "last_error": job.last_error,
        "run_count": job.run_count,
        "running": job.running_run_id is not None,
        "last_run_result": _preview(last[0].result_summary) if last else None,
    }
    out = Output(data, "presentation_card", f"Job: {job.name}")
    out.fields = [
        ("name", job.name),
        ("id", job.id),
        ("prompt", job.prompt),
        ("schedule", f"{schedule_text(job.schedule)}  ({data['schedule_human']})"),
        ("timezone", job.timezone),
        ("enabled", "yes" if job.enabled else "no"),
        ("next runs", "\n".join(when(t, tz, now) for t in upcoming) or "-"),
        ("last run", when(job.last_run_at, tz, now)),
        ("last status", data["last_status"] or "-"),
        ("last error", job.last_error or "-"),
        ("run count", str(job.run_count)),
        (
            "retries",
            f"{job.retry_count} of {job.max_retries} used"
            + (f", next at {local(job.retry_at, tz)}" if job.retry_at else ""),
        ),
        ("timeout", f"{job.timeout_secs:g}s"),
        ("session", job.session_mode.value),
        ("misfire", job.misfire_policy.value),
        ("delete after run", "yes" if job.delete_after_run else "no"),
        ("user", job.user_id or "-"),
        ("created", local(job.created_at, tz)),
        ("running", "yes" if job.running_run_id else "no"),
    ]
    return out


def _preview(text: str | None) -> str | None:
    if text is None or len(text) <= PREVIEW_CHARS:
        return text
    return text[: PREVIEW_CHARS - 1] + "…"


async def jobs_history(c: Context, args: argparse.Namespace) -> Output:
    job_id = (await find_jobs(c, [args.job]))[0].id if args.job else None
    status = RunStatus(args.status) if args.status else None
    runs = await c.store.list_recent_runs(args.limit, job_id=job_id, status=status)
    zones: dict[str, str] = {}
    for job_id in {r.job_id for r in runs}:  # only the jobs shown, not every job in the store
        job = await c.store.get_job(job_id)
        if job is not None:
            zones[job_id] = job.timezone
    now = c.now()

    def tz(run: CronRun) -> str:
        return c.tz(zones.get(run.job_id, "UTC"))

    entries = [
        {
            "job_name": r.job_name,
            "run_id": r.id,
            "status": r.status.value,
            "run_at": iso(r.started_at, tz(r)),
            "scheduled_for": iso(r.scheduled_for, tz(r)),
            "completed_at": iso(r.completed_at, tz(r)),
            "duration_ms": r.duration_ms,
            "attempt": r.attempt,
            "trigger": r.trigger.value,
            "error": r.error,
            "result": _preview(r.result_summary),
        }
        for r in runs
    ]
    out = Output({"entries": entries, "total": len(entries)}, "table", "Job Execution History")
    if not runs:
        out.text = "No runs recorded."
        return out
    out.columns = ["JOB", "STATUS", "RUN AT", "DURATION", "ATTEMPT", "TRIGGER", "RESULT / ERROR"]
    out.rows = [
        [
            r.job_name,
            r.status.value,
            f"{local(r.started_at, tz(r))} ({relative(r.started_at, now)})",
            "-" if r.duration_ms is None else f"{r.duration_ms} ms",
            str(r.attempt),
            r.trigger.value,
            _one_line(r.error or r.result_summary or ""),
        ]
        for r in runs
    ]
    return out


def _one_line(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def jobs_next(
    config: AgentConfig, display_tz: str | None, args: argparse.Namespace, now: datetime
) -> Output:
    tz = check_zone(args.tz or display_tz or config.cron.timezone)
    schedule = Schedule.cron(args.expr)
    fires: list[datetime] = []
    cursor = now
    while len(fires) < args.count:
        nxt = schedule.next_run(cursor, tz)
        if nxt is None:
            break
        fires.append(nxt)
        cursor = nxt
    human = schedule_human(schedule, tz)
    data = {
        "expression": args.expr,
        "schedule_human": human,
        "timezone": tz,
        "next_runs": [iso(t, tz) for t in fires],
    }
    out = Output(data, "table", f"Next runs of {args.expr}")
    out.header = f"{args.expr}  ({human}, {tz})"
    out.columns = ["#", "TIME", "FROM NOW"]
    out.rows = [[str(i), local(t, tz), relative(t, now)] for i, t in enumerate(fires, 1)]
    return out


# ------------------------------------------------------------------------------- writing
def _schedule(args: argparse.Namespace, tz: str, now: datetime) -> Schedule | None:
    given = {"cron": args.cron, "every": args.every, "at": args.at, "in": args.in_}
    for kind, value in given.items():  # argparse lets at most one through
        if value is not None:
            return parse.schedule(kind, value, tz, now)
    return None


def _timeout(args: argparse.Namespace) -> float | None:
    return None if args.timeout is None else parse.duration_ms(args.timeout) / 1000


async def jobs_add(c: Context, args: argparse.Namespace) -> Output:
    tz = check_zone(args.tz or c.display_tz or c.store.settings.default_timezone)
    schedule = _schedule(args, tz, c.now())
    assert schedule is not None  # argparse requires one of the schedule options
    job_id = await c.store.add_job_full(
        args.name,
        args.prompt,
        schedule,
        delete_after_run=bool(args.delete_after_run),
        timezone=tz,
        max_retries=args.retries,
        timeout_secs=_timeout(args),
        session_mode=SessionMode(args.session or "isolated"),
        user_id=args.user,
        misfire_policy=MisfirePolicy(args.misfire or "run_once"),
    )
    job = await c.store.get_job(job_id)
    assert job is not None
    next_run = when(job.next_run_at, c.tz(job.timezone), c.now())
    words = schedule_human(job.schedule, job.timezone)
    message = f"Job '{job.name}' added ({words}); next run {next_run}"
    out = Output(
        {
            "job_name": job.name,
            "id": job.id,
            "next_run": iso(job.next_run_at, c.tz(job.timezone)),
            "message": message,
        },
        "text",
        "Job Added",
    )
    out.text = message
    return out


async def jobs_edit(c: Context, args: argparse.Namespace) -> Output:
    (job,) = await find_jobs(c, [args.name])
    tz = args.tz or job.timezone
    check_zone(tz)
    schedule = _schedule(args, tz, c.now())
    timeout = _timeout(args)
    update = JobUpdate(
        name=args.rename if args.rename is not None else UNSET,
        prompt=args.prompt if args.prompt is not None else UNSET,
        schedule=schedule if schedule is not None else UNSET,
        timezone=args.tz if args.tz is not None else UNSET,
        max_retries=args.retries if args.retries is not None else UNSET,
        timeout_secs=timeout if timeout is not None else UNSET,
        session_mode=SessionMode(args.session) if args.session else UNSET,
        user_id=args.user if args.user is not None else UNSET,
        delete_after_run=args.delete_after_run if args.delete_after_run is not None else UNSET,
        misfire_policy=MisfirePolicy(args.misfire) if args.misfire else UNSET,
    )
    if update == JobUpdate():
        raise InvalidInput("nothing to change: give at least one option (see jobs edit --help)")
    job = await c.store.update_job(job.id, update)
    message = (
        f"Job '{job.name}' updated; next run {when(job.next_run_at, c.tz(job.timezone), c.now())}"
    )
    out = Output(
        {"job_name": job.name, "id": job.id, "message": message} | job_data(job, c),
        "text",
        "Job Updated",
    )
    out.text = message
    return out


async def jobs_enable(c: Context, args: argparse.Namespace, enabled: bool) -> Output:
    jobs = await find_jobs(c, args.names)
    verb = "enabled" if enabled else "disabled"
    for job in jobs:
        if enabled:
            await c.store.enable_job(job.id)
        else:
            await c.store.disable_job(job.id)
    names = [j.name for j in jobs]
    message = "\n".join(f"Job '{n}' has been {verb}" for n in names)
    data: dict[str, Any] = {"jobs": names, "enabled": enabled, "message": message}
    if len(names) == 1:
        data["job_name"] = names[0]
    out = Output(data, "text", f"Job {verb.capitalize()}")
    out.text = message
    return out


async def jobs_remove(c: Context, args: argparse.Namespace) -> Output:
    jobs = await find_jobs(c, args.names)
    names = [j.name for j in jobs]
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidInput(f"refusing to remove {', '.join(names)} without --yes")
        answer = await asyncio.to_thread(
            input, f"Remove {len(names)} job(s): {', '.join(names)}? [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            return Output(
                {"removed": [], "message": "Nothing removed"},
                "text",
                "Jobs Removed",
                text="Nothing removed",
            )
    for job in jobs:
        await c.store.remove_job(job.id)
    message = "\n".join(f"Job '{n}' has been removed" for n in names)
    return Output({"removed": names, "message": message}, "text", "Jobs Removed", text=message)


async def jobs_prune(c: Context, args: argparse.Namespace) -> Output:
    if args.days < 0:
        raise InvalidInput("--days must be 0 or more")
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
