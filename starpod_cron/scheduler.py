"""The scheduler: claim due occurrences, run them through the executor with real timeouts and a
concurrency limit, record every run. It talks to the store only through the store contract;
outcomes reach notifiers and deliveries through the store (see :mod:`starpod_cron.notify`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Self

from . import owner as owners
from .backpressure import AdaptiveLimit
from .clock import Clock
from .completions import CompletionWriter
from .errors import JobError, JobNotFound, ProviderSaturated, StoreUnavailable
from .logs import RunLog, run_log
from .loopwatch import LoopWatch
from .models import CronJob, CronRun, JobContext, JobResult, RunStatus, RunTrigger
from .notify import Notifier, NotifierFeed
from .settings import SchedulerSettings
from .store import CronStore
from .store.types import Claim, Completion
from .tasks import TaskSet
from .timeutil import from_ms, to_ms
from .watchdog import Watchdog

log = logging.getLogger("starpod_cron.scheduler")

Executor = Callable[[JobContext], Awaitable[JobResult]]
"""``async def executor(ctx: JobContext) -> JobResult``; raising means the run failed."""

_Reason = Literal["timeout", "stopping", "lease_lost"]
CLAIM_BATCH = 1000  # occurrences claimed per transaction
LATE_MS = 50  # a run ending this long after its deadline overran it (the loop was blocked)
SATURATED_DELAY_SECS = 1.0  # a saturated provider that said nothing about when to come back
STORE_ERROR_REPEAT_SECS = 60


class ExecutorExited(JobError):
    """The executor called ``sys.exit()`` or raised ``KeyboardInterrupt``: the run failed."""


@dataclass(eq=False)
class _Active:
    """One run in flight: its executor task, why it was cancelled (if it was), whether its
    outcome has been handed to the completion writer (``settled``) and recorded (``done``)."""

    claim: Claim
    log: RunLog
    deadline_ms: int
    started: float
    task: asyncio.Task[JobResult] | None = None
    reason: _Reason | None = None
    begun: bool = False
    settled: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class CronScheduler:
    """Runs the jobs of one store.

    It sleeps until the earliest due time (``tick_secs`` is only the longest sleep; changes
    made through the store, or by other processes, wake it), claims due occurrences
    atomically, and runs up to ``max_concurrent_runs`` executor calls at once, each cancelled
    at its job's timeout. Runs are leased for ``lease_secs`` and renewed while they live; if
    this process dies (or pauses longer than a lease), another scheduler recovers its runs
    and this one's late results are refused.

    Options come from ``settings`` (a :class:`SchedulerSettings`); keyword arguments override
    single fields. The scheduler uses its store's clock (tests pass a ManualClock to
    ``CronStore.open``) and never changes the store's settings.
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
    ) -> None:
        overrides: dict[str, Any] = {
            "tick_secs": tick_secs,
            "max_concurrent_runs": max_concurrent_runs,
            "shutdown_timeout_secs": shutdown_timeout_secs,
            "lease_secs": lease_secs,
            "claim_ahead_secs": claim_ahead_secs,
            "cancel_grace_secs": cancel_grace_secs,
            "notify_timeout_secs": notify_timeout_secs,
        }
        base = settings or SchedulerSettings()
        self.settings = dataclasses.replace(
            base, **{k: v for k, v in overrides.items() if v is not None}
        )
        self.store = store
        self.executor = executor
        self.owner = owners.new_owner()
        self._active: dict[str, _Active] = {}
        self._tasks = TaskSet("starpod-cron")
        self._abandoned: set[asyncio.Task[JobResult]] = set()
        self._wake = asyncio.Event()
        self._never = asyncio.Event()
        self._renew_now = asyncio.Event()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._completions = CompletionWriter(store, self.owner)
        self._limit = AdaptiveLimit(self.settings.max_concurrent_runs)
        self._watchdog: Watchdog[_Active] = Watchdog(store.clock, self._expire)
        self._feeds: list[NotifierFeed] = []
        self._leases: asyncio.Task[None] | None = None
        self._renewed_at = time.monotonic()
        self._passes = 0
        self.last_pass_ms: int | None = None
        """When the loop last finished a pass (store clock), for health checks."""
        self.claimed_total = 0
        """Runs claimed by this scheduler since it started (for metrics)."""
        self._in_pass = False
        self._pass_done = asyncio.Condition()
        self._loopwatch: LoopWatch | None = None
        self._store_error: tuple[str, float] | None = None

    @property
    def clock(self) -> Clock:
        return self.store.clock

    @property
    def running_count(self) -> int:
        return len(self._active)

    def with_notifier(self, notifier: Notifier) -> Self:
        """Call ``notifier(job_name, session_id, result_text, success)`` once for every run
        that ends with success, failure or timeout through this scheduler's store (scheduled
        or manual), after it is durably recorded. Interrupted runs are not reported."""
        self._feeds.append(NotifierFeed(self.store, notifier, self.settings.notify_timeout_secs))
        return self

    def active_runs(self) -> list[tuple[str, str, bool]]:
        """``(job_name, run_id, started)`` of every run in flight (started: the executor was
        called; a run claimed ahead waits for its fire time)."""
        return [(a.claim.job_name, a.claim.run_id, a.begun) for a in self._active.values()]

    @property
    def alive(self) -> bool:
        """True while the loop task runs."""
        return self._main is not None and not self._main.done()

    def wake(self) -> None:
        """Make the loop look at the store now."""
        self._wake.set()

    async def checkpoint(self) -> int:
        """Wake the loop and return once it has completed a full pass that started after this
        call (claimed whatever was due then). For tests that show something did NOT happen."""
        if self._main is None or self._main.done():
            raise RuntimeError("the scheduler is not running")
        target = self._passes + (2 if self._in_pass else 1)
        self._wake.set()
        async with self._pass_done:
            await self._pass_done.wait_for(lambda: self._passes >= target or self._stopping)
        return self._passes

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> asyncio.Task[None]:
        """Start the loop in a named task and return it (it ends after :meth:`stop`)."""
        if self._main is not None:
            raise RuntimeError("scheduler already started")
        self._unsubscribe = self.store.on_change(self._wake.set)
        self._loopwatch = LoopWatch.for_loop()
        self._main = asyncio.create_task(self._loop(), name="starpod-cron:scheduler")
        return self._main

    def interrupt(self) -> None:
        """Cancel every run in flight now; they are recorded ``interrupted`` and retried at the
        next start without using up a retry. A second Ctrl-C during :meth:`stop`."""
        for active in list(self._active.values()):
            if not active.settled:
                self._cancel(active, "stopping")

    async def stop(self) -> None:
        """Stop claiming, wait up to ``shutdown_timeout_secs`` for running jobs, then cancel
        them and record them ``interrupted`` (retried at the next start). Executors that ignore
        cancellation are abandoned after ``cancel_grace_secs``. Idempotent."""
        if self._stop_task is None:
            self._stop_task = asyncio.create_task(self._shutdown(), name="starpod-cron:stop")
        await asyncio.shield(self._stop_task)

    async def _shutdown(self) -> None:
        s = self.settings
        self._stopping = True
        self._wake.set()
        if self._main is not None:
            await asyncio.gather(self._main, return_exceptions=True)
        if self._unsubscribe is not None:
            self._unsubscribe()
        for active in list(self._active.values()):
            if not active.begun:  # claimed ahead of its fire time: hand it back at once
                self._cancel(active, "stopping")
        started = [a for a in self._active.values() if a.begun and not a.settled]
        if started:
            log.info(
                "stopping: waiting up to %gs for %d run(s)", s.shutdown_timeout_secs, len(started)
            )
            await _wait_all([a.done for a in started], s.shutdown_timeout_secs)
        self.interrupt()
        # every run now ends (or is abandoned) within cancel_grace_secs; recording may take
        # longer if the database fails, and is given up after shutdown_timeout_secs
        await _wait_all([a.done for a in self._active.values()], s.cancel_grace_secs + 1)
        if not await self._completions.close(within=max(1.0, s.shutdown_timeout_secs)):
            log.error(
                "some run outcomes could not be recorded; those runs stay 'running' in the "
                "store until their lease expires, then they are recovered as interrupted"
            )
        await _wait_all([a.done for a in self._active.values()], 1)
        self._active.clear()
        await self._watchdog.close()
        for feed in self._feeds:
            await feed.close(grace=s.notify_timeout_secs)
        await self._tasks.stop(grace=s.cancel_grace_secs)
        if self._loopwatch is not None:
            self._loopwatch.release()
            self._loopwatch = None
        if self._abandoned:
            log.error(
                "%d executor call(s) ignored cancellation and were abandoned", len(self._abandoned)
            )

    async def _loop(self) -> None:
        s = self.settings
        clock = self.clock
        lease_ms = round(s.lease_secs * 1000)
        tick_ms = round(s.tick_secs * 1000)
        ahead_ms = round(s.claim_ahead * 1000)
        next_recover = 0
        repaired = False
        failures = 0
        while not self._stopping:
            self._wake.clear()
            self._in_pass = True
            now = clock.now_ms()
            deadline = now + tick_ms
            try:
                if now >= next_recover:
                    report = await self.store.recover(held=set(self._active), repair=not repaired)
                    repaired = True
                    if report.interrupted_run_ids:
                        log.warning(
                            "recovered %d interrupted run(s)", len(report.interrupted_run_ids)
                        )
                    next_recover = now + lease_ms // 2
                free = s.max_concurrent_runs - len(self._active)
                if free > 0 and not self._stopping:
                    batch = min(free, CLAIM_BATCH)
                    claims = await self.store.claim_due(
                        self.owner, batch, s.lease_secs, ahead_secs=s.claim_ahead
                    )
                    self.claimed_total += len(claims)
                    self._admit(claims)
                    if len(claims) == batch:
                        # More may be due: claim again once the new runs have started, so
                        # claiming, running and recording overlap instead of queueing.
                        deadline = now
                    else:
                        due = await self.store.next_due_at()
                        if due is not None:
                            deadline = min(deadline, to_ms(due) - ahead_ms)
                deadline = min(deadline, next_recover)
                failures = 0
                self._store_error = None
            except StoreUnavailable as exc:
                failures += 1
                deadline = now + self._backoff(failures, tick_ms)
                self._report_store_error(exc)
            except Exception:
                failures += 1
                delay = self._backoff(failures, tick_ms)
                log.exception(
                    "scheduler iteration failed (attempt %d); retrying in %d ms", failures, delay
                )
                deadline = now + delay
            self._in_pass = False
            self._passes += 1
            self.last_pass_ms = clock.now_ms()
            async with self._pass_done:
                self._pass_done.notify_all()
            await clock.wait(self._wake, deadline)
        async with self._pass_done:
            self._pass_done.notify_all()

    @staticmethod
    def _backoff(failures: int, tick_ms: int) -> int:
        return int(min(tick_ms, 250 * 2 ** min(failures, 8)))

    def _report_store_error(self, exc: StoreUnavailable) -> None:
        """One line per distinct store error, repeated at most once a minute."""
        message = str(exc)
        now = time.monotonic()
        last = self._store_error
        if last is None or last[0] != message or now - last[1] > STORE_ERROR_REPEAT_SECS:
            log.error("store unavailable, not claiming: %s", message)
            self._store_error = (message, now)

    # ------------------------------------------------------------------------ leases
    def _keep_leases(self) -> None:
        if self._leases is None or self._leases.done():
            self._renewed_at = time.monotonic()
            self._leases = self._tasks.spawn(self._renew_loop(), "leases")

    async def _renew_loop(self) -> None:
        interval_ms = max(1, round(self.settings.lease_secs * 1000 / 3))
        clock = self.clock
        while self._active:
            await clock.wait(self._renew_now, clock.now_ms() + interval_ms)
            self._renew_now.clear()
            if self._active:
                await self._renew()

    async def _renew(self) -> None:
        """Renew the leases of every run in flight; a run someone else recovered (this process
        paused longer than its lease, say) is cancelled at once, and so is every run when
        renewal has failed for longer than a lease (another node may have taken them)."""
        ids = list(self._active)
        lease = self.settings.lease_secs
        try:
            held = await self.store.renew_leases(self.owner, lease, ids)
        except Exception as exc:  # noqa: BLE001 - logged; a lease kept failing cancels the runs
            silent = time.monotonic() - self._renewed_at
            log.error("renewing %d lease(s) failed: %s", len(ids), exc)
            if silent > lease:
                for active in list(self._active.values()):
                    if not active.settled:
                        active.log.error(
                            "lease not renewed for %.1fs (longer than the lease); another "
                            "scheduler may have taken the run over, so it is cancelled",
                            silent,
                        )
                        self._cancel(active, "lease_lost")
            return
        self._renewed_at = time.monotonic()
        for run_id in ids:
            lost = self._active.get(run_id)
            if lost is not None and run_id not in held and not lost.settled:
                lost.log.error("lease lost (recovered elsewhere); cancelling it")
                self._cancel(lost, "lease_lost")

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
                    self._tasks.spawn(self._open_at(start, gate), f"start-at:{start}")
            self._spawn(claim, gate, max(start, now))

    async def _open_at(self, start_ms: int, gate: asyncio.Event) -> None:
        await self.clock.wait(self._never, start_ms)
        gate.set()
        # Renew at once: the store then knows these runs' holder was alive at their start,
        # so a crash from now on counts as an attempt (recovery spares runs that never began).
        self._renew_now.set()

    def _spawn(self, claim: Claim, gate: asyncio.Event | None, start_ms: int) -> _Active:
        deadline = start_ms + round(claim.timeout_secs * 1000)
        active = _Active(
            claim, run_log(log, claim.job_name, claim.run_id), deadline, time.monotonic()
        )
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
        self._watchdog.watch(active, deadline)
        self._keep_leases()
        return active

    async def _call(
        self, active: _Active, ctx: JobContext, gate: asyncio.Event | None
    ) -> JobResult:
        if gate is not None:
            await gate.wait()
        try:
            result = await self._execute(active, ctx)
        except SystemExit as exc:
            raise ExecutorExited(f"the executor called sys.exit({exc.code!r})") from None
        except KeyboardInterrupt:
            raise ExecutorExited("the executor raised KeyboardInterrupt") from None
        if not isinstance(result, JobResult):
            raise TypeError(f"executor returned {type(result).__name__}, expected JobResult")
        return result

    async def _execute(self, active: _Active, ctx: JobContext) -> JobResult:
        """Call the executor through the adaptive limit (:mod:`starpod_cron.backpressure`). A
        provider's "saturated" answer is not a failure: the call is retried after its delay in
        the same attempt, while the limit holds back further calls."""
        limit = self._limit
        while True:
            await limit.acquire()
            if not active.begun:  # it may have waited for the limit (a saturated provider)
                active.begun = True
                active.started = time.monotonic()
                active.log.info(
                    "started (attempt %d, scheduled for %s)",
                    ctx.attempt,
                    ctx.scheduled_for,
                    action="start",
                )
            try:
                result = await self.executor(ctx)
            except ProviderSaturated as exc:
                limit.release(saturated=True)
                delay = SATURATED_DELAY_SECS if exc.retry_after is None else exc.retry_after
                active.log.debug(
                    "provider saturated, retrying in %.1fs in the same attempt (%d calls in "
                    "flight, limit now %d): %s",
                    delay,
                    limit.in_flight,
                    limit.limit,
                    exc,
                    action="saturated",
                )
                await self.clock.wait(asyncio.Event(), self.clock.now_ms() + round(delay * 1000))
                continue
            except BaseException:
                limit.release()
                raise
            limit.release()
            return result

    def _expire(self, active: _Active) -> None:
        """The watchdog's callback: the run reached its job's timeout."""
        if not active.settled:
            self._cancel(active, "timeout")

    def _cancel(self, active: _Active, reason: _Reason) -> None:
        active.reason = active.reason or reason
        assert active.task is not None
        active.task.cancel()
        asyncio.get_running_loop().call_later(
            self.settings.cancel_grace_secs, self._abandon, active
        )

    def _abandon(self, active: _Active) -> None:
        """An executor that ignores cancellation is left behind; its run is still recorded."""
        if active.settled:
            return
        active.log.error(
            "executor ignored cancellation for %ss; abandoning it",
            self.settings.cancel_grace_secs,
            action="abandon",
        )
        assert active.task is not None
        self._abandoned.add(active.task)
        active.task.add_done_callback(self._abandoned.discard)
        self._settle(active)

    def _settle(self, active: _Active) -> None:
        """The run's outcome is known: hand it to the completion writer (once)."""
        if active.settled:
            return
        active.settled = True
        self._watchdog.discard(active)
        if active.reason == "lease_lost":
            self._finish(active)
            return
        completion = self._outcome(active)
        self._completions.submit(
            completion, lambda answer: self._recorded(active, completion, answer)
        )

    def _recorded(
        self, active: _Active, completion: Completion, answer: bool | BaseException
    ) -> None:
        if isinstance(answer, BaseException):
            active.log.error(
                "its outcome (%s) could not be recorded (%s); it stays 'running' in the store "
                "until its lease expires, then it is recovered as interrupted",
                completion.status.value,
                answer,
                action="record",
            )
        elif not answer:
            active.log.error(
                "finished but no longer leased here (recovered elsewhere); result refused",
                action="record",
            )
        else:
            active.log.info(
                "%s in %.3fs",
                completion.status.value,
                time.monotonic() - active.started,
                action="record",
            )
        self._finish(active)

    def _finish(self, active: _Active) -> None:
        self._active.pop(active.claim.run_id, None)
        active.done.set()
        self._wake.set()

    def _outcome(self, active: _Active) -> Completion:
        claim = active.claim
        run_id = claim.run_id
        task = active.task
        assert task is not None
        if active.reason is None and active.begun and task.done():
            overrun = self.clock.now_ms() - active.deadline_ms
            if overrun > LATE_MS:  # the watchdog could not fire: the loop was blocked
                error = (
                    f"timed out: ran {claim.timeout_secs + overrun / 1000:.1f}s, over its timeout "
                    f"of {claim.timeout_secs:g}s, while blocking the event loop"
                )
                return Completion(run_id, RunStatus.TIMEOUT, error=error)
        if active.reason == "timeout":
            error = f"timed out after {claim.timeout_secs:g}s"
            return Completion(run_id, RunStatus.TIMEOUT, error=error)
        if not active.begun:
            error = (
                "interrupted: the scheduler stopped before the run started (before its fire "
                "time, or while it waited for a free slot)"
            )
            return Completion(run_id, RunStatus.INTERRUPTED, error=error, count_attempt=False)
        if not task.done():  # abandoned while stopping
            error = "interrupted: the scheduler stopped before the run finished"
            return Completion(run_id, RunStatus.INTERRUPTED, error=error, count_attempt=False)
        if task.cancelled():
            if active.reason == "stopping":
                error = "interrupted: the scheduler stopped before the run finished"
                return Completion(run_id, RunStatus.INTERRUPTED, error=error, count_attempt=False)
            error = "the executor was cancelled by something other than the scheduler"
            return Completion(run_id, RunStatus.FAILED, error=error)
        exc = task.exception()
        if exc is None:
            result = task.result()
            return Completion(
                run_id,
                RunStatus.SUCCESS,
                summary=result.summary,
                session_id=result.session_id,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            )
        text = f"{type(exc).__name__}: {exc}"
        active.log.warning("failed: %s", text, action="fail")
        if isinstance(exc, JobError):
            return Completion(
                run_id,
                RunStatus.FAILED,
                error=text,
                permanent=exc.permanent,
                retry_after_secs=exc.retry_after,
            )
        return Completion(run_id, RunStatus.FAILED, error=text)

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
        now = self.clock.now_ms()
        active = self._spawn(_manual_claim(run_id, job, now, now + round(lease * 1000)), None, now)
        await active.done.wait()
        run = await self.store.get_run(run_id)
        assert run is not None
        return run


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
    )


async def _wait_all(events: list[asyncio.Event], within: float) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events if not e.is_set()]
    if not waits:
        return
    _, pending = await asyncio.wait(waits, timeout=within)
    for waiter in pending:
        waiter.cancel()
