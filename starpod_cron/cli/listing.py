"""``jobs list``: every job in a table written row by row from the store's job briefs (a
few columns of each row, no JSON view made), or with ``--json`` the views every front end
shows. Its imports are few: it is the command people run most, and it starts fast."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from ..models import CronJob
from ..schedules import Schedule
from ..store.briefs import JobBrief
from ..views import job_json, schedule_human
from .context import Context
from .render import Output, at_time, one_line

NO_JOBS = "No jobs. Add one: starpod-cron jobs add NAME PROMPT --every 30m"


async def jobs_list(c: Context, args: argparse.Namespace) -> Output:
    """Every job (``--all``: those disabled by hand too); the table is written row by row
    from the jobs (no JSON views made for it), its times in one zone named in the header."""
    if c.as_json:  # the views every front end shows
        jobs = await (c.store.list_jobs_for_user(args.user) if args.user else c.store.list_jobs())
        jobs = [j for j in jobs if args.all or shown_by_default(j)]
        views = [job_json(j, c.tz(j.timezone)) for j in jobs]
        out = Output({"jobs": views, "total": len(jobs)}, "table", "Scheduled Jobs")
        out.text = "" if jobs else NO_JOBS
        return out
    briefs = await c.store.list_job_briefs(args.user)
    briefs = [j for j in briefs if args.all or shown_by_default(j)]
    out = Output({"total": len(briefs)}, "table", "Scheduled Jobs")
    if not briefs:
        out.text = NO_JOBS
        return out
    tz = c.column_zone(j.timezone for j in briefs)
    out.columns = ["NAME", "SCHEDULE", "IN WORDS", "ENABLED", f"NEXT RUN ({tz})", "LAST STATUS"]
    out.rows = _job_rows(c, briefs, tz)
    return out


def shown_by_default(job: CronJob | JobBrief) -> bool:
    """Whether ``jobs list`` shows the job without ``--all``: enabled, or disabled by itself
    (a job that paused itself is shown, with why: someone should look)."""
    return job.enabled or job.paused_reason is not None


def _job_rows(c: Context, jobs: list[JobBrief], tz: str) -> Iterator[list[str]]:
    now = c.now()
    words: dict[tuple[Schedule, str], str] = {}  # many jobs share a schedule
    for j in jobs:
        key = (j.schedule, c.tz(j.timezone))
        if (in_words := words.get(key)) is None:
            in_words = words[key] = schedule_human(*key)
        yield [
            j.name if not j.description else f"{j.name} ({one_line(j.description, 40)})",
            j.schedule.describe(),
            in_words,
            enabled_text(j),
            at_time(j.next_fire_at, tz, now),
            j.last_status.value if j.last_status else "-",
        ]


def enabled_text(job: CronJob | JobBrief) -> str:
    """``yes``, ``no``, or ``no (why)`` for a job that disabled itself (``paused_reason``)."""
    if job.enabled:
        return "yes"
    return f"no ({job.paused_reason})" if job.paused_reason else "no"
