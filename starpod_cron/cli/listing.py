"""``jobs list``: every job in a table written row by row straight from the rows of the store's
job briefs (a few columns of each row: no job, brief or JSON view made per row), or with
``--json`` the views every front end shows.

The table is the command people run most, and it starts fast: it reads the rows through
the store's dialect alone (no store object, no delivery routing, no job model, and on SQLite
no event loop), and a row's cells are made from its columns, with each schedule, schedule
in words and time of day made once however many jobs share it."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..errors import DatabaseMissing
from ..schedules import Schedule
from ..scheduletext import schedule_human
from ..store.briefs import BRIEF_COLUMNS
from ..timeutil import check_zone, from_ms, zone
from .render import Output, one_line, relative

if TYPE_CHECKING:
    from ..config import AgentConfig
    from ..models import CronJob
    from ..store.briefs import JobBrief
    from ..store.driver import Row
    from .context import Context

NO_JOBS = "No jobs. Add one: starpod-cron jobs add NAME PROMPT --every 30m"
COLUMNS = ["NAME", "SCHEDULE", "IN WORDS", "ENABLED", "NEXT RUN ({tz})", "LAST STATUS"]


async def jobs_list(c: Context, args: argparse.Namespace) -> Output:
    """``--json``: every job (``--all``: those disabled by hand too) as the views every front
    end shows (the table is :func:`jobs_table`)."""
    from ..views import job_json

    jobs = await (c.store.list_jobs_for_user(args.user) if args.user else c.store.list_jobs())
    jobs = [j for j in jobs if args.all or shown_by_default(j)]
    views = [job_json(j, c.tz(j.timezone)) for j in jobs]
    out = Output({"jobs": views, "total": len(jobs)}, "table", "Scheduled Jobs")
    out.text = "" if jobs else NO_JOBS
    return out


def no_database(exc: DatabaseMissing) -> Output:
    """What ``jobs list`` says when there is no database yet: no jobs, and how to add one."""
    empty = Output({"jobs": [], "total": 0}, "table", "Scheduled Jobs")
    empty.text = f"No jobs ({exc}). Add one: starpod-cron jobs add NAME PROMPT --every 30m"
    return empty


def jobs_table(config: AgentConfig, args: argparse.Namespace) -> Output:
    """The table of every job (``--all``: those disabled by hand too), its times in one zone
    named in the header: ``--tz``, else the zone all its jobs share, else ``[cron]
    timezone``. Its rows are read without a store object (and on SQLite without an event
    loop)."""
    from ..bootstrap import store_url
    from ..clock import SystemClock
    from ..store.briefs import brief_script
    from ..store.opener import read_once

    settings = config.store_settings
    check_zone(settings.default_timezone)
    try:
        rows = read_once(store_url(config, args.db), settings, brief_script(args.user))
    except DatabaseMissing as exc:
        return no_database(exc)
    if not args.all:
        rows = [r for r in rows if r[ENABLED] or r[PAUSED] is not None]  # shown_by_default
    out = Output({"total": len(rows)}, "table", "Scheduled Jobs")
    if not rows:
        out.text = NO_JOBS
        return out
    zones = {r[ZONE] for r in rows}
    tz = args.display_tz or (zones.pop() if len(zones) == 1 else settings.default_timezone)
    out.columns = [c.format(tz=tz) for c in COLUMNS]
    out.rows = table_rows(rows, args.display_tz, tz, SystemClock().now_ms())
    return out


ENABLED, PAUSED, ZONE = (BRIEF_COLUMNS.index(c) for c in ("enabled", "paused_reason", "timezone"))


def table_rows(
    rows: Sequence[Row], display_tz: str | None, tz: str, now_ms: int
) -> Iterator[list[str]]:
    """The cells of each brief's row: what :class:`JobBrief`'s fields give through
    ``Schedule.describe``, ``schedule_human`` (in ``display_tz``, else the job's zone),
    :func:`enabled_text` and ``render.at_time`` (in ``tz``), made from the columns (the
    same text, tested against them)."""
    schedules: dict[tuple[str, str, int | None, str], tuple[str, str]] = {}
    days: dict[int, str] = {}  # a fire time's local date and time, by epoch ms
    ago: dict[int, str] = {}  # "in 3m" by whole seconds from now
    column_zone = zone(tz)
    now = from_ms(now_ms)
    # the columns in BRIEF_COLUMNS' order
    for _, name, description, kind, expr, anchor, job_tz, enabled, paused, next_ms, offset, \
            status, _ in rows:  # fmt: skip
        key = (kind, expr, anchor, display_tz or job_tz)
        if (cells := schedules.get(key)) is None:
            schedule = Schedule.from_storage(kind, expr, anchor)
            cells = schedules[key] = (schedule.describe(), schedule_human(schedule, key[3]))
        if next_ms is None:
            at = "-"
        else:
            fire = next_ms + (offset or 0)
            if (day := days.get(fire)) is None:
                day = days[fire] = f"{from_ms(fire).astimezone(column_zone):%Y-%m-%d %H:%M:%S}"
            seconds = round((fire - now_ms) / 1000)  # = (fire - now).total_seconds(), exactly
            if (words_ago := ago.get(seconds)) is None:
                words_ago = ago[seconds] = relative(from_ms(fire), now)
            at = f"{day} ({words_ago})"
        yield [
            name if not description else f"{name} ({one_line(description, 40)})",
            cells[0],
            cells[1],
            "yes" if enabled else f"no ({paused})" if paused else "no",
            at,
            status or "-",
        ]


def shown_by_default(job: CronJob | JobBrief) -> bool:
    """Whether ``jobs list`` shows the job without ``--all``: enabled, or disabled by itself
    (a job that paused itself is shown, with why: someone should look)."""
    return job.enabled or job.paused_reason is not None


def enabled_text(job: CronJob | JobBrief) -> str:
    """``yes``, ``no``, or ``no (why)`` for a job that disabled itself (``paused_reason``)."""
    if job.enabled:
        return "yes"
    return f"no ({job.paused_reason})" if job.paused_reason else "no"
