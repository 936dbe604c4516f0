"""Where a finished run's outcome goes: the store's delivery planner.

Destinations are strings: ``ws:user:<id>`` (a user's WebSocket clients), ``ws:agent``
(agent-level jobs, seen by admins), ``tg:<chat>`` or ``tg:<chat>:<thread>`` (a Telegram chat or
forum topic), ``dest:<name>`` (a ``[destinations.NAME]`` of ``agent.toml``: webhook, Slack,
Discord) or ``dest:<name>:<address>`` (email), the last two with :func:`destination_payload`.
A channel owns a prefix (:func:`serves`). The planner runs inside the transaction that records
the run (so it is pure) in every process that finishes runs: the gateway's scheduler and
``starpod-cron jobs run`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .destinations import JOB_NOTICE, Destinations, Target
from .destinations import RUN_FINISHED as RESULT
from .destinations import RUN_STARTED as STARTED
from .models import CronJob, CronRun, DeliverySpec, RunStatus
from .notify import summarize
from .store.quiet import recovered

WS_PREFIX = "ws:"
TELEGRAM_PREFIX = "tg:"
WS_AGENT = "ws:agent"
RUN_STARTED = "run.started"
RUN_FINISHED = "run.finished"
NOTIFICATION = "notification"
DELIVERED = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT})
"""The statuses whose result reaches the job's destinations (unless suppressed)."""
TELEGRAM_TEXT_LIMIT = 16_000  # at most four Telegram messages per result


def serves(prefix: str, destination: str) -> bool:
    """Whether the channel owning ``prefix`` sends to ``destination``: a prefix ending in
    ``:`` (``tg:``) takes everything after it; any other (``dest:ops``) takes itself and
    what follows a ``:`` (``dest:ops:me@example.org``), never ``dest:ops-hook``. The outbox's
    claims (``claim_deliveries``) use the same rule in SQL."""
    if prefix.endswith(":"):
        return destination.startswith(prefix)
    return destination == prefix or destination.startswith(prefix + ":")


def destination_payload(
    kind: str, job: CronJob, run: CronRun, notice: str | None = None
) -> dict[str, Any]:
    """What every named destination is sent (a webhook's body; Slack, Discord and email
    format from it): ``kind`` is ``run.finished``, ``run.started`` or ``job.notice``; the
    result is the run's whole text."""
    finished = run.completed_at is not None
    success = run.status is RunStatus.SUCCESS
    return {
        "type": kind,
        "timestamp": (run.completed_at or run.started_at).isoformat(),
        "data": {
            "job_id": job.id,
            "job_name": job.name,
            "run_id": run.id,
            "status": run.status.value,
            "success": success if finished else None,
            "scheduled_for": run.scheduled_for.isoformat(),
            "completed_at": run.completed_at.isoformat() if run.completed_at else None,
            "result": run.result_summary,
            "error": run.error,
            "cost_usd": run.cost_usd,  # set by the completing transaction before planning
            "notice": notice,
        },
    }


def ws_user(user_id: str) -> str:
    return f"ws:user:{user_id}"


def telegram_destination(chat_id: int, thread_id: int | None = None) -> str:
    return f"tg:{chat_id}" if thread_id is None else f"tg:{chat_id}:{thread_id}"


def telegram_text(job_name: str, run: CronRun, text: str, mark: str | None = None) -> str:
    if mark is None:
        mark = {RunStatus.SUCCESS: "done", RunStatus.TIMEOUT: "timed out"}.get(run.status, "failed")
    body = text if len(text) <= TELEGRAM_TEXT_LIMIT else text[:TELEGRAM_TEXT_LIMIT] + "\n[…]"
    return f"[{job_name}] {mark}\n\n{body}".rstrip()


def notification(job: CronJob, run: CronRun) -> dict[str, Any]:
    """The WebSocket event about a finished run (``event_id`` is added when it is sent);
    ``recovered``: the first success of a ``notify = on_failure`` job after a failure."""
    success = run.status is RunStatus.SUCCESS
    text = (run.result_summary if success else run.error) or ""
    return {
        "type": NOTIFICATION,
        "job_name": job.name,
        "session_id": run.session_id or "",
        "result_preview": summarize(text),
        "success": success,
        "run_id": run.id,
        "job_id": job.id,
        "status": run.status.value,
        "recovered": recovered(job, run),
        "ts": (run.completed_at or run.started_at).isoformat(),
    }


def notice_event(job: CronJob, run: CronRun, notice: str) -> dict[str, Any]:
    """The WebSocket notification saying what a run did to its job (paused, ended, stale):
    a ``notification`` with ``notice`` set, so every client that shows results shows it."""
    return notification(job, run) | {
        "result_preview": summarize(notice),
        "success": False,
        "recovered": False,
        "notice": notice,
    }


def finished_event(job: CronJob, run: CronRun) -> dict[str, Any]:
    """The WebSocket event about every finished run, delivered or not (for subscribers)."""
    return {
        "type": RUN_FINISHED,
        "job_name": job.name,
        "run_id": run.id,
        "job_id": job.id,
        "status": run.status.value,
        "silent": run.silent,
        "suppressed": run.suppressed is not None,
        "reason": run.suppressed,
        "recovered": recovered(job, run),
        "notice": run.notice,
        "attempt": run.attempt,
        "trigger": run.trigger.value,
        "scheduled_for": run.scheduled_for.isoformat(),
        "ts": (run.completed_at or run.started_at).isoformat(),
    }


def started_event(job: CronJob, run: CronRun) -> dict[str, Any]:
    """The WebSocket event about a run that started (for clients that subscribe to it)."""
    return {
        "type": RUN_STARTED,
        "job_name": job.name,
        "run_id": run.id,
        "job_id": job.id,
        "attempt": run.attempt,
        "trigger": run.trigger.value,
        "scheduled_for": run.scheduled_for.isoformat(),
        "ts": run.started_at.isoformat(),
    }


class DeliveryRouter:
    """The store's delivery planner: every finished run goes to its WebSocket audience (a
    broadcast event: every gateway node shows it to its own clients); a run
    of a job created in a Telegram chat also goes to that chat; a run of an agent-level job
    also goes to ``notify_chat_ids``.

    A run whose result is ``suppressed`` (a silent answer, the job's ``notify`` policy) sends
    its result nowhere; a run with a ``notice`` (it paused or ended its job, or is the first of
    a stretch of stale skips) says so to the same places, once; every finished run is also a
    ``run.finished`` event for subscribers (unless ``finished_events`` is off)."""

    def __init__(
        self,
        *,
        notify_chat_ids: Sequence[int] = (),
        finished_events: bool = True,
        destinations: Destinations | None = None,
    ) -> None:
        self._notify_chat_ids = list(notify_chat_ids)
        self._finished_events = finished_events
        self._destinations = destinations or Destinations()

    def started(self, job: CronJob, run: CronRun) -> list[DeliverySpec]:
        """The start planner: a ``run.started`` event for the run's WebSocket audience, and
        for the job's ``deliver_to`` destinations that list ``run.started``."""
        specs = [DeliverySpec(_audience(job), started_event(job, run), broadcast=True)]
        for target in self._destinations.targets(job.deliver_to):
            if STARTED in target.events:
                payload = (
                    destination_payload(STARTED, job, run)
                    if target.structured
                    else {"text": f"[{job.name}] started"}
                )
                specs.append(DeliverySpec(target.address, payload))
        return _once(specs)

    def __call__(self, job: CronJob, run: CronRun) -> list[DeliverySpec]:
        audience = _audience(job)
        specs: list[DeliverySpec] = []
        if run.suppressed is None and run.status in DELIVERED:
            specs.append(DeliverySpec(audience, notification(job, run), broadcast=True))
            success = run.status is RunStatus.SUCCESS
            text = (run.result_summary if success else run.error) or ""
            mark = "recovered" if recovered(job, run) else None
            message = {"text": telegram_text(job.name, run, text, mark)}
            specs.extend(DeliverySpec(d, message) for d in self._chats(job))
            result = destination_payload(RESULT, job, run)
            entries = self._alerts(job) if not success else ()
            specs.extend(
                DeliverySpec(target.address, _shaped(target, result, message))
                for target in self._destinations.targets(entries or job.deliver_to)
                if RESULT in target.events
            )
        if run.notice:
            specs.append(DeliverySpec(audience, notice_event(job, run, run.notice), True, "notice"))
            message = {
                "text": telegram_text(job.name, run, run.notice, "notice"),
                "event": "notice",
            }
            specs.extend(DeliverySpec(d, message, event="notice") for d in self._chats(job))
            said = destination_payload(JOB_NOTICE, job, run, run.notice)
            for target in self._destinations.targets(self._alerts(job) or job.deliver_to):
                if JOB_NOTICE in target.events:
                    payload = _shaped(target, said, message)
                    specs.append(DeliverySpec(target.address, payload, event="notice"))
        if self._finished_events:
            specs.append(DeliverySpec(audience, finished_event(job, run), True, "report"))
        return _once(specs)

    def _alerts(self, job: CronJob) -> Sequence[str]:
        """Where failure and pause alerts go instead of ``deliver_to`` (empty: there)."""
        return job.alerts_to or self._destinations.alerts_to

    def _chats(self, job: CronJob) -> list[str]:
        """The Telegram chats of ``job``: the one it was created in, or ``notify_chat_ids``
        for an agent-level job."""
        origin = job.origin or {}
        chat = origin.get("telegram_chat_id")
        if isinstance(chat, int) and not isinstance(chat, bool):
            thread = origin.get("thread_id")
            return [telegram_destination(chat, thread if isinstance(thread, int) else None)]
        if job.user_id is None:
            return [telegram_destination(c) for c in self._notify_chat_ids]
        return []


def _shaped(target: Target, payload: dict[str, Any], text: dict[str, Any]) -> dict[str, Any]:
    """A named destination's JSON payload, or Telegram's text for a ``tg:`` one."""
    return payload if target.structured else text


def _once(specs: list[DeliverySpec]) -> list[DeliverySpec]:
    """One delivery per (destination, event): a chat named twice (the job's origin and its
    ``deliver_to``) hears once."""
    seen: set[tuple[str, str]] = set()
    kept: list[DeliverySpec] = []
    for spec in specs:
        key = (spec.destination, spec.event)
        if key not in seen:
            seen.add(key)
            kept.append(spec)
    return kept


def _audience(job: CronJob) -> str:
    return ws_user(job.user_id) if job.user_id else WS_AGENT
