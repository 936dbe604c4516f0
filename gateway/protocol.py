"""The WebSocket protocol: pure decoding, validation and encoding (no I/O).

Requests:  ``{"id": <any>, "type": "cron.add", ...fields}`` and ``{"type": "replay", "since": N}``
Responses: ``{"id", "ok": true, "data": {...}}`` or ``{"id", "ok": false, "error": {"code",
"message"}}``. Events: ``{"type": "notification", "event_id", "job_name", "session_id",
"result_preview", "success", "run_id", "job_id", "status", "ts"}``.

Numbers from clients are bounded here (``since`` an event id up to 2**63-1, ``limit`` 1-200),
so nothing larger ever reaches the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starpod_cron import CronJob, CronRun, Delivery

MAX_EVENT_ID = 2**63 - 1
MAX_RUNS = 200

COMMANDS = frozenset(
    {
        "cron.add",
        "cron.list",
        "cron.get",
        "cron.update",
        "cron.remove",
        "cron.enable",
        "cron.disable",
        "cron.run",
        "cron.runs",
        "replay",
    }
)
# fields each command may carry besides "id" and "type"
FIELDS: dict[str, frozenset[str]] = {
    "cron.add": frozenset(
        {
            "name",
            "prompt",
            "cron",
            "every",
            "at",
            "in",
            "timezone",
            "max_retries",
            "timeout_secs",
            "session_mode",
            "delete_after_run",
            "misfire_policy",
            "user_id",
            "description",
        }
    ),
    "cron.list": frozenset(),
    "cron.get": frozenset({"name"}),
    "cron.update": frozenset(
        {
            "name",
            "rename",
            "prompt",
            "cron",
            "every",
            "at",
            "in",
            "timezone",
            "enabled",
            "max_retries",
            "timeout_secs",
            "session_mode",
            "delete_after_run",
            "misfire_policy",
            "description",
        }
    ),
    "cron.remove": frozenset({"name"}),
    "cron.enable": frozenset({"name"}),
    "cron.disable": frozenset({"name"}),
    "cron.run": frozenset({"name"}),
    "cron.runs": frozenset({"name", "limit"}),
    "replay": frozenset({"since"}),
}


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Request:
    id: Any
    type: str
    fields: dict[str, Any]


def decode(frame: str | bytes) -> Request:
    """Parse and validate one client frame; ProtocolError says what is wrong. (Frames over
    ``max_frame_bytes`` never get here: the server closes the connection with 1009.)"""
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_request", "a request must be a JSON object")
    request_id = message.get("id")
    kind = message.get("type")
    if kind not in COMMANDS:
        raise ProtocolError(
            "unknown_type",
            f"unknown type {kind!r}; known: " + ", ".join(sorted(COMMANDS)),
            request_id,
        )
    fields = {k: v for k, v in message.items() if k not in ("id", "type")}
    unknown = set(fields) - FIELDS[kind]
    if unknown:
        raise ProtocolError(
            "invalid", f"unknown field(s) for {kind}: " + ", ".join(sorted(unknown)), request_id
        )
    needs_name = "name" in FIELDS[kind] and kind != "cron.add"
    if needs_name and not isinstance(fields.get("name"), str):
        raise ProtocolError("invalid", f'{kind} needs a job name ("name")', request_id)
    since = fields.get("since")
    if kind == "replay" and not _whole(since, 0, MAX_EVENT_ID):
        raise ProtocolError(
            "invalid", f'replay needs "since": an event id from 0 to {MAX_EVENT_ID}', request_id
        )
    if "limit" in fields and not _whole(fields["limit"], 1, MAX_RUNS):
        raise ProtocolError(
            "invalid", f'"limit" must be a whole number from 1 to {MAX_RUNS}', request_id
        )
    return Request(request_id, kind, fields)


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def ok(request_id: Any, data: Any) -> str:
    return json.dumps({"id": request_id, "ok": True, "data": data}, ensure_ascii=False)


def error(request_id: Any, code: str, message: str) -> str:
    return json.dumps(
        {"id": request_id, "ok": False, "error": {"code": code, "message": message}},
        ensure_ascii=False,
    )


def event(delivery: Delivery) -> str:
    return json.dumps({**delivery.payload, "event_id": delivery.id}, ensure_ascii=False)


def job_json(job: CronJob) -> dict[str, Any]:
    kind, expr, _ = job.schedule.to_storage()
    return {
        "id": job.id,
        "name": job.name,
        "prompt": job.prompt,
        "schedule": {"kind": kind, "expression": expr},
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
