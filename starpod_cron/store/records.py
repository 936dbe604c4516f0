"""Row-level records shared by every store backend: one mutable job row, one run row.

The job row's columns, their order and their conversion to :class:`CronJob` come from the
declaration (:mod:`starpod_cron.fields`); ``JobRecord``'s attributes are generated from it
(``python -m starpod_cron.fieldgen``). Column tuples here are the single source of the column
order; SQL templates use ``{job_columns}`` / ``{run_columns}`` and rows map positionally onto
these records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from ..fields import JOB_FIELDS, REQUIRED, JobField, public_fields
from ..models import (
    CronJob,
    CronRun,
    Delivery,
    DeliveryStatus,
    ModelUsage,
    RunStatus,
    RunTrigger,
    SessionMode,
)
from ..pricing import usd
from ..schedules import Schedule
from ..timeutil import from_ms, opt_from_ms

# Enum lookups by value through dicts: Enum(value) is several times slower, and these run for
# every job claimed and every run recorded.
_SESSION_MODES = {m.value: m for m in SessionMode}
_STATUSES = {m.value: m for m in RunStatus}
_TRIGGERS = {m.value: m for m in RunTrigger}


@dataclass(slots=True)
class JobRecord:
    # fields: JobRecord (generated from starpod_cron/fields.py by python -m starpod_cron.fieldgen)
    id: str
    name: str
    prompt: str
    schedule_kind: str
    schedule_expr: str
    schedule_anchor_ms: int | None
    enabled: bool
    delete_after_run: bool
    timezone: str
    created_at: int
    updated_at: int
    last_run_at: int | None
    next_run_at: int | None
    retry_count: int
    max_retries: int
    last_error: str | None
    retry_at: int | None
    retry_scheduled_for: int | None
    retry_attempt: int
    timeout_ms: int
    session_mode: str
    user_id: str | None
    misfire_policy: str
    last_status: str | None
    run_count: int
    running_run_id: str | None
    origin: str | None = None
    description: str | None = None
    jitter_ms: int = 0
    fire_offset_ms: int = 0
    overlap: str = "skip"
    max_instances: int = 1
    running_count: int = 0
    notify: str = "always"
    context: str = "none"
    pause_after_failures: int = 0
    start_at: int | None = None
    end_at: int | None = None
    max_runs: int | None = None
    stale_after_ms: int | None = None
    consecutive_failures: int = 0
    paused_reason: str | None = None
    finished_runs: int = 0
    silent_runs: int = 0
    suppressed_runs: int = 0
    notify_hash: str | None = None
    previous_result: str | None = None
    previous_result_at: int | None = None
    stale_streak: int = 0
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    fallback_models: str | None = None
    escalate_to: str | None = None
    tools: str | None = None
    budget_usd_per_day: float | None = None
    budget_usd_per_month: float | None = None
    budget_tokens_per_day: int | None = None
    deliver_to: str | None = None
    alerts_to: str | None = None
    held_until: int | None = None
    # end of generated fields

    @property
    def next_fire_ms(self) -> int | None:
        """When the next occurrence fires: its time plus its jitter."""
        return None if self.next_run_at is None else self.next_run_at + self.fire_offset_ms

    @property
    def due_ms(self) -> int | None:
        """When the job next needs a scheduler (its next fire or pending retry, if earlier)."""
        fire = self.next_fire_ms
        if self.held_until is not None:  # held: not before then (migration 13's due_at)
            return self.held_until
        if self.retry_at is None:
            return fire
        if fire is None:
            return self.retry_at
        return min(self.retry_at, fire)

    @property
    def schedule(self) -> Schedule:
        return Schedule.from_storage(
            self.schedule_kind, self.schedule_expr, self.schedule_anchor_ms
        )

    def set_schedule(self, schedule: Schedule) -> None:
        self.schedule_kind, self.schedule_expr, self.schedule_anchor_ms = schedule.to_storage()

    @property
    def next_fire_at(self) -> datetime | None:
        """``next_fire_ms`` as ``CronJob.next_fire_at`` shows it."""
        return opt_from_ms(self.next_fire_ms)

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> JobRecord:
        return _job_from_row(cls, row)

    def to_row(self) -> tuple[object, ...]:
        return _JOB_ROW(self)

    def state_params(self) -> tuple[object, ...]:
        """Parameters of the ``update_job_state`` statement (mutable columns, then id)."""
        return _JOB_STATE(self)

    def runtime_params(self) -> tuple[object, ...]:
        """Parameters of ``update_job_runtime``: only what claims and completions change, so
        the name and user indexes are not rewritten on every run."""
        return _JOB_RUNTIME(self)

    def to_public(self) -> CronJob:
        return _job_to_public(self)

    def clone(self) -> JobRecord:
        """A copy, as the row is now (a sixth of the cost of ``to_public``)."""
        return JobRecord(*_JOB_ROW(self))


JOB_COLUMNS: tuple[str, ...] = tuple(c for f in JOB_FIELDS for c, _ in f.columns())
JOB_STATE_COLUMNS: tuple[str, ...] = tuple(
    c for f in JOB_FIELDS if not f.immutable for c, _ in f.columns()
)
JOB_RUNTIME_COLUMNS: tuple[str, ...] = tuple(
    c for f in JOB_FIELDS if f.on_run for c, _ in f.columns()
)


_NEW_ROW = {
    c: f.default
    for f in JOB_FIELDS
    if f.who == "runtime" and f.default is not REQUIRED
    for c, _ in f.columns()
}


def new_record(job_id: str, now_ms: int, values: dict[str, Any]) -> JobRecord:
    """A new job's row: ``values`` (the checked columns of its spec) and every runtime
    column at its declared start (no runs, no retry), created and updated at ``now_ms``."""
    return JobRecord(
        **_NEW_ROW,
        id=job_id,
        created_at=now_ms,
        updated_at=now_ms,
        schedule_kind="",
        schedule_expr="",
        schedule_anchor_ms=None,
        **values,
    )


def _public_expr(f: JobField) -> str:
    """The expression turning record ``r``'s column(s) into ``CronJob``'s value of ``f``."""
    col = f"r.{f.column_name}"
    if f.storage in ("schedule", "derived"):
        return f"r.{f.name}"
    if f.storage == "ms":
        return f"{'opt_from_ms' if f.nullable else 'from_ms'}({col})"
    if f.storage == "secs_ms":
        return f"None if {col} is None else {col} / 1000" if f.nullable else f"{col} / 1000"
    if f.storage == "enum":
        lookup = f"_ENUMS[{f.name!r}][{col}]"
        return f"None if {col} is None else {lookup}" if f.nullable else lookup
    if f.storage == "json":
        return f"None if {col} is None else json.loads({col})"
    return col


def _compile() -> tuple[
    Callable[[JobRecord], CronJob], Callable[[type[JobRecord], Any], JobRecord]
]:
    """``to_public`` and ``from_row``, written out from the declaration once at import (as
    ``dataclasses`` writes ``__init__``): as fast as hand-written code, which they replace,
    since they run for every job claimed and every run recorded."""
    kwargs = ", ".join(f"{f.name}={_public_expr(f)}" for f in public_fields())
    flags = "".join(
        f"    rec.{c} = bool(rec.{c})\n"
        for f in JOB_FIELDS
        if f.storage == "flag"
        for c, _ in f.columns()
    )
    source = (
        f"def to_public(r):\n    return CronJob({kwargs})\n"
        f"def from_row(cls, row):\n    rec = cls(*row)\n{flags}    return rec\n"
    )
    enums = {f.name: {m.value: m for m in f.enum_type} for f in JOB_FIELDS if f.enum_type}
    scope: dict[str, Any] = {
        "CronJob": CronJob,
        "from_ms": from_ms,
        "opt_from_ms": opt_from_ms,
        "json": json,
        "_ENUMS": enums,
    }
    exec(source, scope)  # the source is built above from the declaration, never from input
    return scope["to_public"], scope["from_row"]


_job_to_public, _job_from_row = _compile()
# Row tuples are built by attrgetter (C), several times faster than a generator of getattr:
# they are built for every job claimed and every run recorded.
_JOB_ROW = attrgetter(*JOB_COLUMNS)
_JOB_STATE = attrgetter(*JOB_STATE_COLUMNS, "id")
_JOB_RUNTIME = attrgetter(*JOB_RUNTIME_COLUMNS, "id")

_COMMON_LATER = ("origin", "description")
"""Of the defaulted columns, the ones a new job often sets (front ends give an origin)."""
_JOB_LATER = tuple(
    (f.name, f.default)
    for f in fields(JobRecord)
    if f.default is not MISSING and f.name not in _COMMON_LATER
)
_LATER_NAMES = frozenset(name for name, _ in _JOB_LATER)
JOB_ADD_COLUMNS: tuple[str, ...] = tuple(c for c in JOB_COLUMNS if c not in _LATER_NAMES)
"""What ``add_jobs`` writes of a new job whose later fields (the columns migrations added, each
with the table default its record default is: notification policy, limits, model, budgets,
destinations, held runs) are all at their defaults: 28 values, not 62 (binding the empty ones
was half the insert)."""
_JOB_ADD = attrgetter(*JOB_ADD_COLUMNS)
_JOB_REST = attrgetter(*(name for name, _ in _JOB_LATER))
_JOB_REST_EMPTY = tuple(default for _, default in _JOB_LATER)


def added_rows(jobs: Sequence[JobRecord]) -> list[tuple[object, ...]] | None:
    """The ``JOB_ADD_COLUMNS`` rows of new ``jobs`` when each leaves its later fields at their
    defaults, for the narrow insert; None when one sets any (they are written whole)."""
    empty, rest = _JOB_REST_EMPTY, _JOB_REST
    if any(rest(job) != empty for job in jobs):
        return None
    return [_JOB_ADD(job) for job in jobs]


@dataclass(slots=True)
class RunRecord:
    id: str
    job_id: str
    job_name: str
    trigger: str
    scheduled_for: int
    attempt: int
    started_at: int
    completed_at: int | None
    status: str
    lease_owner: str | None
    lease_expires_at: int | None
    result_summary: str | None
    error: str | None
    session_id: str | None
    duration_ms: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    lease_renewed_at: int | None = None
    """When the lease holder last proved alive (claim or renewal)."""
    silent: bool = False
    suppressed: str | None = None
    notice: str | None = None
    model: str | None = None
    """The model whose answer is the result."""
    usages: str | None = None
    """What each model asked used: JSON (see :func:`usages_json`)."""
    cost_pusd: int | None = None
    """What the run cost, picodollars (None: unknown or not finished)."""

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> RunRecord:
        return cls(*row)

    def to_row(self) -> tuple[object, ...]:
        return _RUN_ROW(self)

    def result_params(self) -> tuple[object, ...]:
        """Parameters of ``finish_run``: the outcome columns, then id."""
        return _RUN_RESULT(self)

    def to_public(self) -> CronRun:
        return CronRun(
            id=self.id,
            job_id=self.job_id,
            job_name=self.job_name,
            scheduled_for=from_ms(self.scheduled_for),
            started_at=from_ms(self.started_at),
            completed_at=opt_from_ms(self.completed_at),
            status=_STATUSES[self.status],
            attempt=self.attempt,
            trigger=_TRIGGERS[self.trigger],
            result_summary=self.result_summary,
            error=self.error,
            session_id=self.session_id,
            duration_ms=self.duration_ms,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            silent=bool(self.silent),
            suppressed=self.suppressed,
            notice=self.notice,
            model=self.model,
            usages=usages_of(self.usages),
            cost_usd=usd(self.cost_pusd),
        )


def usages_json(usages: Iterable[ModelUsage]) -> str | None:
    """A run's usages as its ``usages`` column keeps them (None: no model asked)."""
    listed = [[u.model, u.prompt_tokens, u.completion_tokens, u.cached_tokens] for u in usages]
    return json.dumps(listed, separators=(",", ":")) if listed else None


def usages_of(text: str | None) -> tuple[ModelUsage, ...]:
    """The usages a ``usages`` column holds."""
    return () if not text else tuple(ModelUsage(*item) for item in json.loads(text))


RUN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RunRecord))
RUN_RESULT_COLUMNS: tuple[str, ...] = (
    "status",
    "completed_at",
    "lease_owner",
    "lease_expires_at",
    "result_summary",
    "error",
    "session_id",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "silent",
    "suppressed",
    "notice",
    "model",
    "usages",
    "cost_pusd",
)
RUN_START_COLUMNS: tuple[str, ...] = (
    *("id", "job_id", "job_name", "trigger", "scheduled_for", "attempt", "started_at"),
    *("status", "lease_owner", "lease_expires_at", "lease_renewed_at"),
)
"""What a claim writes of a run that starts: every other column is at its default (no outcome
yet), so the insert binds 11 values, not 25 (binding the empty ones was half its cost)."""
_RUN_ROW = attrgetter(*RUN_COLUMNS)
_RUN_RESULT = attrgetter(*RUN_RESULT_COLUMNS, "id")
_RUN_START = attrgetter(*RUN_START_COLUMNS)
_RUN_REST = attrgetter(*(c for c in RUN_COLUMNS if c not in RUN_START_COLUMNS))
_REST_EMPTY = tuple(
    f.default if f.default is not MISSING else None
    for f in fields(RunRecord)
    if f.name not in RUN_START_COLUMNS
)


def started_rows(runs: Sequence[RunRecord]) -> list[tuple[object, ...]] | None:
    """The ``RUN_START_COLUMNS`` rows of ``runs`` when each of them only starts (every other
    column at its default, no outcome yet), for the claim's narrow insert; None when one has
    more to say (a skipped run), and the runs are written whole, in their order (their
    sequence numbers keep it)."""
    empty, rest = _REST_EMPTY, _RUN_REST
    if any(rest(run) != empty for run in runs):
        return None
    return [_RUN_START(run) for run in runs]


DELIVERY_COLUMNS: tuple[str, ...] = (
    "id",
    "run_id",
    "job_id",
    "job_name",
    "destination",
    "payload",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "delivered_at",
    "progress",
)


def delivery_from_row(row: Iterable[Any]) -> Delivery:
    (
        id_,
        run_id,
        job_id,
        job_name,
        destination,
        payload,
        status,
        attempts,
        last_error,
        created_at,
        delivered_at,
        progress,
    ) = row
    return Delivery(
        id=id_,
        run_id=run_id,
        job_id=job_id,
        job_name=job_name,
        destination=destination,
        payload=json.loads(payload),
        status=DeliveryStatus(status),
        attempts=attempts,
        last_error=last_error,
        created_at=from_ms(created_at),
        delivered_at=opt_from_ms(delivered_at),
        progress=progress,
    )
