"""The WebSocket protocol: pure decoding, validation and encoding (no I/O).

Requests:  ``{"id": <any>, "type": "cron.add", ...fields}``, ``{"type": "replay", "since": N}``
and ``{"type": "subscribe", "events": ["notification", "run.started"]}`` (the event types
this connection gets, live and in replays; ``notification`` only, by default).
Responses: ``{"id", "ok": true, "data": {...}}`` or ``{"id", "ok": false, "error": {"code",
"message"}}``. Events: ``{"type": "notification", "event_id", "job_name", "session_id",
"result_preview", "success", "run_id", "job_id", "status", "recovered", "ts"}`` (``recovered``:
the first success of a ``notify = on_failure`` job after a failure; a silent or suppressed run
sends none) and, for subscribers,
``{"type": "run.started", "event_id", "job_name", "run_id", "job_id", "attempt", "trigger",
"scheduled_for", "ts"}`` (always before the run's notification) and ``{"type": "run.finished",
"event_id", "job_name", "run_id", "job_id", "status", "silent", "suppressed", "reason",
"recovered", "notice", "attempt", "trigger", "scheduled_for", "ts"}`` (every finished run,
delivered or not, after its notification if it has one).

Numbers from clients are bounded here (``since`` an event id up to 2**63-1, ``limit`` 1-200),
so nothing larger ever reaches the store; every string in a request (the ``id`` too) is text
that can be stored and sent back (no lone surrogate such as ``"\\ud800"``, no NUL), else the
answer is ``invalid``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starpod_cron import Delivery, InvalidInput
from starpod_cron.inputrules import check_all_text
from starpod_cron.routing import NOTIFICATION, RUN_FINISHED, RUN_STARTED
from starpod_cron.tools import TOOLS
from starpod_cron.views import job_json, run_json

__all__ = ["job_json", "run_json"]  # the answers' shapes, shared with the agent tools

MAX_EVENT_ID = 2**63 - 1
MAX_RUNS = 200

# "cron.<tool>" for every agent tool (cron.add, cron.pause, cron.next, ...), plus the older
# names cron.enable / cron.disable; the fields each may carry are the tool's parameters
TOOL_OF: dict[str, str] = {
    **{"cron." + name.removeprefix("cron_"): name for name in TOOLS},
    "cron.enable": "cron_resume",
    "cron.disable": "cron_pause",
}
COMMANDS = frozenset({*TOOL_OF, "replay", "chat", "subscribe"})
FIELDS: dict[str, frozenset[str]] = {
    **{kind: frozenset(TOOLS[tool].parameters["properties"]) for kind, tool in TOOL_OF.items()},
    "replay": frozenset({"since"}),
    "chat": frozenset({"text"}),
    "subscribe": frozenset({"events"}),
}
EVENT_TYPES = frozenset({NOTIFICATION, RUN_STARTED, RUN_FINISHED})
DEFAULT_EVENTS = frozenset({NOTIFICATION})
MAX_CHAT_CHARS = 4000


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
    try:
        check_all_text("id", request_id)
    except InvalidInput as exc:
        raise ProtocolError("invalid", f"the request {exc}") from None  # no id to echo
    try:
        check_all_text("the request", message)
    except InvalidInput as exc:
        raise ProtocolError("invalid", str(exc), request_id) from None
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
    text = fields.get("text")
    if kind == "chat" and not (isinstance(text, str) and 0 < len(text.strip()) <= MAX_CHAT_CHARS):
        raise ProtocolError(
            "invalid",
            f'chat needs "text": a message of 1 to {MAX_CHAT_CHARS} characters',
            request_id,
        )
    events = fields.get("events")
    if kind == "subscribe" and not (
        isinstance(events, list)
        and all(isinstance(e, str) for e in events)
        and set(events) <= EVENT_TYPES
    ):
        known = ", ".join(sorted(EVENT_TYPES))
        raise ProtocolError(
            "invalid", f'subscribe needs "events": a list of event types from {known}', request_id
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


def event_type(delivery: Delivery) -> str:
    return str(delivery.payload.get("type", NOTIFICATION))


def event(delivery: Delivery) -> str:
    return json.dumps({**delivery.payload, "event_id": delivery.id}, ensure_ascii=False)
