"""The store contract, split by concern: protocols whose docstrings ARE the guarantees
(``tests/contract`` checks them against every dialect). The one concrete store,
:class:`~starpod_cron.store.CronStore`, is all of them; code that needs one concern types
against it (an executor needs only a :class:`SessionStore`). The protocols of what gateway
nodes share (the outbox, leases, log-ins) are in :mod:`.contract_nodes`. No factory here: a
store is opened by ``CronStore.open`` (``store.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from ..models import (
    CronJob,
    CronRun,
    JobUpdate,
    MisfirePolicy,
    RunStats,
    RunStatus,
    SessionMessage,
    SessionMode,
)
from ..schedules import Schedule
from .briefs import JobBrief
from .types import (
    Claim,
    ClaimRequest,
    Claims,
    Completion,
    HourCount,
    JobSpec,
    RecoveryReport,
    RunFilter,
    RunFinished,
    RunPage,
    Topic,
)

Listener = Callable[[], None]
FinishedListener = Callable[[Sequence[RunFinished]], None]


class StoreSignals(Protocol):
    """Change signals: in-process subscribers told after commits."""

    def on_change(self, callback: Listener, topic: Topic = Topic.JOBS) -> Listener:
        """Call ``callback()`` after a committed change about ``topic``: made through this store
        object (at once) or, within about a quarter second, by another process or node
        (SQLite: ``PRAGMA data_version``; PostgreSQL: ``LISTEN/NOTIFY``). A signal is only a
        hint to look again: the tables stay the truth. Returns a function that unsubscribes.

        Which writes signal, the same on every dialect: ``JOBS`` when a job may be due sooner
        or was released (a job added or changed, a run finished by ``complete_runs``, runs
        interrupted or jobs repaired by ``recover``); ``DELIVERIES`` when deliveries were
        queued or became due (planned with a claim, a start or a completion; a retry or a
        dead one retried; a destination cleared). A write that changed nothing of that kind
        (a completion refused to a fenced-off holder, say) signals nothing."""

    def on_run_finished(self, callback: FinishedListener) -> Listener:
        """Call ``callback(events)`` after runs finished through THIS store object were
        durably recorded with success, failure or timeout (with the deliveries planned for
        them). Runs finished by other processes are not reported here: their deliveries are
        in the store. Returns a function that unsubscribes."""


class JobStore(Protocol):
    """Jobs: create, read, change, delete. Names are unique per owner: each user has their
    own namespace, and agent-level jobs (no user) have theirs."""

    async def add_job(
        self,
        name: str,
        prompt: str,
        schedule: Schedule,
        delete_after_run: bool = False,
        timezone: str | None = None,
    ) -> str:
        """Create an agent-level job with the store's default retries/timeout; returns its id."""

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
        description: str | None = None,
    ) -> str:
        """Create a job with every option; returns its id. ``origin`` records where the job
        came from (say, a Telegram chat) so its results can be routed back.

        Raises InvalidSchedule (malformed, never fires, one-shot in the past), InvalidTimezone,
        InvalidJob (empty name/prompt, prompt over 64 KiB, bad retries/timeout) or
        DuplicateJobName (the owner already has a job of that name); nothing is written then.
        """

    async def add_jobs(
        self, specs: Sequence[JobSpec], *, max_jobs_per_owner: int | None = None
    ) -> list[str]:
        """Create many jobs in ONE transaction: all are created or, if any is invalid or a
        name is taken (by the same owner, in the store or twice in ``specs``), none is.
        Returns ids in order.

        ``max_jobs_per_owner`` (None or 0: no limit): each user owning a job in ``specs``
        may have at most this many jobs afterwards, counted inside the same transaction that
        inserts them and serialized per owner against every other limited add, on every node
        sharing the store (SQLite: the one writer; PostgreSQL: a per-owner lock held to
        commit). So no interleaving of concurrent adds passes the limit: of N concurrent
        single adds for a user with ``k`` jobs, exactly ``max(0, limit - k)`` succeed and the
        rest raise LimitExceeded (naming ``[gateway] max_jobs_per_user``), writing nothing.
        Agent-level jobs (no user) are never counted or limited."""

    async def list_jobs(self) -> list[CronJob]:
        """Every job, ordered by name."""

    async def list_jobs_for_user(self, user_id: str) -> list[CronJob]:
        """The jobs owned by ``user_id``, ordered by name."""

    async def list_job_briefs(self, user_id: str | None = None) -> list[JobBrief]:
        """What a listing shows of every job (of ``user_id``'s when given), in the order of
        :meth:`list_jobs` / :meth:`list_jobs_for_user`: a few columns, read many times faster
        than whole jobs."""

    async def get_job(self, job_id: str) -> CronJob | None:
        """The job with this id, or None."""

    async def get_job_by_name(self, name: str, user_id: str | None = None) -> CronJob | None:
        """The job called ``name`` owned by ``user_id`` (None: the agent-level job), or None.
        Never a job of another owner."""

    async def find_jobs_by_name(self, name: str) -> list[CronJob]:
        """Every job called ``name``, whoever owns it (for operators), agent-level first."""

    async def updated_job(self, job_id: str, update: JobUpdate) -> CronJob:
        """The job as :meth:`update_job` would leave it (the same checks and errors), without
        writing anything: what a preview shows."""

    async def update_job(self, job_id: str, update: JobUpdate) -> CronJob:
        """Change the fields set in ``update``; returns the job as stored.

        A new schedule or zone recomputes ``next_run_at`` from now (an interval without an
        anchor is re-anchored at now). Enabling recomputes ``next_run_at`` and clears any
        pending retry; enabling a one-shot whose time has passed raises InvalidSchedule.
        Raises JobNotFound, and the same validation errors as :meth:`add_job_full`.
        """

    async def enable_job(self, job_id: str) -> CronJob:
        """Enable; the next fire is computed from now (missed fires are not caught up)."""

    async def disable_job(self, job_id: str) -> CronJob:
        """Disable; a run in progress finishes, nothing new is claimed."""

    async def snooze_job(self, job_id: str, by_ms: int) -> CronJob:
        """Move the next fire ``by_ms`` later, once (from its fire time, not from now); the
        schedule is unchanged, so the fire after the moved one is the schedule's own. Raises
        JobNotFound, or NothingToSnooze (paused, no next fire, past ``end_at``) writing
        nothing."""

    async def retry_run(self, run_id: str) -> tuple[CronJob, datetime, int]:
        """Run a failed, timed-out or interrupted run's occurrence again, as the next attempt
        (trigger ``retry``): the job's retry fields are set to it, due now, and the claim
        inserts the run, so ``runs_occurrence`` judges and two retries make one run. Returns
        the job, the occurrence and the attempt. RunNotFound; RunNotRetryable (it succeeded,
        runs, was skipped, held or retried already; the job runs, is paused or has another
        retry pending), writing nothing."""

    async def remove_job(self, job_id: str) -> None:
        """Delete the job and its run history. Raises JobNotFound. A run in progress is
        recorded when it finishes but the job is not recreated."""

    async def remove_by_name(self, name: str, user_id: str | None = None) -> None:
        """Delete the job called ``name`` of owner ``user_id`` (see :meth:`remove_job`).
        Raises JobNotFound."""

    async def get_due_jobs(self) -> list[CronJob]:
        """Read-only: enabled jobs not running whose next fire or retry is due now."""

    async def next_due_at(self) -> datetime | None:
        """The earliest time any enabled, idle job becomes due (may be in the past)."""


class RunStore(Protocol):
    """Run history."""

    async def list_runs(self, job_id: str, limit: int = 20) -> list[CronRun]:
        """The job's runs, newest first, at most ``limit``."""

    async def list_recent_runs(
        self,
        limit: int = 20,
        *,
        job_id: str | None = None,
        status: RunStatus | None = None,
    ) -> list[CronRun]:
        """Runs across jobs (including deleted one-shots), newest first, optionally filtered."""

    async def page_runs(self, where: RunFilter, limit: int = 50) -> RunPage:
        """A page of at most ``limit`` runs matching ``where``, newest first, keyset-paged
        (``where.before``: the previous page's ``next``), so paging while new runs arrive
        lists each run once; with the count of all matching runs, in one read."""

    async def runs_per_hour(
        self, since: datetime, hours: int, owner: str | None
    ) -> list[HourCount]:
        """Runs started in each of ``hours`` whole hours from ``since`` (oldest first, empty
        hours included) and the failed or timed-out ones, of ``owner``'s jobs (None: all)."""

    async def get_run(self, run_id: str) -> CronRun | None:
        """The run with this id, or None."""

    async def run_stats(self) -> dict[str, RunStats]:
        """Per job id: its kept runs, how many failed or timed out, and the tokens they used.
        Jobs without runs are left out."""

    async def prune_messages(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete conversation messages (``main`` sessions) written before ``older_than``;
        with ``dry_run`` only count them. Returns how many."""

    async def prune_deliveries(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete deliveries created before ``older_than`` that are done with (delivered,
        dead, or published events; never one still pending or being sent); with ``dry_run``
        only count them. Returns how many. Replay reaches back no further than what is kept."""

    async def optimize(self) -> None:
        """Refresh the database's query statistics (SQLite ``PRAGMA optimize``, PostgreSQL
        ``ANALYZE`` of this store's tables)."""

    async def prune_runs(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete finished runs that completed before ``older_than``; returns how many were
        (or, with ``dry_run``, would be) deleted. Running runs are never deleted."""


class SchedulerStore(Protocol):
    """The scheduler's atomic primitives: claim, renew, complete, recover; manual runs."""

    async def record_run_start(
        self, job_id: str, *, lease_secs: float | None = None, owner: str | None = None
    ) -> str:
        """Start a MANUAL run of the job now; returns the run id.

        The job counts as running until :meth:`record_run_complete` (so the scheduler will not
        run it concurrently). The run is leased for ``lease_secs`` (default: the job's timeout
        plus one minute) to ``owner`` (default: a fresh ``manual:`` owner); a holder renews it
        with ``renew_leases``; if nobody completes or renews it in time, recovery marks it
        interrupted. Raises JobNotFound or JobAlreadyRunning. Manual runs never schedule
        retries and never consume a one-shot's occurrence.
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
        """Finish a run (see :meth:`complete_runs`). Raises RunNotFound,
        RunNotRunning, or InvalidInput for a non-final status."""

    async def claim_due(
        self, owner: str, limit: int, lease_secs: float, *, ahead_secs: float = 0
    ) -> Claims:
        """Atomically claim up to ``limit`` due occurrences for ``owner``. The answer (a list)
        also says when the earliest job left is due (``Claims.next_due_ms``), read in the
        same transaction.

        With ``ahead_secs``, occurrences due within that many seconds are claimed too; their
        run starts (``Claim.start_at``, the run's ``started_at``) at their fire time, so a
        scheduler can call the executor exactly on time however long claiming takes.

        In ONE transaction, for each due job (enabled, not running, next fire or retry <= now,
        earliest first): decide the occurrence (a due retry first, unless a regular fire comes
        earlier, which supersedes it), apply the misfire policy to fires missed by more than
        one occurrence or the grace period (recording one ``skipped`` run when skipping),
        advance ``next_run_at`` past now, insert the run row (status ``running``, leased to
        ``owner`` until now + ``lease_secs``) and mark the job running. Two callers, even in
        two processes or on two machines, never receive the same occurrence (the database
        enforces one run per job, occurrence and attempt), and a job is never claimed while
        a run of it is in progress.
        """

    async def renew_leases(
        self, owner: str, lease_secs: float, run_ids: Collection[str] | None = None
    ) -> set[str]:
        """Extend to now + ``lease_secs`` the lease of each running run in ``run_ids`` (None:
        every run) still held by ``owner``; returns the ids still held. A run missing from the
        answer was recovered by someone else: its holder must stop working on it."""

    async def complete_runs(
        self,
        completions: Sequence[Completion],
        *,
        owner: str | None,
        claim: ClaimRequest | None = None,
    ) -> list[bool]:
        """Record the end of several runs in ONE transaction; durable when this returns.

        With ``claim``, the same transaction then claims as :meth:`claim_due` would with the
        request's owner, limit, lease and ahead (after the completions are written, so a job
        released by one of them may be claimed again); the claims are put in
        ``claim.claimed``. If the transaction fails, neither is written.

        For each: only a run still ``running`` (and, if ``owner`` is given, still leased to
        it: a holder whose lease was taken over is fenced off) is finished; the answer is
        False otherwise and nothing changes for it. The job is released and its state
        advanced: success resets retries and deletes (if ``delete_after_run``) or disables a
        one-shot that fired; a failure or timeout schedules a retry with backoff (30 s, 60 s,
        5 min, 15 min, 60 min by default) until ``max_retries`` is used, after which the count
        resets and a one-shot is disabled with its ``last_error`` (never deleted). History
        beyond ``runs_keep_per_job`` is pruned. Deliveries planned for runs ending in
        success, failure or timeout are inserted in the same transaction.
        """

    async def recover(self, *, held: Collection[str] = (), repair: bool = True) -> RecoveryReport:
        """Mark ``interrupted`` every running run whose lease has expired, or whose owner is
        a process on this machine that no longer exists, and release its job; runs in
        ``held`` (the caller's own live runs) are skipped.

        An interrupted run counts as an attempt (a retry is scheduled at once if retries
        remain) only if its owner was alive at or after the run's start; a run claimed ahead
        whose owner died before its fire time never started, so it is retried at its fire
        time without using up a retry. With ``repair`` (the default), also release jobs
        pointing at a run that is not running and give every enabled recurring job without
        a next fire a new one: these scan every job, so a scheduler repairs at start and only
        expires leases afterwards. Safe to call any time, from any process.
        """


class SessionStore(Protocol):
    """Conversations of ``session_mode = "main"`` jobs."""

    async def main_session_id(self, key: str) -> str:
        """The id of the one persistent conversation for ``key`` (``user:<id>`` or ``agent``),
        created on first use. Concurrent callers get the same id."""

    async def session_messages(self, session_id: str, limit: int) -> list[SessionMessage]:
        """The last ``limit`` messages of the conversation, oldest first."""

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


class PreferenceStore(Protocol):
    """Per-user preferences."""

    async def get_user_timezone(self, user_id: str) -> str | None:
        """The zone a user chose as their default, if any."""

    async def set_user_timezone(self, user_id: str, timezone: str) -> None:
        """Store a user's default zone (validated: InvalidTimezone writes nothing)."""


class BackfillStore(Protocol):
    """Past occurrences run once (``jobs backfill``) and the memory a manual run is given."""

    async def backfill_occurrences(
        self, job_id: str, start: datetime, end: datetime, *, limit: int | None = None
    ) -> list[datetime]:
        """The occurrences of the job's schedule in [``start``, ``end``] (``end`` no later
        than now) without a recorded run, oldest first. An occurrence whose only runs are
        ``skipped`` or ``interrupted`` has none; one with a retry pending is the scheduler's.
        InvalidInput (nothing is written) when the range holds more than ``limit`` occurrences
        (default ``[cron] backfill_limit``), ends before it starts, or starts in the future;
        JobNotFound."""

    async def claim_backfill(
        self,
        job_id: str,
        start: datetime,
        end: datetime,
        *,
        owner: str,
        lease_secs: float,
        take: int = 1,
    ) -> tuple[list[Claim], bool]:
        """In ONE transaction, claim for ``owner`` the oldest ``take`` (at most) of those
        occurrences as runs with trigger ``backfill``, leased like scheduled ones, no more
        than the job's ``max_instances`` allows beside its runs in flight; and whether more
        remain. Each takes its occurrence's next attempt number, so the unique index
        (job, occurrence, attempt) that judges scheduled claims judges these too: two
        callers, in any processes, never claim one occurrence twice, nor a backfill and the
        scheduler. Completed like any run (``complete_runs``); backfill runs never retry."""

    async def job_memory(self, job_id: str) -> tuple[str | None, datetime | None]:
        """The job's previous successful result and when it ended (``context = "last"``; the
        claims carry it), or (None, None)."""
