"""``status`` and ``nodes list``: the scheduler at a glance, and the gateways sharing the store.
Jobs and runs appear as the same views every front end shows."""

from __future__ import annotations

import argparse
from typing import Any

from ..activity import overdue_after_secs, overdue_jobs
from ..budget import short_usd
from ..models import CronJob, NodeStatus, RunStats, RunStatus
from ..usage import ledger, spent_json, spent_words
from ..views import counts_words, fires_across, job_json, refusal_json, run_counts, run_json
from .context import Context
from .listing import NO_JOBS
from .render import Output, at_time, iso, local, ms, relative, tokens, when


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


def _stats(found: RunStats | None) -> dict[str, Any]:
    """A job's recorded runs, as ``/api/jobs`` shows them (``stats``), with the last duration."""
    return {
        "runs": found.runs if found else 0,
        "errors": found.errors if found else 0,
        "prompt_tokens": found.prompt_tokens if found else 0,
        "completion_tokens": found.completion_tokens if found else 0,
        "last_duration_ms": found.last_duration_ms if found else None,
    }


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
    late_after = overdue_after_secs(c.config.scheduler, c.store.settings)
    overdue = overdue_jobs(jobs, now, late_after)
    spend = await ledger(c.store, "job", now)
    spent = {job.id: spend.spent(job.id, job.timezone, now) for job in jobs}
    zone = c.store.settings.default_timezone
    everyone = (await ledger(c.store, "global", now)).spent("", zone, now)
    job_rows = [
        job_json(job, c.tz(job.timezone))
        | {
            "state": job_state(job),
            "stats": _stats(stats.get(job.id)),
            "counts": run_counts(job, c.tz(job.timezone)),
            "spent": spent_json(spent[job.id]),
        }
        for job in jobs
    ]
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
        "in_flight": [run_json(r, tz=c.tz("UTC")) for r in running],
        "next_fires": [
            {"job": job.name, "job_id": job.id, "at": iso(at, c.tz(job.timezone))}
            for at, job in upcoming
        ],
        "jobs": job_rows,
        "spent": spent_json(everyone),
        "destinations_refusing": [refusal_json(r) for r in refusing],
        "overdue": [
            {
                "job": job.name,
                "job_id": job.id,
                "next_fire_at": iso(job.next_fire_at or job.next_run_at, c.tz(job.timezone)),
                "overdue_secs": round(late, 3),
            }
            for job, late in overdue
        ],
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
    lines += [
        f"Overdue: {job.name} should have fired {late:.0f}s ago (more than {late_after:g}s); "
        "is a scheduler running? (`starpod-cron nodes list`)"
        for job, late in overdue
    ]
    if upcoming:
        lines.append("Next fires:")
        lines += [
            f"  {local(at, c.tz(job.timezone))}  ({relative(at, now)})  {job.name}"
            for at, job in upcoming
        ]
    lines.append(f"Spent: {spent_words(everyone)}")
    out.header = "\n".join(lines) + "\n"
    if not jobs:
        out.text = NO_JOBS
        return out
    column_tz = c.column_zone(job.timezone for job in jobs)
    out.columns = [
        "JOB", "STATE", "RUNS", "ERRORS", "LAST DURATION", "TOKENS", "COST TODAY",
        f"NEXT RUN ({column_tz})", "NOTES",
    ]  # fmt: skip
    out.rows = [
        [
            job.name,
            row["state"] + (f" ({job.paused_reason})" if job.paused_reason else ""),
            str(stats_of["runs"]),
            str(stats_of["errors"]),
            ms(stats_of["last_duration_ms"]),
            tokens(stats_of["prompt_tokens"] or None, stats_of["completion_tokens"] or None),
            short_usd(spent[job.id]["today"].cost_pusd),
            at_time(job.next_fire_at, column_tz, now),
            _notes(job, c.tz(job.timezone)),
        ]
        for row, job in zip(job_rows, jobs, strict=True)
        for stats_of in [row["stats"]]
    ]
    return out


def _notes(job: CronJob, tz: str) -> str:
    """The status table's word on a job's runs: silent and undelivered runs, failures in a
    row, runs left, why it paused itself, when it ends."""
    words = counts_words(job)
    if job.end_at is not None:
        words += (", " if words else "") + f"ends {local(job.end_at, tz)}"
    return words or "-"


def job_state(job: CronJob) -> str:
    if job.running_count:
        return "RUNNING"
    if not job.enabled:
        return "PAUSED"
    if job.last_status in (RunStatus.FAILED, RunStatus.TIMEOUT):
        return "FAILING"
    return "IDLE"
