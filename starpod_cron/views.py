"""The JSON shapes of jobs and runs in answers, the one place they are made: the WebSocket API,
the agent tools, the MCP server, the HTTP API and the CLI's ``--json`` show the same fields
with the same names. A job's keys come from the declaration (:mod:`starpod_cron.fields`)."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .fields import JobField, public_fields
from .jitter import fire_time
from .models import CronJob, CronRun, Delivery, DestinationRefusal, ModelUsage, RunTrigger
from .schedules import Schedule
from .scheduletext import local as local
from .scheduletext import schedule_human as schedule_human
from .scheduletext import schedule_text as schedule_text
from .timeutil import zone


def _iso(value: datetime | None, tz: str | None) -> str | None:
    if value is None:
        return None
    return (value if tz is None else value.astimezone(zone(tz))).isoformat()


def _shown(f: JobField) -> Callable[[CronJob, str | None], Any]:
    """How ``f``'s value appears in a job's JSON: enums by their value, times as ISO 8601
    (in ``tz`` when given), the schedule as an object."""
    name = f.name
    if f.storage == "schedule":
        return lambda job, tz: schedule_json(job.schedule, job.timezone)
    if f.annotation.startswith("datetime"):
        return lambda job, tz: _iso(getattr(job, name), tz)
    if f.enum_type is not None:
        return lambda job, tz: None if (v := getattr(job, name)) is None else v.value
    return lambda job, tz: getattr(job, name)


_JOB_VIEW: tuple[tuple[str, Callable[[CronJob, str | None], Any]], ...] = tuple(
    (f.view_key, _shown(f)) for f in public_fields() if f.view_key is not None
)


def job_json(job: CronJob, tz: str | None = None) -> dict[str, Any]:
    """A job as every answer shows it: each declared field with a view key
    (:mod:`starpod_cron.fields`; ``next_run`` is the next fire, jitter included). Times are
    ISO 8601 in UTC, or in ``tz`` when given (the CLI's ``--tz``)."""
    return {key: show(job, tz) for key, show in _JOB_VIEW}


def delivery_json(d: Delivery, tz: str | None = None) -> dict[str, Any]:
    """A delivery as every answer shows it (the HTTP API, the CLI's ``deliveries list``)."""
    return {
        "id": d.id,
        "run_id": d.run_id,
        "job_name": d.job_name,
        "destination": d.destination,
        "status": d.status.value,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "created_at": _iso(d.created_at, tz),
        "delivered_at": _iso(d.delivered_at, tz),
    }


def schedule_json(schedule: Schedule, tz: str) -> dict[str, Any]:
    kind, expr, _ = schedule.to_storage()
    return {
        "kind": kind,
        "expression": expr,
        "text": schedule.describe(),
        "in_words": schedule_human(schedule, tz),
    }


def run_json(run: CronRun, job: CronJob | None = None, tz: str | None = None) -> dict[str, Any]:
    """A run's JSON; with its ``job``, ``late_ms`` counts from the jittered fire time. Times
    are ISO 8601 in UTC, or in ``tz`` when given. ``run_id`` repeats ``id`` for one release
    (the CLI's ``--json`` called it so)."""
    return {
        "id": run.id,
        "run_id": run.id,
        "job_id": run.job_id,
        "job_name": run.job_name,
        "status": run.status.value,
        "handed_back": run.handed_back,
        "trigger": run.trigger.value,
        "attempt": run.attempt,
        "scheduled_for": _iso(run.scheduled_for, tz),
        "started_at": _iso(run.started_at, tz),
        "completed_at": _iso(run.completed_at, tz),
        "duration_ms": run.duration_ms,
        "late_ms": late_ms(run, job),
        "result": run.result_summary,
        "error": run.error,
        "session_id": run.session_id,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "silent": run.silent,
        "suppressed": run.suppressed is not None,
        "suppressed_reason": run.suppressed,
        "notice": run.notice,
        "cost_usd": run.cost_usd,
        "model": run.model,
        "usages": [usage_json(u) for u in run.usages],
    }


def models_text(run: CronRun) -> str:
    """Which model ran a run, in a few words: ``gpt-4o`` or ``gpt-4o-mini → gpt-4o`` (each
    model asked that answered, the last one's answer the result); ``-`` for none."""
    asked = [u.model for u in run.usages] or ([run.model] if run.model else [])
    return " → ".join(asked) or "-"


def usage_json(usage: ModelUsage) -> dict[str, Any]:
    """What one model a run asked used."""
    return {
        "model": usage.model,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
    }


def remaining_runs(job: CronJob) -> int | None:
    """The runs a job with ``max_runs`` has left (``max_runs - finished_runs``, never below
    0); None without a limit."""
    if job.max_runs is None:
        return None
    return max(0, job.max_runs - job.finished_runs)


def run_counts(job: CronJob, tz: str | None = None) -> dict[str, Any]:
    """What ``status``, ``jobs show``, the dashboard and ``/metrics`` say about a job's runs:
    how many, how many were silent or not delivered (their ``notify`` policy), failures in a
    row, why it paused itself, the runs it has left and when it ends."""
    return {
        "runs": job.run_count,
        "silent_runs": job.silent_runs,
        "suppressed_runs": job.suppressed_runs,
        "consecutive_failures": job.consecutive_failures,
        "paused_reason": job.paused_reason,
        "remaining_runs": remaining_runs(job),
        "end_at": _iso(job.end_at, tz),
    }


def counts_words(job: CronJob) -> str:
    """The notable ones of :func:`run_counts` in words (``4 silent, 2 failures in a row, 3
    runs left``), empty when there is nothing to say."""
    parts = []
    if job.silent_runs:
        parts.append(f"{job.silent_runs} silent")
    if job.suppressed_runs:
        parts.append(f"{job.suppressed_runs} not delivered")
    if job.consecutive_failures:
        parts.append(f"{job.consecutive_failures} failure(s) in a row")
    left = remaining_runs(job)
    if left is not None:
        parts.append(f"{left} run(s) left")
    if job.paused_reason:
        parts.append(f"paused: {job.paused_reason}")
    return ", ".join(parts)


def delivery_words(run: CronRun) -> str:
    """How a run's result went out: empty when delivered, ``silent``, or ``not delivered:
    <reason>`` (its job's ``notify`` policy)."""
    if run.silent:
        return "silent"
    if run.suppressed is not None:
        return f"not delivered: {run.suppressed}"
    return ""


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
    """The next ``count`` times ``job`` fires, jitter included (from its next occurrence),
    none after its ``end_at`` and no more than the runs it has left (``max_runs``)."""
    first = job.next_run_at
    count = min(count, runs_left(job))
    if first is None or count < 1:
        return []
    nominal = [first, *fires_after(job.schedule, job.timezone, first, count - 1)]
    return [_fire(job, at) for at in nominal if _in_window(job, at)]


def runs_left(job: CronJob) -> int:
    """The runs ``job`` may still start: ``max_runs`` less those counted and in flight (a
    large number without ``max_runs``)."""
    if job.max_runs is None:
        return 2**31
    return max(0, job.max_runs - job.finished_runs - job.running_count)


def _in_window(job: CronJob, at: datetime) -> bool:
    return job.end_at is None or at <= job.end_at


def fires_across(jobs: list[CronJob], count: int) -> list[tuple[datetime, CronJob]]:
    """The next ``count`` fires across ``jobs`` in time order, jitter included (a merge: each
    job's next fire, then its following ones as they are taken; jitter never moves a fire
    past the job's next one, so each job's fires stay in order)."""
    heap: list[tuple[datetime, int, datetime]] = []
    left = [runs_left(job) for job in jobs]
    for i, job in enumerate(jobs):
        if job.enabled and job.next_run_at is not None and left[i] > 0:
            heap.append((_fire(job, job.next_run_at), i, job.next_run_at))
    heapq.heapify(heap)
    fires: list[tuple[datetime, CronJob]] = []
    while heap and len(fires) < count:
        at, i, nominal = heapq.heappop(heap)
        job = jobs[i]
        fires.append((at, job))
        left[i] -= 1
        following = job.schedule.next_run(nominal, job.timezone)
        if following is not None and left[i] > 0 and _in_window(job, following):
            heapq.heappush(heap, (_fire(job, following), i, following))
    return fires


def _fire(job: CronJob, nominal: datetime) -> datetime:
    return fire_time(job.id, job.schedule, job.timezone, nominal, job.jitter_secs)
