"""The JSON shapes of jobs and runs in answers: the WebSocket API, the agent tools and the MCP
server show the same fields with the same names."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from .models import CronJob, CronRun
from .schedules import Cron, Interval, OneShot, Schedule, expand_alias, format_duration_ms
from .timeutil import zone


def job_json(job: CronJob) -> dict[str, Any]:
    kind, expr, _ = job.schedule.to_storage()
    return {
        "id": job.id,
        "name": job.name,
        "prompt": job.prompt,
        "schedule": {
            "kind": kind,
            "expression": expr,
            "text": job.schedule.describe(),
            "in_words": schedule_human(job.schedule, job.timezone),
        },
        "timezone": job.timezone,
        "enabled": job.enabled,
        "next_run": None if job.next_run_at is None else job.next_run_at.isoformat(),
        "last_run": None if job.last_run_at is None else job.last_run_at.isoformat(),
        "last_status": None if job.last_status is None else job.last_status.value,
        "last_error": job.last_error,
        "retry_count": job.retry_count,
        "max_retries": job.max_retries,
        "timeout_secs": job.timeout_secs,
        "session_mode": job.session_mode.value,
        "delete_after_run": job.delete_after_run,
        "misfire_policy": job.misfire_policy.value,
        "user_id": job.user_id,
        "run_count": job.run_count,
        "description": job.description,
    }


def run_json(run: CronRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job_id": run.job_id,
        "job_name": run.job_name,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "attempt": run.attempt,
        "scheduled_for": run.scheduled_for.isoformat(),
        "started_at": run.started_at.isoformat(),
        "completed_at": None if run.completed_at is None else run.completed_at.isoformat(),
        "duration_ms": run.duration_ms,
        "result": run.result_summary,
        "error": run.error,
        "session_id": run.session_id,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
    }


def local(dt: datetime | None, tz_name: str) -> str:
    """``2026-12-01 09:00:00 +01:00`` in ``tz_name`` (for people)."""
    if dt is None:
        return "-"
    moment = dt.astimezone(zone(tz_name))
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + moment.isoformat()[-6:]


def schedule_human(schedule: Schedule, tz_name: str) -> str:
    """The schedule in words, e.g. ``At 09:00, Monday through Friday``."""
    if isinstance(schedule, Cron):
        return _cron_words(schedule.expr)
    if isinstance(schedule, Interval):
        return _every_words(schedule.every_ms)
    assert isinstance(schedule, OneShot)
    return f"Once, at {local(schedule.instant(tz_name), tz_name)}"


def _every_words(every_ms: int) -> str:
    for unit, size in (
        ("day", 86_400_000),
        ("hour", 3_600_000),
        ("minute", 60_000),
        ("second", 1000),
    ):
        count, rest = divmod(every_ms, size)
        if count and not rest:
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return "Every " + format_duration_ms(every_ms)


@lru_cache(maxsize=1024)
def _cron_words(expr: str) -> str:
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    return str(ExpressionDescriptor(expand_alias(expr), options).get_description())


def fires_after(schedule: Schedule, tz: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times of ``schedule`` (read in ``tz``) after ``after``."""
    fires: list[datetime] = []
    cursor = after
    while len(fires) < count:
        nxt = schedule.next_run(cursor, tz)
        if nxt is None:
            break
        fires.append(nxt)
        cursor = nxt
    return fires
