"""The JSON shapes of jobs and runs in answers: the WebSocket API, the agent tools and the MCP
server show the same fields with the same names."""

from __future__ import annotations

import heapq
from datetime import datetime
from functools import lru_cache
from typing import Any

from .jitter import fire_time
from .models import CronJob, CronRun, DestinationRefusal, RunTrigger
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
        "next_run": None if job.next_fire_at is None else job.next_fire_at.isoformat(),
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
        "jitter_secs": job.jitter_secs,
        "overlap": job.overlap.value,
        "max_instances": job.max_instances,
        "running": job.running_count,
    }


def run_json(run: CronRun, job: CronJob | None = None) -> dict[str, Any]:
    """A run's JSON; with its ``job``, ``late_ms`` counts from the jittered fire time."""
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
        "late_ms": late_ms(run, job),
        "result": run.result_summary,
        "error": run.error,
        "session_id": run.session_id,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
    }


def destination_labels(name: str) -> tuple[str, str]:
    """``(kind, id)`` of a destination name: ``telegram:123456`` -> ``("telegram", "123456")``
    (the bot id, the public part of its token)."""
    kind, _, ident = name.partition(":")
    return kind, ident


def refusal_json(refusal: DestinationRefusal) -> dict[str, Any]:
    """A destination refusing every message, as ``/readyz`` and ``status --json`` show it."""
    kind, ident = destination_labels(refusal.name)
    return {
        "name": refusal.name,
        "kind": kind,
        "id": ident,
        "refusing": True,
        "since": refusal.since.isoformat(),
        "refusals": refusal.failures,
        "next_probe": refusal.retry_at.isoformat(),
        "error": refusal.error,
    }


def late_ms(run: CronRun, job: CronJob | None = None) -> int:
    """How long after its intended time the run started: for a scheduled run of a jittered
    job (given ``job``), its occurrence's time plus its jitter; else ``scheduled_for``."""
    intended = run.scheduled_for
    if job is not None and job.jitter_secs and run.trigger is RunTrigger.SCHEDULE:
        intended = fire_time(job.id, job.schedule, job.timezone, intended, job.jitter_secs)
    return max(0, round((run.started_at - intended).total_seconds() * 1000))


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


def job_fires(job: CronJob, count: int) -> list[datetime]:
    """The next ``count`` times ``job`` fires, jitter included (from its next occurrence)."""
    first = job.next_run_at
    if first is None or count < 1:
        return []
    nominal = [first, *fires_after(job.schedule, job.timezone, first, count - 1)]
    return [_fire(job, at) for at in nominal]


def fires_across(jobs: list[CronJob], count: int) -> list[tuple[datetime, CronJob]]:
    """The next ``count`` fires across ``jobs`` in time order, jitter included (a merge: each
    job's next fire, then its following ones as they are taken; jitter never moves a fire
    past the job's next one, so each job's fires stay in order)."""
    heap: list[tuple[datetime, int, datetime]] = []
    for i, job in enumerate(jobs):
        if job.enabled and job.next_run_at is not None:
            heap.append((_fire(job, job.next_run_at), i, job.next_run_at))
    heapq.heapify(heap)
    fires: list[tuple[datetime, CronJob]] = []
    while heap and len(fires) < count:
        at, i, nominal = heapq.heappop(heap)
        job = jobs[i]
        fires.append((at, job))
        following = job.schedule.next_run(nominal, job.timezone)
        if following is not None:
            heapq.heappush(heap, (_fire(job, following), i, following))
    return fires


def _fire(job: CronJob, nominal: datetime) -> datetime:
    return fire_time(job.id, job.schedule, job.timezone, nominal, job.jitter_secs)
