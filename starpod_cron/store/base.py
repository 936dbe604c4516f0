"""The store contract, split by concern. Every backend (SQLite, PostgreSQL) implements
:class:`CronStore`, which is all of them; code that needs one concern can type against it
(the outbox needs only a :class:`DeliveryStore`).

The docstrings below ARE the guarantees; ``tests/contract`` checks them against every backend.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Collection, Generator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from ..clock import Clock
from ..errors import JobNotFound, RunNotFound, RunNotRunning
from ..models import (
    CronJob,
    CronRun,
    Delivery,
    DeliveryStatus,
    DestinationRefusal,
    JobUpdate,
    Lease,
    LoginSession,
    MisfirePolicy,
    NodeInfo,
    RunStats,
    RunStatus,
    SessionMessage,
    SessionMode,
)
from ..schedules import Schedule
from ..settings import StoreSettings
from .types import (
    Claim,
    Completion,
    DeliveryOutcome,
    DeliveryPlanner,
    JobSpec,
    RecoveryReport,
    RunFinished,
    Topic,
)

log = logging.getLogger("starpod_cron.store")

Listener = Callable[[], None]
FinishedListener = Callable[[Sequence[RunFinished]], None]


class StoreSignals:
    """Change signals: in-process subscribers told after commits (shared by every backend)."""

    def __init__(self) -> None:
        self._listeners: dict[Topic, list[Listener]] = {topic: [] for topic in Topic}
        self._finished_listeners: list[FinishedListener] = []

    def on_change(self, callback: Listener, topic: Topic = Topic.JOBS) -> Listener:
        """Call ``callback()`` after a committed change about ``topic``: made through this store
        object (at once) or, within about a quarter second, by another process or node
        (SQLite: ``PRAGMA data_version``; PostgreSQL: ``LISTEN/NOTIFY``). A signal is only a
        hint to look again: the tables stay the truth. Returns a function that unsubscribes."""
        listeners = self._listeners[Topic(topic)]
        listeners.append(callback)
        self._watch_others()

        def unsubscribe() -> None:
            if callback in listeners:
                listeners.remove(callback)

        return unsubscribe

    def on_run_finished(self, callback: FinishedListener) -> Listener:
        """Call ``callback(events)`` after runs finished through THIS store object were
        durably recorded with success, failure or timeout (with the deliveries planned for
        them). Runs finished by other processes are not reported here: their deliveries are
        in the store. Returns a function that unsubscribes."""
        self._finished_listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._finished_listeners:
                self._finished_listeners.remove(callback)

        return unsubscribe

    def _watch_others(self) -> None:
        """Backends start watching other processes' commits once someone listens."""

    def _signal(self, *topics: Topic) -> None:
        for topic in topics:
            for callback in list(self._listeners[topic]):
                try:
                    callback()
                except Exception:
                    log.exception("store change listener %r failed", callback)

    def _finished(self, events: Sequence[RunFinished]) -> None:
        if not events:
            return
        for callback in list(self._finished_listeners):
            try:
                callback(events)
            except Exception:
                log.exception("run-finished listener %r failed", callback)


class JobStore(abc.ABC):
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
        description: str | None = None,
    ) -> str:
        """Create a job with every option; returns its id. ``origin`` records where the job
        came from (say, a Telegram chat) so its results can be routed back.

        Raises InvalidSchedule (malformed, never fires, one-shot in the past), InvalidTimezone,
        InvalidJob (empty name/prompt, prompt over 64 KiB, bad retries/timeout) or
        DuplicateJobName (the owner already has a job of that name); nothing is written then.
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
            description=description,
        )
        (job_id,) = await self.add_jobs([spec])
        return job_id

    @abc.abstractmethod
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
    async def get_job_by_name(self, name: str, user_id: str | None = None) -> CronJob | None:
        """The job called ``name`` owned by ``user_id`` (None: the agent-level job), or None.
        Never a job of another owner."""

    @abc.abstractmethod
    async def find_jobs_by_name(self, name: str) -> list[CronJob]:
        """Every job called ``name``, whoever owns it (for operators), agent-level first."""

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

    async def remove_by_name(self, name: str, user_id: str | None = None) -> None:
        """Delete the job called ``name`` of owner ``user_id`` (see :meth:`remove_job`).
        Raises JobNotFound."""
        job = await self.get_job_by_name(name, user_id)
        if job is None:
            raise JobNotFound(f"no job named {name!r}")
        await self.remove_job(job.id)

    @abc.abstractmethod
    async def get_due_jobs(self) -> list[CronJob]:
        """Read-only: enabled jobs not running whose next fire or retry is due now."""

    @abc.abstractmethod
    async def next_due_at(self) -> datetime | None:
        """The earliest time any enabled, idle job becomes due (may be in the past)."""


class RunStore(abc.ABC):
    """Run history."""

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
    async def run_stats(self) -> dict[str, RunStats]:
        """Per job id: its kept runs, how many failed or timed out, and the tokens they used.
        Jobs without runs are left out."""

    @abc.abstractmethod
    async def prune_messages(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete conversation messages (``main`` sessions) written before ``older_than``;
        with ``dry_run`` only count them. Returns how many."""

    @abc.abstractmethod
    async def prune_deliveries(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete deliveries created before ``older_than`` that are done with (delivered,
        dead, or published events; never one still pending or being sent); with ``dry_run``
        only count them. Returns how many. Replay reaches back no further than what is kept."""

    @abc.abstractmethod
    async def optimize(self) -> None:
        """Refresh the database's query statistics (SQLite ``PRAGMA optimize``, PostgreSQL
        ``ANALYZE`` of this store's tables)."""

    @abc.abstractmethod
    async def prune_runs(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete finished runs that completed before ``older_than``; returns how many were
        (or, with ``dry_run``, would be) deleted. Running runs are never deleted."""


class SchedulerStore(abc.ABC):
    """The scheduler's atomic primitives: claim, renew, complete, recover; manual runs."""

    @abc.abstractmethod
    async def get_run(self, run_id: str) -> CronRun | None:
        """The run with this id, or None (as ``RunStore.get_run``)."""

    @abc.abstractmethod
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
        two processes or on two machines, never receive the same occurrence (the database
        enforces one run per job, occurrence and attempt), and a job is never claimed while
        a run of it is in progress.
        """

    @abc.abstractmethod
    async def renew_leases(
        self, owner: str, lease_secs: float, run_ids: Collection[str] | None = None
    ) -> set[str]:
        """Extend to now + ``lease_secs`` the lease of each running run in ``run_ids`` (None:
        every run) still held by ``owner``; returns the ids still held. A run missing from the
        answer was recovered by someone else: its holder must stop working on it."""

    @abc.abstractmethod
    async def complete_runs(
        self, completions: Sequence[Completion], *, owner: str | None
    ) -> list[bool]:
        """Record the end of several runs in ONE transaction; durable when this returns.

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

    @abc.abstractmethod
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


class DeliveryStore(abc.ABC):
    """The durable outbox: what to tell whom about finished runs."""

    @abc.abstractmethod
    def set_delivery_planner(self, planner: DeliveryPlanner | None) -> None:
        """Have ``complete_runs`` ask ``planner(job, run)`` what to deliver about every run it
        finishes with success, failure or timeout, and insert those deliveries in the SAME
        transaction (so a recorded result is never without its notifications). A delivery is
        unique per (run, destination, kind); inserting it twice keeps one."""

    @abc.abstractmethod
    def set_start_planner(self, planner: DeliveryPlanner | None) -> None:
        """Have ``claim_due`` and ``record_run_start`` ask ``planner(job, run)`` (the run
        ``running``) what to publish about every run they start, and insert those deliveries
        in the SAME transaction, before any outcome of the run can be recorded: a started
        event always comes before its run's finished event. A run claimed ahead of its fire
        time is told at its claim, with ``started_at`` its fire time."""

    @abc.abstractmethod
    async def claim_deliveries(
        self,
        owner: str,
        limit: int,
        lease_secs: float,
        prefixes: Sequence[str] | None = None,
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries (pending and past their next attempt time, or
        leased by someone whose lease expired or who was a process of this machine that no
        longer exists) to destinations starting with one of
        ``prefixes`` (None: any), oldest first; each claim counts an attempt. Two claimers
        never hold the same delivery.

        Deliveries to one destination go out in order: a delivery is claimed only when every
        older undelivered one to the same destination is claimed with it, so one waiting on a
        retry (a rate limit, say) holds back the newer ones behind it."""

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
    async def renew_deliveries(self, owner: str, ids: Collection[int], lease_secs: float) -> int:
        """Extend ``owner``'s lease on the deliveries ``ids`` it still holds to ``lease_secs``
        from now (a long batch to one chat goes out slower than one lease); returns how many
        it still held."""

    @abc.abstractmethod
    async def record_delivery_progress(self, delivery_id: int, owner: str, progress: int) -> bool:
        """Remember that the first ``progress`` parts of a leased delivery were sent (a long
        message sent in pieces), so a retry or another sender resumes after them. False
        where the lease was lost."""

    @abc.abstractmethod
    async def list_deliveries(
        self,
        since_id: int,
        destinations: Sequence[str] | None,
        limit: int = 1000,
        *,
        prefix: str | None = None,
    ) -> list[Delivery]:
        """Deliveries to any of ``destinations`` (None: to anywhere), to destinations starting
        with ``prefix`` if given, with an id above ``since_id``, oldest first (the replay of
        an event stream)."""

    @abc.abstractmethod
    async def count_deliveries(self) -> dict[DeliveryStatus, int]:
        """How many deliveries there are in each status (statuses with none are left out)."""

    @abc.abstractmethod
    async def deliveries_with_status(
        self, status: DeliveryStatus, limit: int = 100
    ) -> list[Delivery]:
        """The newest ``limit`` deliveries in ``status`` (``dead`` ones: what failed), newest
        first."""

    @abc.abstractmethod
    async def retry_delivery(self, delivery_id: int) -> bool:
        """Give a dead delivery another round of attempts, due now; False (and nothing
        changes) unless it is dead."""

    @abc.abstractmethod
    async def next_delivery_at(self, prefixes: Sequence[str] | None = None) -> datetime | None:
        """When the earliest pending delivery (or expired lease) to destinations starting with
        one of ``prefixes`` (None: any) becomes due, if any."""

    @abc.abstractmethod
    async def refuse_destination(
        self, name: str, error: str, backoff_secs: Sequence[float]
    ) -> DestinationRefusal:
        """Record that the destination ``name`` (a channel as a whole, such as
        ``telegram:<bot id>``; never a secret) refuses every message, with its ``error``: one
        more refusal in a row (``failures``; the first opens it, ``since`` now), to be probed
        again ``backoff_secs[failures - 1]`` from now (the last delay repeats). Every node sees
        it (:meth:`refusing_destinations`) until :meth:`clear_destination`."""

    @abc.abstractmethod
    async def take_destination_probe(self, name: str, lease_secs: float) -> bool:
        """Let one caller probe the refusing destination ``name`` now: True when it was due
        (``retry_at`` passed), its ``retry_at`` then moved ``lease_secs`` ahead so that nobody
        else probes meanwhile; of callers racing, exactly one gets True. False when it is not
        refusing or not due."""

    @abc.abstractmethod
    async def clear_destination(self, name: str) -> bool:
        """The destination ``name`` answers again: forget its refusal and wake every node's
        outbox (its waiting deliveries are due). True if it was refusing."""

    @abc.abstractmethod
    async def refusing_destinations(self) -> list[DestinationRefusal]:
        """The destinations refusing now, by name."""


class CoordinationStore(abc.ABC):
    """What several gateway nodes sharing one store agree on: named leases (one holder at a
    time) and node heartbeats. Lease times are the database clock's view of wall time, so
    nodes on several machines need synchronized clocks (NTP), as for run leases."""

    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, lease_secs: float) -> Lease | None:
        """Take or renew the lease ``name`` for ``holder`` for ``lease_secs`` from now, and
        return it (with the state the previous holder saved); None if someone else holds it.

        Granted when nobody holds it, when the holder's lease expired, when the holder is a
        process of this machine that no longer exists, or to the holder itself (a renewal).
        Two callers racing for a free lease never both get it."""

    @abc.abstractmethod
    async def save_lease_state(self, name: str, holder: str, state: str) -> bool:
        """Store ``state`` with the lease, only while ``holder`` still holds it unexpired
        (fenced: a holder whose lease was taken over writes nothing and gets False)."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up now (its state is kept for the next holder); a no-op unless
        ``holder`` holds it."""

    @abc.abstractmethod
    async def list_leases(self) -> list[Lease]:
        """Every lease ever taken, by name (expired ones too: see ``expires_at``)."""

    @abc.abstractmethod
    async def heartbeat(self, node: NodeInfo, *, stopped: bool = False) -> None:
        """Record that ``node`` is alive now (``last_seen`` is set to the store's clock), or
        with ``stopped`` that it stopped cleanly. Nodes not seen for a week are forgotten."""

    @abc.abstractmethod
    async def list_nodes(self) -> list[NodeInfo]:
        """Every node seen in the last week, most recently started first."""

    @abc.abstractmethod
    async def last_delivery_id(self) -> int:
        """The id of the newest delivery (0 if none): where a reader that only wants events
        from now on starts tailing :meth:`list_deliveries`."""


class SessionStore(abc.ABC):
    """Conversations of ``session_mode = "main"`` jobs."""

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


class LoginSessionStore(abc.ABC):
    """Dashboard log-in sessions (the browser's cookie), shared by every gateway node on the
    store: a session started on one node works on all, and a log-out on one ends it on all.
    The store keeps only the SHA-256 of a session id, never the id: reading the table logs
    nobody in. (Not the conversations of :class:`SessionStore`.)"""

    @abc.abstractmethod
    async def create_login_session(
        self, user_id: str, token_fingerprint: str, ttl_secs: float
    ) -> str:
        """Start a session for ``user_id``, who logged in with the gateway token whose
        fingerprint is ``token_fingerprint`` (64 hex digits), ending ``ttl_secs`` from now by
        the store's clock however often it is used. Returns the new session id: 128 random
        bits, 22 URL-safe characters, returned only here. Expired sessions are deleted in the
        same transaction. InvalidInput (nothing written) for an empty user, a malformed
        fingerprint, or ``ttl_secs`` outside 1 s to 366 days."""

    @abc.abstractmethod
    async def get_login_session(self, session_id: str) -> LoginSession | None:
        """The session with this id if it exists and has not expired by the store's clock;
        None otherwise (any string is accepted: a malformed id is just unknown). Using it
        sets ``last_used_at`` to now when that was more than a minute ago (at most one write
        per session per minute)."""

    @abc.abstractmethod
    async def delete_login_session(self, session_id: str) -> bool:
        """Log out: delete the session, so that no node accepts it any more. True if it
        existed (expired or not)."""

    @abc.abstractmethod
    async def end_login_sessions(self, keep_fingerprints: Collection[str]) -> int:
        """Delete every session started with a token whose fingerprint is not in
        ``keep_fingerprints`` (tokens removed from the configuration); the number deleted."""

    @abc.abstractmethod
    async def prune_login_sessions(self) -> int:
        """Delete the expired sessions; the number deleted."""


class PreferenceStore(abc.ABC):
    """Per-user preferences."""

    @abc.abstractmethod
    async def get_user_timezone(self, user_id: str) -> str | None:
        """The zone a user chose as their default, if any."""

    @abc.abstractmethod
    async def set_user_timezone(self, user_id: str, timezone: str) -> None:
        """Store a user's default zone (validated: InvalidTimezone writes nothing)."""


class CronStore(
    StoreSignals,
    JobStore,
    RunStore,
    SchedulerStore,
    DeliveryStore,
    SessionStore,
    LoginSessionStore,
    PreferenceStore,
    CoordinationStore,
):
    """Durable home of jobs, runs and deliveries: every concern above, one backend.

    Open one with :meth:`open`. All times in and out are aware UTC datetimes; the database
    stores epoch milliseconds. Every write is a single transaction: bad input raises an
    :class:`~starpod_cron.errors.InvalidInput` subclass and writes nothing.
    """

    settings: StoreSettings
    clock: Clock
    url: str

    @staticmethod
    def open(
        url: str,
        *,
        settings: StoreSettings | None = None,
        clock: Clock | None = None,
        create: bool = True,
    ) -> StoreOpener:
        """Open (creating and migrating as needed) the store at ``url``: a file path or
        ``sqlite:///path`` (SQLite), or ``postgresql://...`` / ``postgres://...``. Use
        ``store = await CronStore.open(...)`` or ``async with CronStore.open(...) as store:``
        (closed on exit). With ``create=False`` a missing SQLite file is an error.

        Raises ConfigError for an unknown scheme, StoreUnavailable when the database cannot be
        opened (not a database, unreadable, unreachable), and SchemaVersionError when it was
        written by a newer schema version. Migrations only ever add; they never delete user
        data.
        """
        return StoreOpener(url, settings or StoreSettings(), clock, create)

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
        """Finish in-flight writes and release the database. Idempotent. A store that is
        never closed does not keep the process from exiting."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable if the database cannot be used now (unreachable, or, for
        SQLite, its file was deleted or replaced while open); return otherwise."""


class StoreOpener:
    """What :meth:`CronStore.open` returns: await it, or use it as ``async with``."""

    def __init__(
        self, url: str, settings: StoreSettings, clock: Clock | None, create: bool
    ) -> None:
        self._url = url
        self._settings = settings
        self._clock = clock
        self._create = create
        self._store: CronStore | None = None

    async def _open(self) -> CronStore:
        from .opener import open_store  # resolves the backend by URL; imports no backend here

        return await open_store(self._url, self._settings, self._clock, create=self._create)

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
