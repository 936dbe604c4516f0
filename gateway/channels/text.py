"""What a destination's message says, decided once for every kind that shows text to people
(Slack, Discord, email): a title (``[job] done``), the body (the full result, or the error,
or the notice) and a line of details, from a delivery's payload::

    {"type": "run.finished" | "run.started" | "job.notice", "timestamp": ISO-8601,
     "data": {"job_id", "job_name", "run_id", "status", "success", "scheduled_for",
              "completed_at", "result", "error", "cost_usd", "notice"}}

and :func:`split_text`, which cuts a long body into pieces within a kind's limit, the same way
every time (a restart resumes after the last piece sent, so the pieces must not move).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

RUN_FINISHED = "run.finished"
RUN_STARTED = "run.started"
JOB_NOTICE = "job.notice"
MARKS = {"success": "done", "timeout": "timed out", "failed": "failed"}


@dataclass(frozen=True, slots=True)
class Message:
    """A delivery as people read it."""

    title: str
    """``[job] done``, ``[job] failed``, ``[job] started``, ``[job] notice``: one line."""
    body: str
    """The full result (or error, or notice); may be empty."""
    details: str
    """One line: the run, when it was due, its cost."""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def mark(kind: str, data: Mapping[str, Any]) -> str:
    """What happened, in a word or two: ``done``, ``failed``, ``timed out``, ``started``…"""
    if kind == RUN_STARTED:
        return "started"
    if kind == JOB_NOTICE:
        return "notice"
    if data.get("success") is True:
        return "done"
    status = _text(data.get("status"))
    return MARKS.get(status, status.replace("_", " ") or "failed")


def message_of(payload: Mapping[str, Any]) -> Message:
    """The title, body and details of a delivery's payload (missing fields are left out)."""
    kind = _text(payload.get("type")) or RUN_FINISHED
    raw = payload.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    name = _one_line(_text(data.get("job_name"))) or _text(data.get("job_id")) or "job"
    title = f"[{name}] {mark(kind, data)}"
    result, error = _text(data.get("result")), _text(data.get("error"))
    if kind == JOB_NOTICE:
        body = _text(data.get("notice"))
    elif kind == RUN_STARTED:
        body = ""
    elif data.get("success") is True:
        body = result
    else:
        body = "\n\n".join(part for part in (error, result) if part)
    details = []
    if run_id := _text(data.get("run_id")):
        details.append(f"run {run_id}")
    if scheduled := _text(data.get("scheduled_for")):
        details.append(f"scheduled for {scheduled}")
    cost = data.get("cost_usd")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        details.append(f"cost ${cost:.4f}")
    return Message(title, body.strip("\n"), " · ".join(details))


def split_text(text: str, limit: int, cost: Callable[[str], int] = len) -> list[str]:
    """Pieces of ``text`` whose ``cost`` (their length as the service counts it, e.g. after
    escaping) is at most ``limit``, cut at a newline in the second half of a piece where there
    is one, else at a space (that one separator dropped), else anywhere; at least one piece
    (``""`` for no text). ``cost`` is per character (a string costs the sum of its
    characters')."""
    pieces: list[str] = []
    start = 0
    while start < len(text):
        spent, end = 0, start
        while end < len(text) and spent + (step := cost(text[end])) <= limit:
            spent += step
            end += 1
        if end == len(text):
            pieces.append(text[start:])
            break
        if end == start:  # one character costs more than the limit: it cannot fit anywhere
            raise ValueError(f"a character costs more than the limit of {limit}")
        middle = start + (end - start) // 2
        cut = text.rfind("\n", middle, end)
        if cut <= start:
            cut = text.rfind(" ", middle, end)
        cut = end if cut <= start else cut
        pieces.append(text[start:cut])
        start = cut + 1 if text[cut] in "\n " else cut  # the separator cut at is dropped
    return pieces or [""]
