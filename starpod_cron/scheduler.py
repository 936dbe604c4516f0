"""The scheduler: claim due occurrences, run them through the executor with real timeouts and a
concurrency limit, record every run. It talks to the store only through the store contract;
outcomes reach notifiers and deliveries through the store (see :mod:`starpod_cron.notify`).

Its parts: :mod:`~starpod_cron.claimloop` (recover, claim, sleep), :mod:`~starpod_cron.inflight`
(the runs in flight, each from claim to recorded outcome), :mod:`~starpod_cron.leases` (their
leases renewed) and :mod:`~starpod_cron.outcomes` (how a run ended -> what is recorded: pure).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Self

from . import owner as owners
from .backfill import run_backfill
from .claimloop import ClaimLoop
from .clock import Clock
from .errors import JobNotFound
from .inflight import Executor, ExecutorExited, Run, RunsInFlight, wait_all
from .loopwatch import LoopWatch
from .models import CronJob, CronRun, ModelOptions, RunTrigger
from .nodes import NodeHeartbeat
from .notify import Notifier, NotifierFeed, check_notifier
from .schedules import OneShot
from .settings import SchedulerSettings
from .store import CronStore
from .store.types import Claim
from .tasks import TaskSet
from .timeutil import from_ms
from .watchdog import Watchdog

__all__ = ["CronScheduler", "Executor", "ExecutorExited"]

log = logging.getLogger("starpod_cron.scheduler")


def _scheduler_roles() -> tuple[str, ...]:
    return ("scheduler",)


class CronScheduler:
    """Runs the jobs of one store.

    It sleeps until the earliest due time (``tick_secs`` is only the longest sleep; changes
    made through the store, or by other processes, wake it), claims due occurrences
    atomically, and runs up to ``max_concurrent_runs`` executor calls at once, each cancelled
    at its job's timeout. Runs are leased for ``lease_secs`` and renewed while they live; if
    this process dies (or pauses longer than a lease), another scheduler recovers its runs
    and this one's late results are refused.

    Options come from ``settings`` (a :class:`SchedulerSettings`); keyword arguments override
    single fields, folded into the one ``settings`` object here. The scheduler uses its
    store's clock (tests pass a ManualClock to ``CronStore.open``) and never changes the
    store's settings.
    """

    def __init__(
        self,
        store: CronStore,
        executor: Executor,
        settings: SchedulerSettings | None = None,
        *,
        tick_secs: float | None = None,
        max_concurrent_runs: int | None = None,
        shutdown_timeout_secs: float | None = None,
        lease_secs: float | None = None,
        claim_ahead_secs: float | None = None,
        cancel_grace_secs: float | None = None,
        notify_timeout_secs: float | None = None,
        heartbeat: NodeHeartbeat | None = None,
    ) -> None:
        self.settings = _folded(
            settings,
            tick_secs=tick_secs,
            max_concurrent_runs=max_concurrent_runs,
            shutdown_timeout_secs=shutdown_timeout_secs,
            lease_secs=lease_secs,
            claim_ahead_secs=claim_ahead_secs,
            cancel_grace_secs=cancel_grace_secs,
            notify_timeout_secs=notify_timeout_secs,
        )
        self.store = store
        self.executor = executor
        self.owner = owners.new_owner()
        self._runs = RunsInFlight(store, executor, self.owner, self.settings, on_finished=self.wake)
        self._loop = ClaimLoop(store, self.owner, self.settings, self._runs)
        self._lifecycle = TaskSet("starpod-cron")
        self._main: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._notifiers: list[Notifier] = []
        self._feed: NotifierFeed | None = None
        self._loopwatch: LoopWatch | None = None
        self.heartbeat = heartbeat or NodeHeartbeat(store, self.owner, roles=_scheduler_roles)
        """This process's row in the store's nodes while the loop runs (``nodes list``; a
        job added while no scheduler beats gets a warning). ``serve`` hands in its node's, so
        one process is one row."""

    @property
    def clock(self) -> Clock:
        return self.store.clock

    @property
    def running_count(self) -> int:
        return len(self._runs)

    @property
    def last_pass_ms(self) -> int | None:
        """When the loop last finished a pass (store clock), for health checks."""
        return self._loop.last_pass_ms

    @property
    def clock_refused(self) -> bool:
        """This node's clock is beyond ``max_clock_skew_secs`` of the database's: it claims
        nothing until it is back within (``serve`` only: its store clock is a DatabaseClock)."""
        return self._loop.clock_refused

    @property
    def claimed_total(self) -> int:
        """Runs claimed by this scheduler since it started (for metrics)."""
        return self._loop.claimed_total

    @property
    def _watchdog(self) -> Watchdog[Run]:  # the timers of the runs in flight (tests, bench)
        return self._runs.watchdog

    def with_notifier(self, notifier: Notifier) -> Self:
        """Call ``notifier(job_name, session_id, result_text, success)`` once for every run of
        this scheduler (scheduled or manual) that ends with success, failure or timeout, after
        it is durably recorded, until :meth:`stop`. Interrupted runs are not reported; runs
        finished elsewhere through the same store are not either. A notifier that is not an
        ``async def`` raises TypeError here."""
        check_notifier(notifier)
        self._notifiers.append(notifier)
        if self._main is not None:
            self._listen()
        return self

    def active_runs(self) -> list[tuple[str, str, bool]]:
        """``(job_name, run_id, started)`` of every run in flight (started: in an executor
        call; a run claimed ahead waits for its fire time, another for a free slot or to call
        a saturated provider again)."""
        return [(r.claim.job_name, r.claim.run_id, r.phase == "calling") for r in self._runs]

    @property
    def alive(self) -> bool:
        """True while the loop task runs."""
        return self._main is not None and not self._main.done()

    def wake(self) -> None:
        """Make the loop look at the store now."""
        self._loop.wake()

    async def checkpoint(self) -> int:
        """Wake the loop and return once it has completed a full pass that started after this
        call (claimed whatever was due then). For tests that show something did NOT happen."""
        if self._main is None or self._main.done():
            raise RuntimeError("the scheduler is not running")
        return await self._loop.checkpoint()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> asyncio.Task[None]:
        """Start the loop in a named task and return it (it ends after :meth:`stop`)."""
        if self._main is not None:
            raise RuntimeError("scheduler already started")
        self._listen()
        self._unsubscribe = self.store.on_change(self.wake)
        self._loopwatch = LoopWatch.for_loop()
        self._main = self._lifecycle.spawn(self._loop.run(), "scheduler")
        self._lifecycle.keep(self.heartbeat.run, "heartbeat")  # says "stopped" at stop()
        return self._main

    def _listen(self) -> None:
        """Notifiers hear of this scheduler's runs from now until stop."""
        if self._feed is None and self._notifiers:
            runs = self._runs.ids()
            self._feed = NotifierFeed(
                self.store,
                self._notifiers,
                self.settings.notify_timeout_secs,
                mine=runs.__contains__,
            )

    def interrupt(self) -> None:
        """Cancel every run in flight now; they are recorded ``interrupted`` and retried at the
        next start without using up a retry. A second Ctrl-C during :meth:`stop`."""
        self._runs.interrupt()

    async def stop(self) -> None:
        """Stop claiming, hand back at once the runs not in an executor call (claimed ahead of
        their fire time, waiting for a slot or to call a saturated provider again), wait up to
        ``shutdown_timeout_secs`` for those in a call, then cancel them and record them
        ``interrupted`` (retried at the next start, without using up a retry). Executors that
        ignore cancellation are abandoned after ``cancel_grace_secs``. Idempotent."""
        if self._stop_task is None:
            self._stop_task = self._lifecycle.spawn(self._shutdown(), "stop")
        await asyncio.shield(self._stop_task)

    async def _shutdown(self) -> None:
        s = self.settings
        self._loop.stop()
        self._runs.stopping = True
        if self._main is not None:
            await asyncio.gather(self._main, return_exceptions=True)
        if self._unsubscribe is not None:
            self._unsubscribe()
        calling = self._runs.hand_back_waiting()
        if calling:
            log.info(
                "stopping: waiting up to %gs for %d run(s)", s.shutdown_timeout_secs, len(calling)
            )
            await wait_all([r.done for r in calling], s.shutdown_timeout_secs)
        self._runs.interrupt()
        await self._runs.close(s.shutdown_timeout_secs)
        if self._feed is not None:
            await self._feed.close(grace=s.notify_timeout_secs)
        await self._lifecycle.stop(grace=s.cancel_grace_secs)
        if self._loopwatch is not None:
            self._loopwatch.release()
            self._loopwatch = None

    # ------------------------------------------------------------------- manual runs
    async def run_now(self, job_id: str) -> CronRun:
        """Run the job now through the executor (a MANUAL run) and return the recorded run.

        Works whether or not the loop is started; the run gets the same short, renewed lease
        as a scheduled one, so a process killed mid-run does not block the job. Raises
        JobNotFound or JobAlreadyRunning.
        """
        job = await self.store.get_job(job_id)
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        lease = self.settings.lease_secs
        run_id = await self.store.record_run_start(job_id, lease_secs=lease, owner=self.owner)
        self._listen()
        now = self.clock.now_ms()
        claim = _manual_claim(run_id, job, now, now + round(lease * 1000))
        memory = await self.store.job_memory(job_id)
        claim = dataclasses.replace(claim, previous_result=memory[0], previous_at=memory[1])
        run = self._runs.spawn(claim, None, now)
        await run.done.wait()
        recorded = await self.store.get_run(run_id)
        assert recorded is not None
        return recorded

    async def backfill(
        self, job_id: str, start: datetime, end: datetime, limit: int | None = None
    ) -> list[CronRun]:
        """Run once, oldest first, each occurrence of the job in [``start``, ``end``] (``end``
        no later than now) without a recorded run (one whose runs were all ``skipped`` or
        ``interrupted`` has none), as runs with trigger ``backfill``, and return them when
        they are recorded. They go through this scheduler's runs in flight (its
        ``max_concurrent_runs``, the job's ``max_instances``), whether or not its loop is
        started; two processes backfilling one range run each occurrence once. InvalidInput
        (nothing is written) when the range holds more than ``limit`` occurrences (default
        ``[cron] backfill_limit``) or is not in the past; JobNotFound."""
        self._listen()
        return await run_backfill(
            self.store, self._runs, self.owner, self.settings, job_id, start, end, limit=limit
        )


def _folded(settings: SchedulerSettings | None, **overrides: Any) -> SchedulerSettings:
    """``settings`` (or the defaults) with the keyword overrides given (not None) applied:
    validated once, as one SchedulerSettings."""
    base = settings or SchedulerSettings()
    given = {name: value for name, value in overrides.items() if value is not None}
    return dataclasses.replace(base, **given) if given else base


def _manual_claim(run_id: str, job: CronJob, now_ms: int, lease_until_ms: int) -> Claim:
    now: datetime = from_ms(now_ms)
    return Claim(
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
        isinstance(job.schedule, OneShot),
        options=ModelOptions.given(
            job.model,
            job.system_prompt,
            job.temperature,
            job.max_tokens,
            job.fallback_models,
            job.escalate_to,
            job.tools,
        ),
    )
