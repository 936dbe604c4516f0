"""The store contract. Every backend (SQLite now, PostgreSQL next) implements :class:`CronStore`;
the scheduler, CLI and gateway only ever talk to this class.

The docstrings below ARE the guarantees; ``tests/contract`` checks them against every backend.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from ..clock import Clock
from ..models import (
    CronJob,
    CronRun,
    Delivery,
    DeliverySpec,
    JobUpdate,
    MisfirePolicy,
    RunStatus,
    RunTrigger,
    SessionMessage,
    SessionMode,
)
from ..schedules import Schedule

DeliveryPlanner = Callable[[CronJob, CronRun], Sequence[DeliverySpec]]
"""Told each finished run (with its job as it was), returns the deliveries to write with it."""


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Store-wide defaults and policies (``[cron]`` in ``agent.toml``)."""

    default_max_retries: int = 3
    default_timeout_secs: float = 7200
    default_timezone: str = "UTC"
    runs_keep_per_job: int = 200
    retry_backoff_secs: tuple[float, ...] = (30, 60, 300, 900, 3600)
    misfire_grace_secs: float = 60
    synchronous: str = "full"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything needed to create a job; unset options take the store's defaults."""

    name: str
    prompt: str
    schedule: Schedule
    delete_after_run: bool = False
    timezone: str | None = None
    max_retries: int | None = None
    timeout_secs: float | None = None
    session_mode: SessionMode = SessionMode.ISOLATED
    user_id: str | None = None
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE
    enabled: bool = True
    origin: dict[str, Any] | None = None


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

    @classmethod
    def manual(cls, run_id: str, job: CronJob, now: datetime, lease_until_ms: int) -> Claim:
        """The claim-like view of a manual run started with ``record_run_start``."""
        return cls(
            run_id,
            job.id,
            job.name,
            job.prompt,
            job.session_mode,
            job.user_id,
            job.timeout_secs,
            now,
            1,
            RunTrigger.MANUAL,
            now,
            lease_until_ms,
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """How a run ended. ``status`` must be final (not pending/running/skipped).

    ``permanent`` skips retries; ``retry_after_secs`` delays the next retry at least that long;
    ``count_attempt=False`` (graceful shutdown) retries an interrupted run at once without
    consuming one of the job's retries.
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


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How sending one leased delivery went (see :meth:`CronStore.finish_deliveries`)."""

    delivery_id: int
    delivered: bool
    error: str | None = None
    retry_at: datetime | None = None
    attempted: bool = True


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    interrupted_run_ids: list[str] = field(default_factory=list)
    rescheduled_jobs: int = 0


class CronStore(abc.ABC):
    """Durable home of jobs and runs.

    Open one with :meth:`open` (a file path or ``sqlite:///path``). All times in and out are
    aware UTC datetimes; the database stores epoch milliseconds. Every write is a single
    transaction: bad input raises an :class:`~starpod_cron.errors.InvalidInput` subclass and
    writes nothing.
    """

    settings: StoreSettings
    clock: Clock

    @staticmethod
    def open(
        url: str,
        *,
        settings: StoreSettings | None = None,
        clock: Clock | None = None,
    ) -> StoreOpener:
        """Open (creating and migrating as needed) the store at ``url``: a file path or
        ``sqlite:///path``. Use ``store = await CronStore.open(...)`` or
        ``async with CronStore.open(...) as store:`` (closed on exit).

        Raises :class:`~starpod_cron.errors.SchemaVersionError` when the database was written
        by a newer schema version. Migrations only ever add; they never delete user data.
        """
        return StoreOpener(url, settings or StoreSettings(), clock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish in-flight writes and release the database. Idempotent."""

    # ----------------------------------------------------------------- change notification
    @abc.abstractmethod
    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after every committed change made through this store object that
        can make a job due sooner (add, update, enable, retry scheduled, ...). Returns a
        function that unsubscribes. Changes by other processes are not reported."""

    # ---------------------------------------------------------------------------- jobs
    async def add_job(
        self,
        name: str,
        prompt: str,
        schedule: Schedule,
        delete_after_run: bool = False,
        timezone: str | None = None,
    ) -> str:
        """Create a job with the store's default retries/timeout; returns its id."""
        return await self.add_job_full(name, prompt, schedule, delete_after_run, timezone)

    async def add_job_full(
        self,
        name: str,
        prompt: str,
        schedule: Schedule,
        delete_after_run: bool = False,
        timezone: str | None = None,
        max_retries: int | None = None,
        timeout_secs: float | None = None,
        session_mode: SessionMode = SessionMode.ISOLATED,
        user_id: str | None = None,
        misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE,
        origin: dict[str, Any] | None = None,
    ) -> str:
        """Create a job with every option; returns its id. ``origin`` records where the job
        came from (say, a Telegram chat) so its results can be routed back.

        Raises InvalidSchedule (malformed, never fires, one-shot in the past), InvalidTimezone,
        InvalidJob (empty name/prompt, prompt over 64 KiB, bad retries/timeout) or
        DuplicateJobName; nothing is written then.
        """
        spec = JobSpec(
            name=name,
            prompt=prompt,
            schedule=schedule,
            delete_after_run=delete_after_run,
            timezone=timezone,
            max_retries=max_retries,
            timeout_secs=timeout_secs,
            session_mode=session_mode,
            user_id=user_id,
            misfire_policy=misfire_policy,
            origin=origin,
        )
        (job_id,) = await self.add_jobs([spec])
        return job_id

    @abc.abstractmethod
    async def add_jobs(self, specs: Sequence[JobSpec]) -> list[str]:
        """Create many jobs in ONE transaction: all are created or, if any is invalid or a
        name is taken (in the store or twice in ``specs``), none is. Returns ids in order."""

    @abc.abstractmethod
    async def list_jobs(self) -> list[CronJob]:
        """Every job, ordered by name."""

    @abc.abstractmethod
    async def list_jobs_for_user(self, user_id: str) -> list[CronJob]:
        """The jobs owned by ``user_id``, ordered by name."""

    @abc.abstractmethod
    async def get_job(self, job_id: str) -> CronJob | None:
        """The job with this id, or None."""

    @abc.abstractmethod
    async def get_job_by_name(self, name: str) -> CronJob | None:
        """The job with this exact name, or None."""

    @abc.abstractmethod
    async def update_job(self, job_id: str, update: JobUpdate) -> CronJob:
        """Change the fields set in ``update``; returns the job as stored.

        A new schedule or zone recomputes ``next_run_at`` from now (an interval without an
        anchor is re-anchored at now). Enabling recomputes ``next_run_at`` and clears any
        pending retry; enabling a one-shot whose time has passed raises InvalidSchedule.
        Raises JobNotFound, and the same validation errors as :meth:`add_job_full`.
        """

    async def enable_job(self, job_id: str) -> CronJob:
        """Enable; the next fire is computed from now (missed fires are not caught up)."""
        return await self.update_job(job_id, JobUpdate(enabled=True))

    async def disable_job(self, job_id: str) -> CronJob:
        """Disable; a run in progress finishes, nothing new is claimed."""
        return await self.update_job(job_id, JobUpdate(enabled=False))

    @abc.abstractmethod
    async def remove_job(self, job_id: str) -> None:
        """Delete the job and its run history. Raises JobNotFound. A run in progress is
        recorded when it finishes but the job is not recreated."""

    async def remove_by_name(self, name: str) -> None:
        """Delete the job called ``name`` (see :meth:`remove_job`). Raises JobNotFound."""
        from ..errors import JobNotFound

        job = await self.get_job_by_name(name)
        if job is None:
            raise JobNotFound(f"no job named {name!r}")
        await self.remove_job(job.id)

    @abc.abstractmethod
    async def get_due_jobs(self) -> list[CronJob]:
        """Read-only: enabled jobs not running whose next fire or retry is due now."""

    # ---------------------------------------------------------------------------- runs
    @abc.abstractmethod
    async def record_run_start(
        self, job_id: str, *, lease_secs: float | None = None, owner: str | None = None
    ) -> str:
        """Start a MANUAL run of the job now; returns the run id.

        The job counts as running until :meth:`record_run_complete` (so the scheduler will not
        run it concurrently). The run is leased for ``lease_secs`` (default: the job's timeout
        plus one minute) to ``owner`` (default: a fresh ``manual:`` owner); if nobody completes
        it by then, recovery marks it interrupted.
        Raises JobNotFound or JobAlreadyRunning. Manual runs never schedule retries and never
        consume a one-shot's occurrence.
        """

    async def record_run_complete(
        self,
        run_id: str,
        status: RunStatus,
        summary: str | None = None,
        *,
        error: str | None = None,
        session_id: str | None = None,
        permanent: bool = False,
    ) -> None:
        """Finish a run (see :meth:`complete_runs`). Raises RunNotFound, RunNotRunning, or
        InvalidInput for a non-final status."""
        from ..errors import RunNotFound, RunNotRunning

        completion = Completion(
            run_id,
            status,
            summary=summary,
            error=error,
            session_id=session_id,
            permanent=permanent,
        )
        (done,) = await self.complete_runs([completion], owner=None)
        if not done:
            if await self.get_run(run_id) is None:
                raise RunNotFound(f"no run with id {run_id!r}")
            raise RunNotRunning(f"run {run_id} is not running (already finished or recovered)")

    @abc.abstractmethod
    async def list_runs(self, job_id: str, limit: int = 20) -> list[CronRun]:
        """The job's runs, newest first, at most ``limit``."""

    @abc.abstractmethod
    async def list_recent_runs(
        self,
        limit: int = 20,
        *,
        job_id: str | None = None,
        status: RunStatus | None = None,
    ) -> list[CronRun]:
        """Runs across jobs (including deleted one-shots), newest first, optionally filtered."""

    @abc.abstractmethod
    async def get_run(self, run_id: str) -> CronRun | None:
        """The run with this id, or None."""

    @abc.abstractmethod
    async def prune_runs(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete finished runs that completed before ``older_than``; returns how many were
        (or, with ``dry_run``, would be) deleted. Running runs are never deleted."""

    # ----------------------------------------------------------------- delivery outbox
    @abc.abstractmethod
    def set_delivery_planner(self, planner: DeliveryPlanner | None) -> None:
        """Have :meth:`complete_runs` ask ``planner(job, run)`` what to deliver about every run
        it finishes with success, failure or timeout, and insert those deliveries in the SAME
        transaction (so a recorded result is never without its notifications). A delivery is
        unique per (run, destination); inserting it twice keeps one."""

    @abc.abstractmethod
    async def claim_deliveries(self, owner: str, limit: int, lease_secs: float) -> list[Delivery]:
        """Lease up to ``limit`` deliveries that are due (pending and past their next attempt
        time, or leased by someone whose lease expired), oldest first; each claim counts an
        attempt. Two claimers never hold the same delivery."""

    @abc.abstractmethod
    async def finish_deliveries(
        self, owner: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[bool]:
        """Record the outcomes of leased deliveries in ONE transaction: each is delivered,
        pending again until ``retry_at``, or (not delivered, no ``retry_at``) dead with
        ``error`` kept. An answer is False where the lease was lost (someone else will deliver
        it). ``attempted=False`` hands a claimed delivery back untried: the claim's attempt is
        not counted."""

    async def finish_delivery(
        self,
        delivery_id: int,
        owner: str,
        *,
        delivered: bool,
        error: str | None = None,
        retry_at: datetime | None = None,
        attempted: bool = True,
    ) -> bool:
        """:meth:`finish_deliveries` for one delivery."""
        outcome = DeliveryOutcome(delivery_id, delivered, error, retry_at, attempted)
        (done,) = await self.finish_deliveries(owner, [outcome])
        return done

    @abc.abstractmethod
    async def list_deliveries(
        self, since_id: int, destinations: Sequence[str] | None, limit: int = 1000
    ) -> list[Delivery]:
        """Deliveries to any of ``destinations`` (None: to anywhere) with an id above
        ``since_id``, oldest first (the replay of an event stream)."""

    @abc.abstractmethod
    async def next_delivery_at(self) -> datetime | None:
        """When the earliest pending delivery (or expired lease) becomes due, if any."""

    # ------------------------------------------------------------------- user preferences
    @abc.abstractmethod
    async def get_user_timezone(self, user_id: str) -> str | None:
        """The zone a user chose as their default, if any."""

    @abc.abstractmethod
    async def set_user_timezone(self, user_id: str, timezone: str) -> None:
        """Store a user's default zone (validated: InvalidTimezone writes nothing)."""

    # ---------------------------------------------------------------- conversations
    @abc.abstractmethod
    async def main_session_id(self, key: str) -> str:
        """The id of the one persistent conversation for ``key`` (``user:<id>`` or ``agent``),
        created on first use. Concurrent callers get the same id."""

    @abc.abstractmethod
    async def session_messages(self, session_id: str, limit: int) -> list[SessionMessage]:
        """The last ``limit`` messages of the conversation, oldest first."""

    @abc.abstractmethod
    async def append_session_messages(
        self,
        session_id: str,
        messages: Sequence[tuple[str, str]],
        *,
        run_id: str | None = None,
        keep: int | None = None,
    ) -> None:
        """Append ``(role, content)`` turns in one transaction; with ``keep``, drop all but
        the newest ``keep`` messages of the conversation."""

    # ------------------------------------------------------ scheduler primitives (atomic)
    @abc.abstractmethod
    async def claim_due(
        self, owner: str, limit: int, lease_secs: float, *, ahead_secs: float = 0
    ) -> list[Claim]:
        """Atomically claim up to ``limit`` due occurrences for ``owner``.

        With ``ahead_secs``, occurrences due within that many seconds are claimed too; their
        run starts (``Claim.start_at``, the run's ``started_at``) at their fire time, so a
        scheduler can call the executor exactly on time however long claiming takes.

        In ONE transaction, for each due job (enabled, not running, next fire or retry <= now,
        earliest first): decide the occurrence (a due retry first, unless a regular fire comes
        earlier, which supersedes it), apply the misfire policy to fires missed by more than
        one occurrence or the grace period (recording one ``skipped`` run when skipping),
        advance ``next_run_at`` past now, insert the run row (status ``running``, leased to
        ``owner`` until now + ``lease_secs``) and mark the job running. Two callers, even in
        two processes, never receive the same occurrence, and a job is never claimed while a
        run of it is in progress.
        """

    @abc.abstractmethod
    async def next_due_at(self) -> datetime | None:
        """The earliest time any enabled, idle job becomes due (may be in the past)."""

    @abc.abstractmethod
    async def renew_leases(self, owner: str, lease_secs: float) -> set[str]:
        """Extend to now + ``lease_secs`` the lease of every running run held by ``owner``;
        returns the ids still held (a run missing from it was recovered by someone else)."""

    @abc.abstractmethod
    async def complete_runs(
        self, completions: Sequence[Completion], *, owner: str | None
    ) -> list[bool]:
        """Record the end of several runs in ONE transaction; durable when this returns.

        For each: only a run still ``running`` (and, if ``owner`` is given, still leased to
        it) is finished; the answer is False otherwise and nothing changes for it. The job is
        released and its state advanced: success resets retries and deletes (if
        ``delete_after_run``) or disables a one-shot that fired; a failure or timeout
        schedules a retry with backoff (30 s, 60 s, 5 min, 15 min, 60 min by default) until
        ``max_retries`` is used, after which the count resets and a one-shot is disabled with
        its ``last_error`` (never deleted). History beyond ``runs_keep_per_job`` is pruned.
        """

    @abc.abstractmethod
    async def recover(
        self, *, alive_owner: str | None = None, repair: bool = True
    ) -> RecoveryReport:
        """Mark every run whose lease has expired ``interrupted`` (the attempt counts; a retry
        is scheduled at once if retries remain) and release its job. With ``repair`` (the
        default), also release jobs pointing at a run that is not running and give every
        enabled recurring job without a next fire a new one: these scan every job, so a
        scheduler repairs at start and only expires leases afterwards. Safe to call any time,
        from any process.

        Runs leased to ``alive_owner`` are skipped: a scheduler passes its own owner id, since
        it knows its runs are alive (it learns of any it lost through :meth:`renew_leases`).
        """


class StoreOpener:
    """What :meth:`CronStore.open` returns: await it, or use it as ``async with``."""

    def __init__(self, url: str, settings: StoreSettings, clock: Clock | None) -> None:
        self._url = url
        self._settings = settings
        self._clock = clock
        self._store: CronStore | None = None

    async def _open(self) -> CronStore:
        from ..clock import SystemClock
        from ..timeutil import check_zone
        from .sqlite import SqliteStore

        check_zone(self._settings.default_timezone)
        url = self._url
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
        return await SqliteStore.connect(path, self._settings, self._clock or SystemClock())

    def __await__(self) -> Generator[Any, None, CronStore]:
        return self._open().__await__()

    async def __aenter__(self) -> CronStore:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()
