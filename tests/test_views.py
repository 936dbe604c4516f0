"""The one JSON shape of a job and of a run (views.py), as the WebSocket, the tools, MCP, the
HTTP API and the CLI's --json show them: these keys are a promise to clients."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from starpod_cron.models import CronRun, ModelUsage, RunStatus, RunTrigger
from starpod_cron.schedules import Schedule
from starpod_cron.settings import StoreSettings
from starpod_cron.store import planning
from starpod_cron.store.types import JobSpec
from starpod_cron.views import job_json, models_text, run_json

NOW_MS = 1_800_000_000_000

JOB_KEYS = {
    "model",
    "system_prompt",
    "temperature",
    "max_tokens",
    "fallback_models",
    "escalate_to",
    "tools",
    "id",
    "name",
    "prompt",
    "schedule",
    "enabled",
    "delete_after_run",
    "timezone",
    "created_at",
    "updated_at",
    "last_run",
    "retry_count",
    "max_retries",
    "last_error",
    "retry_at",
    "timeout_secs",
    "session_mode",
    "user_id",
    "misfire_policy",
    "last_status",
    "run_count",
    "description",
    "jitter_secs",
    "next_run",
    "overlap",
    "max_instances",
    "running",
    "notify",
    "context",
    "pause_after_failures",
    "start_at",
    "end_at",
    "max_runs",
    "stale_after_secs",
    "budget_usd_per_day",
    "budget_usd_per_month",
    "budget_tokens_per_day",
    "consecutive_failures",
    "paused_reason",
    "finished_runs",
    "silent_runs",
    "suppressed_runs",
    "deliver_to",
    "alerts_to",
    "held_until",
}
RUN_KEYS = {
    "model",
    "usages",
    "id",
    "run_id",
    "job_id",
    "job_name",
    "status",
    "handed_back",
    "trigger",
    "attempt",
    "scheduled_for",
    "started_at",
    "completed_at",
    "duration_ms",
    "late_ms",
    "result",
    "error",
    "session_id",
    "prompt_tokens",
    "completion_tokens",
    "silent",
    "suppressed",
    "suppressed_reason",
    "notice",
    "cost_usd",
}


def _job() -> planning.JobRecord:
    spec = JobSpec("digest", "write it", Schedule.cron("0 9 * * 1-5"), timezone="Europe/Rome")
    return planning.new_job(spec, NOW_MS, StoreSettings())


def test_a_job_has_exactly_its_promised_keys_and_values() -> None:
    job = _job().to_public()
    data = job_json(job)
    assert set(data) == JOB_KEYS
    assert data["enabled"] is True
    assert data["schedule"] == {
        "kind": "cron",
        "expression": "0 9 * * 1-5",
        "text": "cron 0 9 * * 1-5",
        "in_words": "At 09:00, Monday through Friday",
    }
    assert data["session_mode"] == "isolated"
    assert data["overlap"] == "skip"
    assert data["last_status"] is None
    assert data["timeout_secs"] == 7200
    assert data["running"] == 0
    assert data["next_run"] == job.next_fire_at.isoformat()  # type: ignore[union-attr]
    assert data["created_at"] == "2027-01-15T08:00:00+00:00"


def test_times_of_a_job_can_be_shown_in_a_zone() -> None:
    job = _job().to_public()
    rome = job_json(job, "Europe/Rome")
    assert rome["created_at"] == "2027-01-15T09:00:00+01:00"
    assert datetime.fromisoformat(rome["next_run"]) == job.next_fire_at


def test_a_run_is_id_with_run_id_as_its_alias_and_keeps_its_names() -> None:
    at = datetime(2027, 1, 15, 8, tzinfo=UTC)
    run = CronRun(
        id="r1",
        job_id="j1",
        job_name="digest",
        scheduled_for=at,
        started_at=at,
        completed_at=at,
        status=RunStatus.FAILED,
        attempt=1,
        trigger=RunTrigger.SCHEDULE,
        result_summary=None,
        error="boom",
        session_id=None,
        duration_ms=5,
    )
    data = run_json(run)
    assert set(data) == RUN_KEYS
    assert data["id"] == data["run_id"] == "r1"
    assert (data["status"], data["job_name"], data["error"]) == ("failed", "digest", "boom")
    assert run_json(run, tz="Europe/Rome")["started_at"] == "2027-01-15T09:00:00+01:00"
    assert (data["model"], data["usages"], models_text(run)) == (None, [], "-")
    escalated = replace(
        run,
        model="strong",
        usages=(ModelUsage("cheap", 10, 2), ModelUsage("strong", 10, 40)),
    )
    assert models_text(escalated) == "cheap → strong"
    assert run_json(escalated)["usages"][1] == {
        "model": "strong",
        "prompt_tokens": 10,
        "completion_tokens": 40,
        "cached_tokens": None,
    }
