"""The scheduler: claim due occurrences, run them through the executor with real timeouts and a
concurrency limit, record every run, notify. It talks to the store only through the
:class:`~starpod_cron.store.base.CronStore` contract.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from .clock import Clock
from .errors import JobError, JobNotFound
from .models import CronRun, JobContext, JobResult, RunStatus, RunTrigger
from .notify import Notifier, deliver
from .store.base import Claim, Completion, CronStore
from .timeutil import check_zone, from_ms, to_ms

log = logging.getLogger("starpod_cron.scheduler")

Executor = Callable[[JobContext], Awaitable[JobResult]]
"""``async def executor(ctx: JobContext) -> JobResult``; raising means the run failed."""

_Reason = Literal["timeout", "stopping", "lease_lost"]


@dataclass(eq=False)
class _Active:
    claim: Claim
    task: asyncio.Task[None] | None = None
    exec_task: asyncio.Task[JobResult] | None = None
    reason: _Reason | None = None
    completing: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class CronScheduler:
    """Runs the jobs of one store.

    It sleeps until the earliest due time (``tick_secs`` is only the longest sleep, to notice
    changes made by other processes; changes through the same store wake it at once), claims
    due occurrences atomically, and runs up to ``max_concurrent_runs`` executor calls at once,
    each cancelled at its job's timeout. Runs are leased for ``lease_secs`` and the leases are
    renewed while they live, so if this process dies another scheduler (or the next start)
    recovers its runs within about one lease period.

    ``timezone`` becomes the store's default zone for jobs created without one. ``clock``
    replaces the store's clock so claims and waits agree (tests pass a ManualClock).
    """

    def __init__(
        self,
        store: CronStore,
        executor: Executor,
        tick_secs: float = 30,
        timezone: str | None = None,
        max_concurrent_runs: int = 4,
        shutdown_timeout_secs: float = 30,
        clock: Clock | None = None,
        *,
        lease_secs: float = 30,
        notify_timeout_secs: float = 30,
        cancel_grace_secs: float = 5,
    ) -> None:
        if tick_secs <= 0:
            raise ValueError("tick_secs must be positive")
        if max_concurrent_runs < 1:
            raise ValueError("max_concurrent_runs must be at least 1")
        if shutdown_timeout_secs < 0 or lease_secs <= 0 or notify_timeout_secs <= 0:
            raise ValueError(
                "shutdown_timeout_secs, lease_secs and notify_timeout_secs must be > 0"
            )
        if timezone is not None:
            check_zone(timezone)
            store.settings = dataclasses.replace(store.settings, default_timezone=timezone)
        if clock is not None:
            store.clock = clock
        self.store = store
        self.executor = executor
        self.tick_ms = round(tick_secs * 1000)
        self.max_concurrent_runs = max_concurrent_runs
        self.shutdown_timeout_secs = shutdown_timeout_secs
        self.lease_secs = lease_secs
        self.notify_timeout_secs = notify_timeout_secs
        self.cancel_grace_secs = cancel_grace_secs
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._notifier: Notifier | None = None
        self._active: dict[str, _Active] = {}
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def clock(self) -> Clock:
        return self.store.clock

    def with_notifier(self, notifier: Notifier) -> Self:
        """Call ``notifier(job_name, session_id, result_text, success)`` after every run."""
        self._notifier = notifier
        return self

    @property
    def running_count(self) -> int:
        return len(self._active)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> asyncio.Task[None]:
        """Start the loop in a named task and return it (it ends after :meth:`stop`)."""
        if self._main is not None:
            raise RuntimeError("scheduler already started")
        self._unsubscribe = self.store.on_change(self._wake.set)
        self._main = asyncio.create_task(self._loop(), name="starpod-cron:scheduler")
        return self._main

    async def stop(self) -> None:
        """Stop claiming, wait up to ``shutdown_timeout_secs`` for running jobs, then cancel
        them and record them ``interrupted`` (retried at the next start). Idempotent."""
        if self._stop_task is None:
            self._stop_task = asyncio.create_task(self._shutdown(), name="starpod-cron:stop")
        await asyncio.shield(self._stop_task)

    async def _shutdown(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._main is not None:
            await asyncio.gather(self._main, return_exceptions=True)
        if self._unsubscribe is not None:
            self._unsubscribe()
        running = [a.task for a in self._active.values() if a.task is not None]
        if running:
            log.info(
                "stopping: waiting up to %ss for %d run(s)",
                self.shutdown_timeout_secs,
                len(running),
            )
            await asyncio.wait(running, timeout=self.shutdown_timeout_secs)
        for active in list(self._active.values()):
            if active.exec_task is not None and not active.exec_task.done():
                active.reason = "stopping"
                active.exec_task.cancel()
        leftover = [a.task for a in self._active.values() if a.task is not None]
        if leftover:
            await asyncio.gather(*leftover, return_exceptions=True)
        if self._side_tasks:
            _, pending = await asyncio.wait(self._side_tasks, timeout=self.cancel_grace_secs)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # ----------------------------------------------------------------------- loop
    async def _loop(self) -> None:
        clock = self.clock
        lease_ms = round(self.lease_secs * 1000)
        next_recover = 0
        next_renew = clock.now_ms() + lease_ms // 3
        failures = 0
        while not self._stopping:
            self._wake.clear()
            now = clock.now_ms()
            deadline = now + self.tick_ms
            try:
                if self._active and now >= next_renew:
                    await self._renew()
                    next_renew = now + lease_ms // 3
                if now >= next_recover:
                    report = await self.store.recover()
                    if report.interrupted_run_ids:
                        log.warning(
                            "recovered %d interrupted run(s)", len(report.interrupted_run_ids)
                        )
                    next_recover = now + lease_ms // 2
                free = self.max_concurrent_runs - len(self._active)
                if free > 0 and not self._stopping:
                    claims = await self.store.claim_due(self.owner, free, self.lease_secs)
                    for claim in claims:
                        self._spawn(claim)
                    if len(claims) < free:
                        due = await self.store.next_due_at()
                        if due is not None:
                            deadline = min(deadline, to_ms(due))
                deadline = min(deadline, next_recover)
                if self._active:
                    deadline = min(deadline, next_renew)
                failures = 0
            except Exception:
                failures += 1
                delay = min(self.tick_ms, 250 * 2 ** min(failures, 8))
                log.exception(
                    "scheduler iteration failed (attempt %d); retrying in %d ms", failures, delay
                )
                deadline = now + delay
            await clock.wait(self._wake, deadline)

    async def _renew(self) -> None:
        checking = [a for a in self._active.values() if not a.completing]
        held = await self.store.renew_leases(self.owner, self.lease_secs)
        for active in checking:
            if active.claim.run_id not in held and not active.completing:
                log.error(
                    "job %s run %s: lease lost (recovered elsewhere); cancelling it",
                    active.claim.job.name,
                    active.claim.run_id,
                )
                active.reason = "lease_lost"
                if active.exec_task is not None:
                    active.exec_task.cancel()

    def _spawn(self, claim: Claim) -> _Active:
        active = _Active(claim)
        self._active[claim.run_id] = active
        active.task = asyncio.create_task(
            self._run(active), name=f"starpod-cron:run:{claim.job.name}:{claim.run_id}"
        )
        return active

    # ------------------------------------------------------------------------ runs
    async def _run(self, active: _Active) -> None:
        claim = active.claim
        job = claim.job
        try:
            ctx = JobContext(
                prompt=job.prompt,
                session_mode=job.session_mode,
                job_name=job.name,
                job_id=job.id,
                user_id=job.user_id,
                run_id=claim.run_id,
                attempt=claim.attempt,
                scheduled_for=claim.scheduled_for,
            )
            log.info(
                "job %s run %s: started (attempt %d, scheduled for %s)",
                job.name,
                claim.run_id,
                claim.attempt,
                claim.scheduled_for.isoformat(),
            )
            started = time.monotonic()
            exec_task = asyncio.create_task(
                self._call(ctx), name=f"starpod-cron:exec:{job.name}:{claim.run_id}"
            )
            active.exec_task = exec_task
            finished = asyncio.Event()
            exec_task.add_done_callback(lambda _: finished.set())
            deadline = self.clock.now_ms() + round(job.timeout_secs * 1000)
            if not await self.clock.wait(finished, deadline):
                active.reason = active.reason or "timeout"
                exec_task.cancel()
            if not exec_task.done():
                await asyncio.wait({exec_task}, timeout=self.cancel_grace_secs)
                if not exec_task.done():
                    log.error(
                        "job %s run %s: executor ignored cancellation for %ss; abandoning it",
                        job.name,
                        claim.run_id,
                        self.cancel_grace_secs,
                    )
                    self._keep(exec_task)
            if active.reason == "lease_lost":
                return
            completion, result_text, session_id = self._outcome(active, exec_task)
            active.completing = True
            (recorded,) = await self.store.complete_runs([completion], owner=self.owner)
            elapsed = time.monotonic() - started
            if not recorded:
                log.error(
                    "job %s run %s: finished but no longer leased here; result dropped",
                    job.name,
                    claim.run_id,
                )
                return
            log.info(
                "job %s run %s: %s in %.3fs",
                job.name,
                claim.run_id,
                completion.status.value,
                elapsed,
            )
            if self._notifier is not None and completion.status is not RunStatus.INTERRUPTED:
                self._keep(
                    asyncio.create_task(
                        deliver(
                            self._notifier,
                            job.name,
                            session_id,
                            result_text,
                            completion.status is RunStatus.SUCCESS,
                            run_id=claim.run_id,
                            timeout_secs=self.notify_timeout_secs,
                        ),
                        name=f"starpod-cron:notify:{job.name}:{claim.run_id}",
                    )
                )
        except Exception:
            log.exception(
                "job %s run %s: could not be recorded; its lease will expire and it "
                "will be retried",
                job.name,
                claim.run_id,
            )
        finally:
            self._active.pop(claim.run_id, None)
            active.done.set()
            self._wake.set()

    async def _call(self, ctx: JobContext) -> JobResult:
        result = await self.executor(ctx)
        if not isinstance(result, JobResult):
            raise TypeError(f"executor returned {type(result).__name__}, expected JobResult")
        return result

    def _outcome(
        self, active: _Active, task: asyncio.Task[JobResult]
    ) -> tuple[Completion, str, str]:
        run_id = active.claim.run_id
        if active.reason == "timeout":
            text = f"timed out after {active.claim.job.timeout_secs:g}s"
            return Completion(run_id, RunStatus.TIMEOUT, error=text), text, ""
        if task.cancelled() or not task.done():
            text = "interrupted: the scheduler stopped before the run finished"
            return (
                Completion(run_id, RunStatus.INTERRUPTED, error=text, count_attempt=False),
                text,
                "",
            )
        exc = task.exception()
        if exc is None:
            result = task.result()
            done = Completion(
                run_id,
                RunStatus.SUCCESS,
                summary=result.summary,
                session_id=result.session_id,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            )
            return done, result.summary, result.session_id
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, JobError):
            done = Completion(
                run_id,
                RunStatus.FAILED,
                error=text,
                permanent=exc.permanent,
                retry_after_secs=exc.retry_after,
            )
        else:
            done = Completion(run_id, RunStatus.FAILED, error=text)
        log.warning("job %s run %s: failed: %s", active.claim.job.name, run_id, text)
        return done, text, ""

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # ------------------------------------------------------------------- manual runs
    async def run_now(self, job_id: str) -> CronRun:
        """Run the job now through the executor (a MANUAL run) and return the recorded run.

        Works whether or not the loop is started. Raises JobNotFound or JobAlreadyRunning.
        """
        job = await self.store.get_job(job_id)
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        run_id = await self.store.record_run_start(
            job_id, lease_secs=job.timeout_secs + 60, owner=self.owner
        )
        now = self.clock.now_ms()
        claim = Claim(
            run_id=run_id,
            job=job,
            scheduled_for=from_ms(now),
            attempt=1,
            trigger=RunTrigger.MANUAL,
            lease_until_ms=now + round((job.timeout_secs + 60) * 1000),
        )
        active = self._spawn(claim)
        await active.done.wait()
        run = await self.store.get_run(run_id)
        assert run is not None
        return run
