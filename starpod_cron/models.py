"""The value types of the public API. All timestamps are aware UTC datetimes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from .execution import JobContext as JobContext
from .execution import JobResult as JobResult
from .execution import ModelOptions as ModelOptions
from .execution import ModelUsage as ModelUsage
from .execution import SessionMode as SessionMode
from .nodemodels import GONE_AFTER_HEARTBEATS as GONE_AFTER_HEARTBEATS
from .nodemodels import DestinationRefusal as DestinationRefusal
from .nodemodels import Lease as Lease
from .nodemodels import NodeInfo as NodeInfo
from .nodemodels import NodeStatus as NodeStatus
from .runstatus import RunStatus as RunStatus

if TYPE_CHECKING:
    from .schedules import Schedule


class MisfirePolicy(enum.StrEnum):
    """What to do with occurrences missed while no scheduler was running.

    ``run_once``: one catch-up run (missed occurrences are coalesced), then continue on schedule.
    ``skip``: record one ``skipped`` run for the missed occurrences, then continue on schedule."""

    RUN_ONCE = "run_once"
    SKIP = "skip"


class Overlap(enum.StrEnum):
    """What happens to a job's fires while one of its runs is still going.

    ``skip``: never concurrent with itself; fires missed while it runs collapse into one
    catch-up run afterwards. ``queue``: every missed fire runs afterwards, oldest first, one
    at a time (at most ``queue_limit`` wait; older ones are recorded as one skipped run).
    ``allow``: fires start while earlier runs go on, up to ``max_instances`` at once.
    Each occurrence still runs exactly once."""

    SKIP = "skip"
    QUEUE = "queue"
    ALLOW = "allow"


class NotifyPolicy(enum.StrEnum):
    """Which finished runs of a job are delivered (every run is recorded either way).

    ``always``: every run; ``on_failure``: failures, and the first success after a failure
    (as "recovered"); ``on_change``: a result that differs from the job's last delivered one
    (compared after trimming and collapsing whitespace; the first is always delivered);
    ``never``: history only.
    """

    ALWAYS = "always"
    ON_FAILURE = "on_failure"
    ON_CHANGE = "on_change"
    NEVER = "never"


class ContextMode(enum.StrEnum):
    """What a run is given of the job's past: ``none``, or ``last``: the previous successful
    result and its time."""

    NONE = "none"
    LAST = "last"


class RunTrigger(enum.StrEnum):
    """Why a run exists: a scheduled occurrence, a retry of one, a manual run, or a past
    occurrence run by ``jobs backfill``."""

    SCHEDULE = "schedule"
    RETRY = "retry"
    MANUAL = "manual"
    BACKFILL = "backfill"


@dataclass(frozen=True, slots=True)
class CronJob:
    # fields: CronJob (generated from starpod_cron/fields.py by python -m starpod_cron.fieldgen)
    id: str
    """The job's id: 32 lowercase hex characters."""
    name: str
    """A short name, unique for its owner, without '/', '\\' or control characters."""
    prompt: str
    """What the agent is asked to do at each run, written as an instruction."""
    schedule: Schedule
    """When the job fires: a cron expression, an interval or one time."""
    enabled: bool
    """false pauses the job."""
    delete_after_run: bool
    """For a one-time job: delete it after it succeeds (else it is disabled)."""
    timezone: str
    """IANA time zone such as "Europe/Rome", in which times and cron expressions are read."""
    created_at: datetime
    """When the job was created."""
    updated_at: datetime
    """When the job last changed."""
    last_run_at: datetime | None
    """When its last run started."""
    next_run_at: datetime | None
    """The time of its next occurrence (without jitter)."""
    retry_count: int
    """Retries used since the last success."""
    max_retries: int
    """Retries after a failed run before giving up."""
    last_error: str | None
    """The error of its last failed run."""
    retry_at: datetime | None
    """When the pending retry runs."""
    timeout_secs: float
    """A run taking longer than this many seconds is stopped and recorded as timed out."""
    session_mode: SessionMode
    """isolated: every run starts fresh; main: runs continue the user's one conversation with the
    agent."""
    user_id: str | None
    """The user who owns the job. Admins only."""
    misfire_policy: MisfirePolicy
    """Fires missed while no scheduler ran: run_once runs one catch-up; skip records them as
    skipped."""
    last_status: RunStatus | None
    """How its last run ended."""
    run_count: int
    """Runs recorded for the job."""
    running_run_id: str | None
    """A run of the job in flight now."""
    origin: dict[str, Any] | None = None
    """Where the job was created (e.g. a Telegram chat), for routing its results."""
    description: str | None = None
    """What the job is for, for people."""
    jitter_secs: float = 0
    """Fire each occurrence up to this many seconds late (a fixed offset per occurrence), to
    spread jobs that share a time."""
    next_fire_at: datetime | None = None
    """When the next occurrence actually fires: its time plus its jitter."""
    overlap: Overlap = Overlap.SKIP
    """Fires due while a run is still going: skip collapses them into one catch-up run; queue
    runs each afterwards, in order; allow runs them alongside, up to max_instances."""
    max_instances: int = 1
    """With overlap allow: runs of the job at once."""
    running_count: int = 0
    """Runs of the job in flight now."""
    notify: NotifyPolicy = NotifyPolicy.ALWAYS
    """Which runs are delivered: always; on_failure (failures, and the first success after one);
    on_change (a result different from the last delivered one); never (history only)."""
    context: ContextMode = ContextMode.NONE
    """last: each run is given the job's previous successful result and its time; none: every run
    starts from nothing."""
    pause_after_failures: int = 0
    """Pause the job after this many failed or timed-out runs in a row (0: never)."""
    start_at: datetime | None = None
    """No fire before this time (an interval keeps its anchor)."""
    end_at: datetime | None = None
    """No fire after this time; then the job is disabled (paused_reason 'ended')."""
    max_runs: int | None = None
    """Runs the job makes (counting runs that ended: success, failed, timeout); then it is
    disabled."""
    stale_after_secs: float | None = None
    """A run that would start later than this after its fire time is skipped, with one message
    per stretch of such skips."""
    consecutive_failures: int = 0
    """Failed or timed-out runs in a row (after retries), since the last success."""
    paused_reason: str | None = None
    """Why the job was disabled by itself (failures in a row, ended, max_runs reached)."""
    finished_runs: int = 0
    """Occurrences whose last attempt ended (success, failed, timeout): counted by max_runs."""
    silent_runs: int = 0
    """Runs that answered the silent token."""
    suppressed_runs: int = 0
    """Runs whose result its notify policy did not deliver."""
    model: str | None = None
    """The model this job's runs ask (openai executor); a job keeps it when [executor] model
    changes."""
    system_prompt: str | None = None
    """The system prompt of this job's runs, instead of [executor] system_prompt."""
    temperature: float | None = None
    """The sampling temperature of this job's model calls, 0 to 2."""
    max_tokens: int | None = None
    """The most tokens one answer of this job's model may have."""
    fallback_models: list[str] | None = None
    """Models asked in order when the job's model does not exist at the provider, or fails with a
    server error on the run's last attempt."""
    escalate_to: str | None = None
    """A stronger model asked, in the same run and with the same messages, when the job's model
    answers beginning with [cron] escalate_token."""
    tools: list[str] | None = None
    """The cron tools a scheduled run of this job may call (as its owner, under the owner's
    limits)."""
    budget_usd_per_day: float | None = None
    """US dollars the job may spend per day (from midnight in its zone): no run starts once its
    runs of the day cost this much."""
    budget_usd_per_month: float | None = None
    """US dollars the job may spend per month (from the 1st in its zone)."""
    budget_tokens_per_day: int | None = None
    """Tokens (prompt + completion) the job may use per day (from midnight in its zone)."""
    deliver_to: list[str] | None = None
    """Also deliver to: [destinations.NAME], telegram:CHAT[:THREAD], email:ADDRESS."""
    alerts_to: list[str] | None = None
    """Failure and pause alerts go here instead of deliver_to (same entries)."""
    held_until: datetime | None = None
    """Until when the provider holds the job (its quota is spent or its wait is longer than a
    run's timeout): then its held occurrence runs again, with the same attempt number."""
    # end of generated fields


@dataclass(frozen=True, slots=True)
class CronRun:
    id: str
    job_id: str
    job_name: str
    scheduled_for: datetime
    started_at: datetime
    completed_at: datetime | None
    status: RunStatus
    attempt: int
    trigger: RunTrigger
    result_summary: str | None
    error: str | None
    session_id: str | None
    duration_ms: int | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    silent: bool = False
    """The answer was the silent token: recorded as a success, delivered nowhere."""
    suppressed: str | None = None
    """Why the result was delivered nowhere (``None``: it was delivered): a silent answer, or
    the job's ``notify`` policy (``"unchanged (notify=on_change)"``)."""
    notice: str | None = None
    """What this run did to its job, said to its destinations even when the result itself is
    suppressed: paused after failures, ended, a stretch of stale skips."""
    cost_usd: float | None = None
    """What the run cost, US dollars (None: unknown, e.g. an unpriced model; see pricing.py)."""
    model: str | None = None
    """The model whose answer is the result (None: no model answered)."""
    usages: tuple[ModelUsage, ...] = ()
    """What each model the run asked used (fallbacks and escalation included)."""

    @property
    def handed_back(self) -> bool:
        """An ``interrupted`` run that never called its executor (claimed ahead, or waiting
        for a slot, when its scheduler stopped): nothing ran, the occurrence runs again."""
        error = self.error or ""
        return self.status is RunStatus.INTERRUPTED and error.startswith(_HANDED_BACK_TEXTS)

    def claimed_ahead(self, now: datetime) -> bool:
        """A ``running`` run whose fire time is still to come (claimed early, started on time)."""
        return self.status is RunStatus.RUNNING and self.started_at > now


HANDED_BACK = "handed back: "
"""How the error of a run handed back at stop begins (:attr:`CronRun.handed_back`)."""
_HANDED_BACK_TEXTS = (HANDED_BACK, "interrupted: the scheduler stopped before the run started")


@dataclass(frozen=True, slots=True)
class SessionMessage:
    """One turn of a ``main``-mode conversation kept in the store."""

    role: str
    content: str
    run_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A dashboard log-in kept in the store (not a conversation: see :class:`SessionMessage`):
    who logged in, with which gateway token (its fingerprint, never the token), and when it
    started, ends and was last used (to the minute)."""

    user_id: str
    token_fingerprint: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime


class DeliveryStatus(enum.StrEnum):
    """``pending`` → ``sending`` → ``delivered`` or ``dead`` for a message the outbox sends;
    ``published`` for a broadcast event, which every gateway node reads from the table and
    shows its own clients (never claimed by an outbox)."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"
    PUBLISHED = "published"


@dataclass(frozen=True, slots=True)
class DeliverySpec:
    """A message to send about a finished run: where to, and what (JSON-serializable).

    ``broadcast`` events (WebSocket notifications) are not sent by one outbox: each gateway
    node tails them from the store in event-id order and offers them to its own clients."""

    destination: str
    payload: dict[str, Any]
    broadcast: bool = False
    event: str = ""
    """The kind of event about the run (a run reaches a destination once per kind): "" for
    the planner's own (``finished`` or ``started``); the router also plans ``report``
    (``run.finished`` for subscribers) and ``notice`` (the job paused, ended, went stale)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the outbox. ``id`` is also the event id clients replay from."""

    id: int
    run_id: str
    job_id: str
    job_name: str
    destination: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    progress: int = 0
    """How many parts of a message sent in pieces already went out."""


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks a :class:`JobUpdate` field that is left unchanged (``None`` is a value for user_id)."""


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """Fields to change on a job; anything left ``UNSET`` keeps its value."""

    # fields: JobUpdate (generated from starpod_cron/fields.py by python -m starpod_cron.fieldgen)
    name: str | _Unset = UNSET
    prompt: str | _Unset = UNSET
    schedule: Schedule | _Unset = UNSET
    enabled: bool | _Unset = UNSET
    delete_after_run: bool | _Unset = UNSET
    timezone: str | _Unset = UNSET
    max_retries: int | _Unset = UNSET
    timeout_secs: float | _Unset = UNSET
    session_mode: SessionMode | _Unset = UNSET
    user_id: str | _Unset | None = UNSET
    misfire_policy: MisfirePolicy | _Unset = UNSET
    description: str | _Unset | None = UNSET
    jitter_secs: float | _Unset = UNSET
    overlap: Overlap | _Unset = UNSET
    max_instances: int | _Unset = UNSET
    notify: NotifyPolicy | _Unset = UNSET
    context: ContextMode | _Unset = UNSET
    pause_after_failures: int | _Unset = UNSET
    start_at: datetime | _Unset | None = UNSET
    end_at: datetime | _Unset | None = UNSET
    max_runs: int | _Unset | None = UNSET
    stale_after_secs: float | _Unset | None = UNSET
    model: str | _Unset | None = UNSET
    system_prompt: str | _Unset | None = UNSET
    temperature: float | _Unset | None = UNSET
    max_tokens: int | _Unset | None = UNSET
    fallback_models: list[str] | _Unset | None = UNSET
    escalate_to: str | _Unset | None = UNSET
    tools: list[str] | _Unset | None = UNSET
    budget_usd_per_day: float | _Unset | None = UNSET
    budget_usd_per_month: float | _Unset | None = UNSET
    budget_tokens_per_day: int | _Unset | None = UNSET
    deliver_to: list[str] | _Unset | None = UNSET
    alerts_to: list[str] | _Unset | None = UNSET
    # end of generated fields


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything needed to create a job; unset options take the store's defaults."""

    # fields: JobSpec (generated from starpod_cron/fields.py by python -m starpod_cron.fieldgen)
    name: str
    prompt: str
    schedule: Schedule
    enabled: bool = True
    delete_after_run: bool = False
    timezone: str | None = None
    """Default: [cron] default_timezone."""
    max_retries: int | None = None
    """Default: [cron] default_max_retries."""
    timeout_secs: float | None = None
    """Default: [cron] default_timeout_secs."""
    session_mode: SessionMode = SessionMode.ISOLATED
    user_id: str | None = None
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE
    origin: dict[str, Any] | None = None
    description: str | None = None
    jitter_secs: float | None = None
    """Default: [cron] jitter_secs."""
    overlap: Overlap = Overlap.SKIP
    max_instances: int = 1
    notify: NotifyPolicy = NotifyPolicy.ALWAYS
    context: ContextMode = ContextMode.NONE
    pause_after_failures: int | None = None
    """Default: [cron] pause_after_failures."""
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_runs: int | None = None
    stale_after_secs: float | None = None
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    fallback_models: list[str] | None = None
    escalate_to: str | None = None
    tools: list[str] | None = None
    budget_usd_per_day: float | None = None
    budget_usd_per_month: float | None = None
    budget_tokens_per_day: int | None = None
    deliver_to: list[str] | None = None
    alerts_to: list[str] | None = None
    # end of generated fields


@dataclass(frozen=True, slots=True)
class RunStats:
    """What a job's kept run history adds up to (history beyond ``runs_keep_per_job`` is
    pruned, so these count the kept runs)."""

    runs: int
    errors: int
    """Runs that failed or timed out."""
    prompt_tokens: int
    completion_tokens: int
    last_duration_ms: int | None = None
    """How long the newest finished run took."""
