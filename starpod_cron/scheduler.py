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
from .completions import CompletionWriter
from .errors import JobError, JobNotFound
from .models import CronRun, JobContext, JobResult, RunStatus
from .notify import Notifier, deliver
from .store.base import Claim, Completion, CronStore
from .timeutil import check_zone, from_ms, to_ms
from .watchdog import Watchdog

log = logging.getLogger("starpod_cron.scheduler")

Executor = Callable[[JobContext], Awaitable[JobResult]]
"""``async def executor(ctx: JobContext) -> JobResult``; raising means the run failed."""

_Reason = Literal["timeout", "stopping", "lease_lost"]
CLAIM_BATCH = 1000  # occurrences claimed per transaction


@dataclass(eq=False)
class _Active:
    """One run in flight: its executor task, why it was cancelled (if it was), and whether its
    outcome has been handed to the completion writer (``settled``) and recorded (``done``)."""

    claim: Claim
    started: float
    task: asyncio.Task[JobResult] | None = None
    reason: _Reason | None = None
    begun: bool = False
    settled: bool = False
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
        claim_ahead_secs: float | None = None,
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
        if claim_ahead_secs is None:
            claim_ahead_secs = min(1.0, lease_secs / 4)
        if not 0 <= claim_ahead_secs < lease_secs:
            raise ValueError("claim_ahead_secs must be >= 0 and shorter than lease_secs")
        self.claim_ahead_secs = claim_ahead_secs
        self.claim_ahead_ms = round(claim_ahead_secs * 1000)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._notifier: Notifier | None = None
        self._active: dict[str, _Active] = {}
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._gate_timers: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._completions = CompletionWriter(store, self.owner)
        self._watchdog: Watchdog[_Active] = Watchdog(store.clock, self._expire)
        self._never = asyncio.Event()

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
        for active in list(self._active.values()):
            if not active.begun:  # claimed ahead of its fire time: hand it back at once
                self._cancel(active, "stopping")
        if self._active:
            log.info(
                "stopping: waiting up to %ss for %d run(s)",
                self.shutdown_timeout_secs,
                len(self._active),
            )
            waits = [asyncio.ensure_future(a.done.wait()) for a in self._active.values()]
            _, pending = await asyncio.wait(waits, timeout=self.shutdown_timeout_secs)
            for waiter in pending:
                waiter.cancel()
        for active in list(self._active.values()):
            if not active.settled:
                self._cancel(active, "stopping")
        remaining = [a.done.wait() for a in self._active.values()]
        if remaining:
            await asyncio.gather(*remaining)
        await self._completions.close()
        await self._watchdog.close()
        for timer in list(self._gate_timers):  # their runs were handed back above
            timer.cancel()
        await asyncio.gather(*self._gate_timers, return_exceptions=True)
        if self._side_tasks:
            _, pending_side = await asyncio.wait(self._side_tasks, timeout=self.cancel_grace_secs)
            for task in pending_side:
                task.cancel()
            await asyncio.gather(*pending_side, return_exceptions=True)

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
                    report = await self.store.recover(
                        alive_owner=self.owner, repair=next_recover == 0
                    )
                    if report.interrupted_run_ids:
                        log.warning(
                            "recovered %d interrupted run(s)", len(report.interrupted_run_ids)
                        )
                    next_recover = now + lease_ms // 2
                free = self.max_concurrent_runs - len(self._active)
                if free > 0 and not self._stopping:
                    batch = min(free, CLAIM_BATCH)
                    claims = await self.store.claim_due(
                        self.owner, batch, self.lease_secs, ahead_secs=self.claim_ahead_secs
                    )
                    self._admit(claims)
                    if len(claims) == batch:
                        # More may be due: claim again once the new runs have started, so
                        # claiming, running and recording overlap instead of queueing.
                        deadline = now
                    else:
                        due = await self.store.next_due_at()
                        if due is not None:
                            deadline = min(deadline, to_ms(due) - self.claim_ahead_ms)
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
        checking = [a for a in self._active.values() if not a.settled]
        held = await self.store.renew_leases(self.owner, self.lease_secs)
        for active in checking:
            if active.claim.run_id not in held and not active.settled:
                log.error(
                    "job %s run %s: lease lost (recovered elsewhere); cancelling it",
                    active.claim.job_name,
                    active.claim.run_id,
                )
                self._cancel(active, "lease_lost")

    # ------------------------------------------------------------------------ runs
    def _admit(self, claims: list[Claim]) -> None:
        """Create a task per claimed run. A run claimed ahead waits on a gate shared by every
        run with the same fire time; one timer opens it, so they all start on time."""
        now = self.clock.now_ms()
        gates: dict[int, asyncio.Event] = {}
        for claim in claims:
            start = to_ms(claim.start_at)
            gate = None
            if start > now:
                gate = gates.get(start)
                if gate is None:
                    gate = gates[start] = asyncio.Event()
                    timer = asyncio.create_task(
                        self._open_at(start, gate), name=f"starpod-cron:start-at:{start}"
                    )
                    self._gate_timers.add(timer)
                    timer.add_done_callback(self._gate_timers.discard)
            self._spawn(claim, gate, max(start, now))

    async def _open_at(self, start_ms: int, gate: asyncio.Event) -> None:
        await self.clock.wait(self._never, start_ms)
        gate.set()

    def _spawn(
        self, claim: Claim, gate: asyncio.Event | None = None, start_ms: int | None = None
    ) -> _Active:
        active = _Active(claim, time.monotonic())
        self._active[claim.run_id] = active
        ctx = JobContext(
            prompt=claim.prompt,
            session_mode=claim.session_mode,
            job_name=claim.job_name,
            job_id=claim.job_id,
            user_id=claim.user_id,
            run_id=claim.run_id,
            attempt=claim.attempt,
            scheduled_for=claim.scheduled_for,
        )
        task = asyncio.create_task(
            self._call(active, ctx, gate),
            name=f"starpod-cron:run:{claim.job_name}:{claim.run_id}",
        )
        active.task = task
        task.add_done_callback(lambda _: self._settle(active))
        start = self.clock.now_ms() if start_ms is None else start_ms
        self._watchdog.watch(active, start + round(claim.timeout_secs * 1000))
        return active

    async def _call(
        self, active: _Active, ctx: JobContext, gate: asyncio.Event | None
    ) -> JobResult:
        if gate is not None:
            await gate.wait()
        active.begun = True
        active.started = time.monotonic()
        log.info(
            "job %s run %s: started (attempt %d, scheduled for %s)",
            ctx.job_name,
            ctx.run_id,
            ctx.attempt,
            ctx.scheduled_for,
        )
        result = await self.executor(ctx)
        if not isinstance(result, JobResult):
            raise TypeError(f"executor returned {type(result).__name__}, expected JobResult")
        return result

    def _expire(self, active: _Active) -> None:
        """The watchdog's callback: the run reached its job's timeout."""
        if not active.settled:
            self._cancel(active, "timeout")

    def _cancel(self, active: _Active, reason: _Reason) -> None:
        active.reason = active.reason or reason
        assert active.task is not None
        active.task.cancel()
        asyncio.get_running_loop().call_later(self.cancel_grace_secs, self._abandon, active)

    def _abandon(self, active: _Active) -> None:
        """An executor that ignores cancellation is left behind; its run is still recorded."""
        if active.settled:
            return
        log.error(
            "job %s run %s: executor ignored cancellation for %ss; abandoning it",
            active.claim.job_name,
            active.claim.run_id,
            self.cancel_grace_secs,
        )
        assert active.task is not None
        self._keep(active.task)
        self._settle(active)

    def _settle(self, active: _Active) -> None:
        """The run's outcome is known: hand it to the completion writer (once)."""
        if active.settled:
            return
        active.settled = True
        if active.reason == "lease_lost":
            self._finish(active)
            return
        completion, text, session_id = self._outcome(active)
        self._completions.submit(
            completion, lambda answer: self._recorded(active, completion, text, session_id, answer)
        )

    def _recorded(
        self,
        active: _Active,
        completion: Completion,
        text: str,
        session_id: str,
        answer: bool | BaseException,
    ) -> None:
        claim = active.claim
        if isinstance(answer, BaseException):
            log.error(
                "job %s run %s: could not be recorded (%s); its lease will expire and it "
                "will be retried",
                claim.job_name,
                claim.run_id,
                answer,
            )
        elif not answer:
            log.error(
                "job %s run %s: finished but no longer leased here; result dropped",
                claim.job_name,
                claim.run_id,
            )
        else:
            log.info(
                "job %s run %s: %s in %.3fs",
                claim.job_name,
                claim.run_id,
                completion.status.value,
                time.monotonic() - active.started,
            )
            if self._notifier is not None and completion.status is not RunStatus.INTERRUPTED:
                self._keep(
                    asyncio.create_task(
                        deliver(
                            self._notifier,
                            claim.job_name,
                            session_id,
                            text,
                            completion.status is RunStatus.SUCCESS,
                            run_id=claim.run_id,
                            timeout_secs=self.notify_timeout_secs,
                        ),
                        name=f"starpod-cron:notify:{claim.job_name}:{claim.run_id}",
                    )
                )
        self._finish(active)

    def _finish(self, active: _Active) -> None:
        self._active.pop(active.claim.run_id, None)
        active.done.set()
        self._wake.set()

    def _outcome(self, active: _Active) -> tuple[Completion, str, str]:
        run_id = active.claim.run_id
        task = active.task
        if active.reason == "timeout":
            text = f"timed out after {active.claim.timeout_secs:g}s"
            return Completion(run_id, RunStatus.TIMEOUT, error=text), text, ""
        if not active.begun:
            text = "interrupted: the scheduler stopped before the run's fire time"
            return (
                Completion(run_id, RunStatus.INTERRUPTED, error=text, count_attempt=False),
                text,
                "",
            )
        assert task is not None
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
        log.warning("job %s run %s: failed: %s", active.claim.job_name, run_id, text)
        if isinstance(exc, JobError):
            done = Completion(
                run_id,
                RunStatus.FAILED,
                error=text,
                permanent=exc.permanent,
                retry_after_secs=exc.retry_after,
            )
            return done, text, ""
        return Completion(run_id, RunStatus.FAILED, error=text), text, ""

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
        lease_until = now + round((job.timeout_secs + 60) * 1000)
        claim = Claim.manual(run_id, job, from_ms(now), lease_until)
        active = self._spawn(claim)
        await active.done.wait()
        run = await self.store.get_run(run_id)
        assert run is not None
        return run
