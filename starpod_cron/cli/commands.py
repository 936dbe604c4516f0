"""The ``jobs`` commands. Each takes parsed options, makes library calls (the same operations
the gateway uses, as the local operator) and returns an Output; nothing here schedules."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import durations
from ..access import LOCAL_ADMIN
from ..config import AgentConfig
from ..declared import check_editable, sync_jobs
from ..errors import InvalidInput, JobNotFound
from ..jobfields import JobFields
from ..maintenance import configured_jobs
from ..models import CronJob, CronRun, NodeStatus, RunStatus
from ..operations import JobOperations
from ..schedules import Schedule, format_duration_ms
from ..store import CronStore
from ..timeutil import check_zone, from_ms
from ..views import fires_across, job_fires, refusal_json
from .render import (
    Output,
    iso,
    local,
    relative,
    schedule_human,
    schedule_text,
    tokens,
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

    @property
    def ops(self) -> JobOperations:
        return JobOperations(self.store)


async def find_jobs(c: Context, names: list[str]) -> list[CronJob]:
    """Every named job (by name or id), before anything is changed; JobNotFound names all
    the missing ones."""
    found: list[CronJob] = []
    missing: list[str] = []
    for name in names:
        try:
            found.append(await c.ops.find(LOCAL_ADMIN, name))
        except LookupError:
            missing.append(name)
    if missing:
        raise JobNotFound("no job named " + ", ".join(repr(m) for m in missing))
    return found


def job_data(job: CronJob, c: Context) -> dict[str, Any]:
    tz = c.tz(job.timezone)
    return {
        "name": job.name,
        "id": job.id,
        "description": job.description,
        "schedule": schedule_text(job.schedule, job.timezone),
        "schedule_kind": job.schedule.kind,
        "schedule_human": schedule_human(job.schedule, job.timezone),
        "timezone": job.timezone,
        "enabled": job.enabled,
        "next_run": iso(job.next_fire_at, tz),
        "last_run": iso(job.last_run_at, tz),
        "last_status": job.last_status.value if job.last_status else None,
        "user_id": job.user_id,
    }


def run_data(run: CronRun, tz: str) -> dict[str, Any]:
    return {
        "job_name": run.job_name,
        "run_id": run.id,
        "status": run.status.value,
        "run_at": iso(run.started_at, tz),
        "scheduled_for": iso(run.scheduled_for, tz),
        "completed_at": iso(run.completed_at, tz),
        "duration_ms": run.duration_ms,
        "attempt": run.attempt,
        "trigger": run.trigger.value,
        "error": run.error,
        "result": _preview(run.result_summary),
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
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
            j.name if not j.description else f"{j.name} ({_one_line(j.description, 40)})",
            schedule_text(j.schedule, c.tz(j.timezone)),
            schedule_human(j.schedule, j.timezone),
            "yes" if j.enabled else "no",
            when(j.next_fire_at, c.tz(j.timezone), now),
            j.last_status.value if j.last_status else "-",
        ]
        for j in jobs
    ]
    return out


async def jobs_show(c: Context, args: argparse.Namespace) -> Output:
    (job,) = await find_jobs(c, [args.name])
    tz = c.tz(job.timezone)
    now = c.now()
    history = await c.store.list_runs(job.id, c.store.settings.runs_keep_per_job)
    last = history[0] if history else None
    total_in = sum(r.prompt_tokens or 0 for r in history)
    total_out = sum(r.completion_tokens or 0 for r in history)
    upcoming = job_fires(job, 5)
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
        "running": job.running_count > 0,
        "running_count": job.running_count,
        "jitter_secs": job.jitter_secs,
        "overlap": job.overlap.value,
        "max_instances": job.max_instances,
        "last_run_result": _preview(last.result_summary) if last else None,
        "last_run_tokens": None
        if last is None
        else {"prompt": last.prompt_tokens, "completion": last.completion_tokens},
        "history_tokens": {"prompt": total_in, "completion": total_out, "runs": len(history)},
    }
    out = Output(data, "presentation_card", f"Job: {job.name}")
    out.fields = [
        ("name", job.name),
        ("id", job.id),
        ("description", job.description or "-"),
        ("prompt", job.prompt),
        (
            "schedule",
            f"{schedule_text(job.schedule, tz)}  ({data['schedule_human']})",
        ),
        ("timezone", job.timezone),
        ("enabled", "yes" if job.enabled else "no"),
        ("next runs", "\n".join(when(t, tz, now) for t in upcoming) or "-"),
        ("last run", when(job.last_run_at, tz, now)),
        ("last status", data["last_status"] or "-"),
        ("last error", job.last_error or "-"),
        ("run count", str(job.run_count)),
        (
            "tokens",
            f"last run {tokens(last.prompt_tokens, last.completion_tokens) if last else '-'}; "
            f"last {len(history)} run(s) {tokens(total_in or None, total_out or None)}",
        ),
        (
            "retries",
            f"{job.retry_count} of {job.max_retries} used"
            + (f", next at {local(job.retry_at, tz)}" if job.retry_at else ""),
        ),
        ("timeout", f"{job.timeout_secs:g}s"),
        ("session", job.session_mode.value),
        ("misfire", job.misfire_policy.value),
        (
            "jitter",
            f"up to {format_duration_ms(round(job.jitter_secs * 1000))} (next runs include it)"
            if job.jitter_secs
            else "none",
        ),
        (
            "overlap",
            job.overlap.value
            + (f", up to {job.max_instances} at once" if job.max_instances > 1 else ""),
        ),
        ("delete after run", "yes" if job.delete_after_run else "no"),
        ("user", job.user_id or "-"),
        ("created", local(job.created_at, tz)),
        ("running", str(job.running_count) if job.running_count else "no"),
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
    for run_job in {r.job_id for r in runs}:  # only the jobs shown, not every job in the store
        job = await c.store.get_job(run_job)
        if job is not None:
            zones[run_job] = job.timezone
    now = c.now()

    def tz(run: CronRun) -> str:
        return c.tz(zones.get(run.job_id, "UTC"))

    entries = [run_data(r, tz(r)) for r in runs]
    out = Output({"entries": entries, "total": len(entries)}, "table", "Job Execution History")
    if not runs:
        which = f"{status.value} " if status else ""
        of = f" of {args.job}" if args.job else ""
        out.text = f"No {which}runs{of} recorded."
        return out
    out.columns = [
        "JOB",
        "STATUS",
        "RUN AT",
        "DURATION",
        "ATTEMPT",
        "TRIGGER",
        "TOKENS",
        "RESULT / ERROR",
    ]
    out.rows = [
        [
            r.job_name,
            r.status.value,
            f"{local(r.started_at, tz(r))} ({relative(r.started_at, now)})",
            "-" if r.duration_ms is None else f"{r.duration_ms} ms",
            str(r.attempt),
            r.trigger.value,
            tokens(r.prompt_tokens, r.completion_tokens),
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
    tz = check_zone(args.tz or display_tz or config.store_settings.default_timezone)
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
def fields_from(args: argparse.Namespace, *, name: str | None = None) -> JobFields:
    timeout = None if args.timeout is None else durations.duration_ms(args.timeout) / 1000
    jitter = None if args.jitter is None else _jitter_secs(args.jitter)
    return JobFields(
        name=name,
        prompt=args.prompt,
        cron=args.cron,
        every=args.every,
        at=args.at,
        in_=args.in_,
        timezone=args.tz,
        max_retries=args.retries,
        timeout_secs=timeout,
        session_mode=args.session,
        delete_after_run=args.delete_after_run,
        misfire_policy=args.misfire,
        user_id=args.user,
        description=args.description,
        rename=getattr(args, "rename", None),
        jitter_secs=jitter,
        overlap=args.overlap,
        max_instances=args.max_instances,
    )


def _jitter_secs(text: str) -> float:
    """``--jitter``: a duration (``5m``), or ``0`` for none."""
    return 0.0 if text.strip() == "0" else durations.duration_ms(text) / 1000


async def jobs_add(c: Context, args: argparse.Namespace) -> Output:
    fields = fields_from(args, name=args.name)
    if fields.timezone is None and c.display_tz:
        fields = dataclasses.replace(fields, timezone=c.display_tz)
    job = await c.ops.add(LOCAL_ADMIN, fields)
    next_run = when(job.next_fire_at, c.tz(job.timezone), c.now())
    words = schedule_human(job.schedule, job.timezone)
    message = f"Job '{job.name}' added ({words}); next run {next_run}"
    if job.delete_after_run:
        message += "; it is deleted after it succeeds"
    out = Output(
        {
            "job_name": job.name,
            "id": job.id,
            "next_run": iso(job.next_fire_at, c.tz(job.timezone)),
            "delete_after_run": job.delete_after_run,
            "message": message,
        },
        "text",
        "Job Added",
    )
    out.text = message
    return out


async def jobs_edit(c: Context, args: argparse.Namespace) -> Output:
    job = await c.ops.update(LOCAL_ADMIN, args.name, fields_from(args))
    message = (
        f"Job '{job.name}' updated; next run {when(job.next_fire_at, c.tz(job.timezone), c.now())}"
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
    for job in jobs:
        check_editable(job)
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
    for job in jobs:
        check_editable(job)
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


async def jobs_sync(c: Context, args: argparse.Namespace) -> Output:
    """Make the store match the jobs declared in code and agent.toml (``--dry-run``: say
    what would change)."""
    config = c.config
    registry = configured_jobs(config, c.store)
    report = await sync_jobs(c.store, registry, now=c.now(), dry_run=args.dry_run)
    verb = "Would make" if args.dry_run else "Made"
    lines = [
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("create", report.created),
            ("update", report.updated),
            ("disable (no longer declared)", report.disabled),
            ("unchanged", report.unchanged),
        )
        if names
    ]
    message = f"{verb} {report.changes()} change(s) for {len(registry.jobs)} declared job(s)"
    data = {
        "created": report.created,
        "updated": report.updated,
        "disabled": report.disabled,
        "unchanged": report.unchanged,
        "dry_run": args.dry_run,
        "message": message,
    }
    return Output(data, "text", "Declared Jobs", text="\n".join([message, *lines]))


async def maintenance(c: Context, args: argparse.Namespace) -> Output:
    """``maintenance sessions|deliveries|optimize``: the built-in cleanups, each with
    ``--dry-run`` reporting what it would delete."""
    if args.command == "optimize":
        await c.store.optimize()
        message = "Refreshed the database's query statistics"
        return Output({"message": message}, "text", "Optimize", text=message)
    if args.command == "sessions":
        cutoff, age = c.now() - timedelta(hours=args.hours), f"{args.hours} hour(s)"
        count = await c.store.prune_messages(cutoff, dry_run=args.dry_run)
        what, title = "conversation message(s)", "Session Cleanup"
    else:
        cutoff, age = c.now() - timedelta(days=args.days), f"{args.days} day(s)"
        count = await c.store.prune_deliveries(cutoff, dry_run=args.dry_run)
        what, title = "finished deliveries", "Delivery Cleanup"
    verb = "Would delete" if args.dry_run else "Deleted"
    message = f"{verb} {count} {what} older than {age}"
    data = {
        "deleted": 0 if args.dry_run else count,
        "matching": count,
        "older_than": cutoff.isoformat(),
        "dry_run": args.dry_run,
        "message": message,
    }
    return Output(data, "text", title, text=message)


async def nodes_list(c: Context, args: argparse.Namespace) -> Output:
    now = c.now()
    nodes = await c.store.list_nodes()
    leases = [lease for lease in await c.store.list_leases() if lease.expires_at > now]
    if args.up:
        nodes = [n for n in nodes if n.status(now) is NodeStatus.UP]
    tz = c.tz("UTC")
    data = [
        {
            "id": n.id,
            "host": n.host,
            "pid": n.pid,
            "version": n.version,
            "status": n.status(now).value,
            "roles": list(n.roles),
            "leases": [x.name for x in leases if x.holder == n.id],
            "started_at": iso(n.started_at, tz),
            "last_seen": iso(n.last_seen, tz),
            "stopped_at": iso(n.stopped_at, tz),
            "heartbeat_secs": n.heartbeat_secs,
        }
        for n in nodes
    ]
    out = Output({"nodes": data, "total": len(data)}, "table", "Gateway Nodes")
    if not nodes:
        out.text = "No nodes seen in the last week (nodes heartbeat while `serve` runs)."
        return out
    out.columns = ["NODE", "HOST", "PID", "STATUS", "ROLES", "STARTED", "LAST SEEN", "VERSION"]
    out.rows = [
        [
            n.id.rsplit(":", 1)[-1],
            n.host,
            str(n.pid),
            n.status(now).value,
            ", ".join(n.roles) or "-",
            when(n.started_at, tz, now),
            relative(n.last_seen, now),
            n.version,
        ]
        for n in nodes
    ]
    return out


async def status(c: Context, args: argparse.Namespace) -> Output:
    """The scheduler at a glance: processes, runs in flight, the next fires, and each job's
    state (RUNNING / PAUSED / FAILING / IDLE) with its runs, errors, last duration, tokens."""
    now = c.now()
    jobs = await c.store.list_jobs()
    stats = await c.store.run_stats()
    nodes = await c.store.list_nodes()
    leases = [x for x in await c.store.list_leases() if x.expires_at > now]
    running = await c.store.list_recent_runs(1000, status=RunStatus.RUNNING)
    refusing = await c.store.refusing_destinations()
    upcoming = fires_across(jobs, 10)
    job_rows: list[dict[str, Any]] = []
    for job in jobs:
        found = stats.get(job.id)
        job_rows.append(
            {
                "name": job.name,
                "state": job_state(job),
                "runs": found.runs if found else 0,
                "errors": found.errors if found else 0,
                "last_duration_ms": found.last_duration_ms if found else None,
                "prompt_tokens": found.prompt_tokens if found else 0,
                "completion_tokens": found.completion_tokens if found else 0,
                "next_run": iso(job.next_fire_at, c.tz(job.timezone)),
            }
        )
    data = {
        "nodes": [
            {
                "id": n.id,
                "host": n.host,
                "pid": n.pid,
                "status": n.status(now).value,
                "roles": list(n.roles),
                "last_seen": iso(n.last_seen, c.tz("UTC")),
            }
            for n in nodes
        ],
        "leases": [{"name": x.name, "holder": x.holder} for x in leases],
        "in_flight": [
            {"job": r.job_name, "run_id": r.id, "started_at": iso(r.started_at, c.tz("UTC"))}
            for r in running
        ],
        "next_fires": [
            {"job": job.name, "at": iso(when, c.tz(job.timezone))} for when, job in upcoming
        ],
        "jobs": job_rows,
        "destinations_refusing": [refusal_json(r) for r in refusing],
    }
    out = Output(data, "table", "Jobs")
    up = [n for n in nodes if n.status(now) is NodeStatus.UP]
    lines = [
        f"Processes: {len(up)} up"
        + (f" ({', '.join(f'{n.host}:{n.pid}' for n in up)})" if up else "")
        + (f", {len(nodes) - len(up)} gone or stopped" if len(nodes) > len(up) else ""),
        f"Runs in flight: {len(running)}"
        + (f" ({', '.join(sorted({r.job_name for r in running})[:5])})" if running else ""),
    ]
    # its deliveries wait (nothing is lost) while one message probes it
    lines += [
        f"Destination refusing: {r.name} since {relative(r.since, now)}, {r.failures} "
        f"time(s) in a row, next probe {relative(r.retry_at, now)}: {r.error}"
        for r in refusing
    ]
    if upcoming:
        lines.append("Next fires:")
        lines += [
            f"  {local(when, c.tz(job.timezone))}  ({relative(when, now)})  {job.name}"
            for when, job in upcoming
        ]
    out.header = "\n".join(lines) + "\n"
    if not jobs:
        out.text = "No jobs. Add one: starpod-cron jobs add NAME PROMPT --every 30m"
        return out
    out.columns = ["JOB", "STATE", "RUNS", "ERRORS", "LAST DURATION", "TOKENS", "NEXT RUN"]
    out.rows = [
        [
            r["name"],
            r["state"],
            str(r["runs"]),
            str(r["errors"]),
            "-" if r["last_duration_ms"] is None else f"{r['last_duration_ms']} ms",
            tokens(r["prompt_tokens"] or None, r["completion_tokens"] or None),
            when(job.next_fire_at, c.tz(job.timezone), now),
        ]
        for r, job in zip(job_rows, jobs, strict=True)
    ]
    return out


def job_state(job: CronJob) -> str:
    if job.running_count:
        return "RUNNING"
    if not job.enabled:
        return "PAUSED"
    if job.last_status in (RunStatus.FAILED, RunStatus.TIMEOUT):
        return "FAILING"
    return "IDLE"
