"""``jobs list|show|add|edit|enable|disable|snooze|retry|remove|next``: options in, the
operations the gateway uses (as the local operator), and the same JSON views of a job every
front end shows."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from datetime import datetime
from typing import Any

from .. import jobfields, phrases
from ..access import LOCAL_ADMIN
from ..config import AgentConfig
from ..declared import check_editable, check_switchable
from ..errors import InvalidInput
from ..fields import user_fields
from ..models import CronJob
from ..preview import PreviewSettings, preview_job
from ..schedules import Schedule, format_duration_ms
from ..store import planning
from ..timeutil import check_zone, to_ms, zone
from ..usage import budget_words, ledger, spent_json, spent_words
from ..views import (
    counts_words,
    fires_after,
    job_fires,
    job_json,
    models_text,
    run_counts,
    runs_left,
    schedule_human,
)
from .context import Context, find_jobs
from .listing import enabled_text
from .options import fields_from
from .render import Output, iso, local, relative, tokens, when

PREVIEW_CHARS = 500


async def jobs_show(c: Context, args: argparse.Namespace) -> Output:
    """The job's view, plus what only this card shows: its next fires, when it was made and
    changed, and the token usage of its recent runs."""
    (job,) = await find_jobs(c, [args.name])
    tz = c.tz(job.timezone)
    now = c.now()
    history = await c.store.list_runs(job.id, c.store.settings.runs_keep_per_job)
    last = history[0] if history else None
    total_in = sum(r.prompt_tokens or 0 for r in history)
    total_out = sum(r.completion_tokens or 0 for r in history)
    upcoming = job_fires(job, 5)
    view = job_json(job, tz)
    spent = (await ledger(c.store, "job", now, job.id)).spent(job.id, job.timezone, now)
    data = view | {
        "next_runs": [iso(t, tz) for t in upcoming],
        "last_run_result": _preview(last.result_summary) if last else None,
        "last_run_tokens": None
        if last is None
        else {"prompt": last.prompt_tokens, "completion": last.completion_tokens},
        "history_tokens": {"prompt": total_in, "completion": total_out, "runs": len(history)},
        "counts": run_counts(job, tz),
        "spent": spent_json(spent),
    }
    out = Output(data, "presentation_card", f"Job: {job.name}")
    out.fields = [
        ("name", job.name),
        ("id", job.id),
        ("description", job.description or "-"),
        ("prompt", job.prompt),
        ("schedule", f"{view['schedule']['text']}  ({view['schedule']['in_words']})"),
        ("timezone", job.timezone),
        ("enabled", enabled_text(job)),
        ("next runs", "\n".join(when(t, tz, now) for t in upcoming) or "-"),
        ("model", _model_text(job)),
        ("last run", when(job.last_run_at, tz, now)),
        ("last status", view["last_status"] or "-"),
        ("models of runs", "; ".join(f"{r.attempt}: {models_text(r)}" for r in history[:5]) or "-"),
        ("last error", job.last_error or "-"),
        ("run count", str(job.run_count) + (f" ({words})" if (words := counts_words(job)) else "")),
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
        ("budget", budget_words(job)),
        ("spent", spent_words(spent)),
        *limit_rows(job, tz),
        *_declared_rows(view),
        ("user", job.user_id or "-"),
        ("created", local(job.created_at, tz)),
        ("running", str(job.running_count) if job.running_count else "no"),
    ]
    return out


CARD_FIELDS = frozenset(
    {"name", "prompt", "schedule", "enabled", "delete_after_run", "timezone", "max_retries",
     "timeout_secs", "session_mode", "user_id", "misfire_policy", "description", "jitter_secs",
     "overlap", "max_instances", "pause_after_failures", "start_at", "end_at", "max_runs",
     "stale_after_secs", "budget_usd_per_day", "budget_usd_per_month", "budget_tokens_per_day"}
)  # fmt: skip
"""The user fields the card shows in words of its own; any other declared one shows as its
view has it."""


def limit_rows(job: CronJob, tz: str) -> list[tuple[str, str]]:
    """The card's rows of a job's own limits: failures in a row, window, runs, staleness."""
    pause = job.pause_after_failures
    so_far = f" ({job.consecutive_failures} so far)"
    rows = [("pause after", f"{pause} failed runs in a row{so_far}" if pause else "never")]
    if job.start_at or job.end_at:
        rows.append(("window", f"from {local(job.start_at, tz)} to {local(job.end_at, tz)}"))
    if job.max_runs is not None:
        left = runs_left(job)
        rows.append(("max runs", f"{job.max_runs} ({job.finished_runs} made, {left} left)"))
    if job.stale_after_secs is not None:
        stale = format_duration_ms(round(job.stale_after_secs * 1000))
        rows.append(("stale after", f"{stale} (a run that would start later is skipped)"))
    if job.held_until is not None:
        rows.append(("held until", f"{local(job.held_until, tz)} (by its model provider)"))
    return rows


def _declared_rows(view: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for f in user_fields():
        key = f.view_key
        if f.name not in CARD_FIELDS and key is not None and key in view:
            rows.append((f.name.replace("_", " "), _shown(view[key])))
    return rows


def _shown(value: object) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):  # a list field: its entries
        return ", ".join(str(v) for v in value)
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _model_text(job: CronJob) -> str:
    """The job's model, fallbacks and escalation in a line (``-``: ``[executor] model``)."""
    text = job.model or "[executor] model"
    if job.fallback_models:
        text += f", falls back to {', '.join(job.fallback_models)}"
    if job.escalate_to:
        text += f", escalates to {job.escalate_to}"
    return text


def _preview(text: str | None) -> str | None:
    if text is None or len(text) <= PREVIEW_CHARS:
        return text
    return text[: PREVIEW_CHARS - 1] + "…"


async def jobs_next(
    config: AgentConfig, display_tz: str | None, args: argparse.Namespace, now: datetime
) -> Output:
    tz = check_zone(args.tz or display_tz or config.store_settings.default_timezone)
    schedule = Schedule.cron(args.expr)
    fires = fires_after(schedule, tz, now, args.count)
    human = schedule_human(schedule, tz)
    data = {  # the shape of the cron_next tool (GET /api/next); schedule_human: its old name
        "expression": args.expr,
        "in_words": human,
        "timezone": tz,
        "next_runs": [iso(t, tz) for t in fires],
        "schedule_human": human,
    }
    out = Output(data, "table", f"Next runs of {args.expr}")
    out.header = f"{args.expr}  ({human}, {tz})"
    out.columns = ["#", "TIME", "FROM NOW"]
    out.rows = [[str(i), local(t, tz), relative(t, now)] for i, t in enumerate(fires, 1)]
    return out


def _changed(c: Context, job: CronJob, message: str) -> dict[str, Any]:
    """What ``add`` and ``edit`` answer: the job's view, with ``job_name`` and the message."""
    return job_json(job, c.tz(job.timezone)) | {"job_name": job.name, "message": message}


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
    data = _changed(c, job, message)
    if fields.when is not None:  # what the words were understood as, saved at once
        understood = phrases.for_job(fields.when, job)
        data["interpretation"] = understood.json()
        message = "\n".join([f"Job '{job.name}' added.", *understood.lines()])
        data["message"] = message
    if warning := await c.ops.scheduler_warning():
        print(f"warning: {warning}", file=sys.stderr)
        data["warning"] = warning
    return Output(data, "text", "Job Added", text=message)


def jobs_add_dry_run(
    config: AgentConfig, display_tz: str | None, args: argparse.Namespace, now: datetime
) -> Output:
    """``jobs add --dry-run``: the job checked as the store would check it and what its
    schedule was understood as, without opening the store (nothing is saved)."""
    fields = fields_from(args, name=args.name)
    if fields.timezone is None and display_tz:
        fields = dataclasses.replace(fields, timezone=display_tz)
    settings = config.store_settings
    spec = jobfields.job_spec(
        fields, now=now, default_timezone=settings.default_timezone, user_id=None
    )
    job = planning.new_job(spec, to_ms(now), settings).to_public()  # the store's own checks
    data: dict[str, Any] = {"dry_run": True, "job_name": job.name}
    if fields.when is not None:
        understood = phrases.for_job(fields.when, job)
        data["interpretation"] = understood.json()
        shown = understood.lines()
    else:
        tz, fires = display_tz or job.timezone, job_fires(job, 5)
        shown = [f"Schedule: {schedule_human(job.schedule, job.timezone)}", "Next runs:"]
        shown += [f"  {local(t, tz)}" for t in fires]
        data["next_runs"] = [iso(t, tz) for t in fires]
    preview = preview_job(job, PreviewSettings.of(config), settings, now=now)
    data["preview"] = preview.json()
    message = "\n".join([f"Dry run: job '{job.name}' not saved.", *shown, *preview.lines()])
    data["message"] = message
    return Output(data, "text", "Dry Run", text=message)


async def jobs_edit(c: Context, args: argparse.Namespace) -> Output:
    if args.dry_run:
        preview = await c.ops.preview(LOCAL_ADMIN, fields_from(args), name=args.name)
        text = "\n".join([f"Dry run: job '{preview.job.name}' not changed.", *preview.lines()])
        data = {"dry_run": True, "job_name": preview.job.name, "preview": preview.json()}
        return Output({**data, "message": text}, "text", "Dry Run", text=text)
    job = await c.ops.update(LOCAL_ADMIN, args.name, fields_from(args))
    next_run = when(job.next_fire_at, c.tz(job.timezone), c.now())
    message = f"Job '{job.name}' updated; next run {next_run}"
    return Output(_changed(c, job, message), "text", "Job Updated", text=message)


async def jobs_snooze(c: Context, args: argparse.Namespace) -> Output:
    job = await c.ops.snooze(LOCAL_ADMIN, args.name, args.duration)
    next_run = when(job.next_fire_at, c.tz(job.timezone), c.now())
    message = f"Job '{job.name}' snoozed; next run {next_run}, then as scheduled"
    return Output(_changed(c, job, message), "text", "Job Snoozed", text=message)


async def jobs_retry(c: Context, args: argparse.Namespace) -> Output:
    job, occurrence, attempt = await c.ops.retry(LOCAL_ADMIN, args.run_id)
    at = occurrence.astimezone(zone(c.tz(job.timezone))).isoformat()
    message = f"Job '{job.name}': the occurrence of {at} runs again now, as attempt {attempt}"
    if warning := await c.ops.scheduler_warning():
        message += f"\nwarning: {warning}"
    data = _changed(c, job, message)
    data["retry"] = {
        "run_id": args.run_id,
        "occurrence": occurrence.isoformat(),
        "attempt": attempt,
    }
    return Output(data, "text", "Run Retried", text=message)


async def jobs_enable(c: Context, args: argparse.Namespace) -> Output:
    enabled = args.command == "enable"
    jobs = await find_jobs(c, args.names)
    for job in jobs:
        check_switchable(job, enabled)
    verb = "enabled" if enabled else "disabled"
    lines = []
    for job in jobs:
        if enabled:
            after = await c.store.enable_job(job.id)
        else:
            after = await c.store.disable_job(job.id)
        if enabled and not after.enabled:  # it has made its max_runs, or its window is over
            lines.append(f"Job '{job.name}' stays disabled: {after.paused_reason}")
        else:
            lines.append(f"Job '{job.name}' has been {verb}")
    names = [j.name for j in jobs]
    message = "\n".join(lines)
    data: dict[str, Any] = {"jobs": names, "enabled": enabled, "message": message}
    if len(names) == 1:
        data["job_name"] = names[0]
    return Output(data, "text", f"Job {verb.capitalize()}", text=message)


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
            nothing = "Nothing removed"
            return Output({"removed": [], "message": nothing}, "text", "Jobs Removed", text=nothing)
    for job in jobs:
        await c.store.remove_job(job.id)
    message = "\n".join(f"Job '{n}' has been removed" for n in names)
    return Output({"removed": names, "message": message}, "text", "Jobs Removed", text=message)
