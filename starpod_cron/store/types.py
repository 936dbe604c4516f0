"""Value types the store contract speaks: what goes in (JobSpec, Completion, DeliveryOutcome)
and what comes out (Claim, RecoveryReport, RunFinished). Frozen, no behaviour, no I/O
(RunFinished makes its two views when first read)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from ..execution import NO_OPTIONS, ModelOptions, ModelUsage
from ..models import (
    CronJob,
    CronRun,
    DeliverySpec,
    JobSpec,
    RunStatus,
    RunTrigger,
    SessionMode,
)
from ..settings import StoreSettings
from .topics import Topic

_T_co = TypeVar("_T_co", covariant=True)

__all__ = [
    "Claim",
    "ClaimRequest",
    "Claims",
    "Completion",
    "DeliveryOutcome",
    "DeliveryPlanner",
    "JobSpec",
    "RecoveryReport",
    "RunFilter",
    "RunFinished",
    "RunOutcome",
    "RunPage",
    "StoreSettings",
    "Topic",
]

DeliveryPlanner = Callable[[CronJob, CronRun], Sequence[DeliverySpec]]
"""Told each finished run (with its job as it was), returns the deliveries to write with it.
Called inside the completing transaction, possibly off the event loop: keep it pure."""


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a page lists: an owner's jobs' (``owner`` None: everyone's), one job's,
    in one status, of one trigger; ``before``: the ``next`` of the page before."""

    owner: str | None = None
    job_id: str | None = None
    status: RunStatus | None = None
    trigger: RunTrigger | None = None
    before: int | None = None


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs, newest first; ``total`` counts every run matching the filter (all
    pages); ``next`` is the ``before`` of the following page (None: this is the last)."""

    runs: list[CronRun]
    total: int
    next: int | None


@dataclass(frozen=True, slots=True)
class HourCount:
    """The runs started in one whole hour (from ``start``) and how many failed or timed out."""

    start: datetime
    runs: int
    failures: int


@dataclass(frozen=True, slots=True)
class Claim:
    """One occurrence a scheduler now owns: its run row exists with status ``running``."""

    run_id: str
    job_id: str
    job_name: str
    prompt: str
    session_mode: SessionMode
    user_id: str | None
    timeout_secs: float
    scheduled_for: datetime
    attempt: int
    trigger: RunTrigger
    start_at: datetime
    """When to call the executor: now, or the fire time of an occurrence claimed ahead."""
    lease_until_ms: int
    one_shot: bool = False
    """The job runs once (its answer is always delivered: never a silent answer)."""
    previous_result: str | None = None
    """The job's previous successful result (``context = "last"``), read in the claim."""
    previous_at: datetime | None = None
    options: ModelOptions = NO_OPTIONS
    """What the job says about its model call, read in the claim."""
    last_attempt: bool = True
    """The job has no retry left after this attempt."""
    budgeted: bool = False
    """Claimed ahead under a budget: checked again at its start (``skip_if_spent``)."""


class Claims(list[Claim]):
    """What ``claim_due`` answers: the claims, and when the earliest job left is due
    (``next_due_ms``, epoch ms; None when no job is due at all), read in the same
    transaction, so a scheduler's pass is one round trip."""

    __slots__ = ("next_due_ms",)

    def __init__(self, claims: Sequence[Claim] = (), next_due_ms: int | None = None) -> None:
        super().__init__(claims)
        self.next_due_ms = next_due_ms


@dataclass(slots=True)
class ClaimRequest:
    """A claim made in the transaction of a ``complete_runs`` (its ``claim`` argument),
    after the completions were written: the jobs those runs released may be claimed again at
    once, and a burst costs one commit per batch instead of two. ``claimed`` holds the answer
    once ``complete_runs`` returned (the claims are then durable, as ``claim_due``'s)."""

    owner: str
    limit: int
    lease_secs: float
    ahead_secs: float = 0
    claimed: Claims = field(default_factory=Claims)


@dataclass(frozen=True, slots=True)
class Completion:
    """How a run ended. ``status`` must be final (not running/skipped). ``held``: the job
    waits ``retry_after_secs``, then runs the same occurrence with the same attempt.

    ``permanent`` skips retries; ``retry_after_secs`` delays the next retry at least that long;
    ``count_attempt=False`` (graceful shutdown, a run that never started) retries an interrupted
    run at once without consuming one of the job's retries.
    """

    run_id: str
    status: RunStatus
    summary: str | None = None
    error: str | None = None
    session_id: str | None = None
    permanent: bool = False
    retry_after_secs: float | None = None
    count_attempt: bool = True
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    """The model whose answer is the result (``JobResult.model``)."""
    usages: tuple[ModelUsage, ...] = ()
    """What each model the run asked used (``JobResult.usages``): its cost and spend."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How sending one leased delivery went (see ``DeliveryStore.finish_deliveries``)."""

    delivery_id: int
    delivered: bool
    error: str | None = None
    retry_at: datetime | None = None
    attempted: bool = True


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    interrupted_run_ids: list[str] = field(default_factory=list)
    rescheduled_jobs: int = 0


class _View(Protocol[_T_co]):
    def to_public(self) -> _T_co: ...


class RunOutcome(Protocol):
    """What a finished run says, readable from the store's row or the view alike."""

    @property
    def id(self) -> str: ...
    @property
    def job_name(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def result_summary(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def suppressed(self) -> str | None: ...


class _RunRow(RunOutcome, _View[CronRun], Protocol):
    """A run as the store holds it: its outcome, and the view made from it."""


class RunFinished:
    """A run finished with success, failure, timeout or held and is durably recorded (with the
    deliveries planned for it). ``job`` is the job as it was when the run finished.

    Read-only. The store hands its own rows and makes each view on first read, once: a
    burst's completions are recorded on the store's one writer, where building two views
    per run it finished cost a sixth of its time, for listeners that mostly read the run."""

    __slots__ = ("_job", "_run")

    def __init__(self, job: CronJob | _View[CronJob], run: CronRun | _RunRow) -> None:
        self._job = job
        self._run = run

    @property
    def job(self) -> CronJob:
        job = self._job
        if not isinstance(job, CronJob):
            job = self._job = job.to_public()
        return job

    @property
    def run(self) -> CronRun:
        run = self._run
        if not isinstance(run, CronRun):
            run = self._run = run.to_public()
        return run

    @property
    def outcome(self) -> RunOutcome:
        """The run's id, job name, session, status (its text), result, error and whether it
        was suppressed, without making the view: a notifier feed reads only these."""
        return self._run

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunFinished):
            return NotImplemented
        return (self.job, self.run) == (other.job, other.run)

    __hash__ = None  # type: ignore[assignment]  # equal by value, yet it caches its views

    def __repr__(self) -> str:
        return f"RunFinished(job={self.job!r}, run={self.run!r})"
