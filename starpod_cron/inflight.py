"""The runs a scheduler holds: one task each, from its claim to its recorded outcome.

A claimed run waits for its fire time (a gate shared by every run starting at that instant)
and for a free slot of the adaptive limit (:mod:`starpod_cron.backpressure`), calls the
executor under the watchdog's timeout, and hands what happened to the pure outcome
(:func:`starpod_cron.outcomes.completion`); the group commit records it. Leases of every run in
flight are kept by :class:`~starpod_cron.leases.LeaseRenewal`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass

from . import tracing
from .backpressure import AdaptiveLimit
from .completions import CompletionWriter
from .errors import JobError, ProviderHeld, ProviderSaturated, StarpodCronError
from .leases import LeaseRenewal
from .logs import RunLog, run_log
from .models import JobContext, JobResult, RunStatus
from .outcomes import Phase, Reason, RunEnd, completion
from .pacing import Pacer
from .settings import SchedulerSettings
from .startgates import StartGates
from .store import CronStore
from .store.types import Claim, Completion
from .tasks import TaskSet
from .timeutil import to_ms
from .watchdog import Watchdog

log = logging.getLogger("starpod_cron.scheduler")

Executor = Callable[[JobContext], Awaitable[JobResult]]
"""``async def executor(ctx: JobContext) -> JobResult``; raising means the run failed."""

SATURATED_DELAY_SECS = 1.0  # a saturated provider that said nothing about when to come back


class ExecutorExited(JobError):
    """The executor called ``sys.exit()`` or raised ``KeyboardInterrupt``: the run failed."""


@dataclass(eq=False, slots=True)
class Run:
    """One run in flight: its task, where it is (``phase``), why the scheduler cancelled it (if
    it did), whether its outcome was handed to the writer (``settled``) and recorded (``done``)."""

    claim: Claim
    deadline_ms: int
    started: float
    task: asyncio.Task[object] | None = None
    phase: Phase = "waiting"
    reason: Reason | None = None
    settled: bool = False
    finished: bool = False
    _done: asyncio.Event | None = None
    _log: RunLog | None = None

    @property
    def log(self) -> RunLog:
        """The run's log lines (made at the first line: most runs write none at INFO)."""
        if self._log is None:
            self._log = run_log(log, self.claim.job_name, self.claim.run_id)
        return self._log

    @property
    def done(self) -> asyncio.Event:
        """Set once the run left the runs in flight (made only when someone waits for it)."""
        if self._done is None:
            self._done = asyncio.Event()
            if self.finished:
                self._done.set()
        return self._done


class RunsInFlight:
    """The set of runs in flight of one lease holder (``owner``), keyed by run id."""

    def __init__(
        self,
        store: CronStore,
        executor: Executor,
        owner: str,
        settings: SchedulerSettings,
        *,
        on_finished: Callable[[], None],
    ) -> None:
        self._clock = store.clock
        self._store = store
        self._owner = owner
        self._executor = executor
        self._settings = settings
        self._on_finished = on_finished
        self._runs: dict[str, Run] = {}
        self._unsettled = 0  # runs before or in their executor call (they hold a slot)
        self._reserved = 0  # slots promised to claims not yet answered
        self._by_task: dict[asyncio.Task[object], Run] = {}
        self._ended_cb = self._task_ended  # one bound method for every run's task
        self._tasks = TaskSet("starpod-cron")  # gates, watchdog, completion writer, leases
        self._calls = TaskSet("starpod-cron:run")
        self._never = asyncio.Event()
        self.stopping = False
        """Set by the scheduler's stop: a run not in an executor call is handed back at once."""
        self.completions = CompletionWriter(store, owner, tasks=self._tasks)
        self._limit = AdaptiveLimit(settings.max_concurrent_runs)
        pacer = getattr(executor, "pacer", None)
        self._pacer = pacer if isinstance(pacer, Pacer) else None
        """The executor's provider pace (an executor reading rate-limit headers has one)."""
        if self._pacer is not None:
            self._pacer.clock = store.clock
            self._limit.pace(self._pacer.cap())
        self.watchdog: Watchdog[Run] = Watchdog(store.clock, self._expire, tasks=self._tasks)
        self._leases = LeaseRenewal(
            store,
            owner,
            settings.lease_secs,
            tasks=self._tasks,
            held=self._runs.keys,
            on_lost=self._lose,
        )
        # a gate opened renews at once: the store then knows these runs' holder was alive at
        # their start, so a crash from now on counts as an attempt (recovery spares the others)
        self._gates = StartGates(store.clock, self._tasks, self._leases.renew_now)

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._runs.values()))

    def ids(self) -> Collection[str]:
        return self._runs.keys()

    # ------------------------------------------------------------------ slots
    def reserve(self, most: int) -> int:
        """Reserve up to ``most`` slots for a claim about to be made; returns how many.

        A slot bounds executor calls (``max_concurrent_runs``): it frees when the executor
        returns, not when the outcome is committed, so the next claims overlap the recording
        of the last ones. Runs whose outcome is still being written are held too, at most
        ``max_concurrent_runs`` of them beyond the slots (memory stays bounded when the store
        is slower than the executors)."""
        limit = self._settings.max_concurrent_runs
        free = min(limit - self._unsettled, 2 * limit - len(self._runs)) - self._reserved
        n = max(0, min(free, most))
        self._reserved += n
        return n

    def unreserve(self, n: int) -> None:
        """The claim that reserved ``n`` slots was answered (its runs are admitted)."""
        self._reserved -= n

    # ------------------------------------------------------------------ admitting runs
    def admit(self, claims: list[Claim]) -> None:
        """Start a task per claimed run. A run claimed ahead waits on the gate of its fire
        time, shared with every run claimed for that instant (:mod:`.startgates`); one timer
        opens it, so they all start on time."""
        now = self._clock.now_ms()
        for claim in claims:
            start = to_ms(claim.start_at)
            gate = self._gates.gate(start) if start > now else None
            run = self.spawn(claim, gate, max(start, now))
            if self.stopping:  # claimed with a completion as the scheduler stopped
                self.cancel(run, "stopping")

    def spawn(self, claim: Claim, gate: asyncio.Event | None, start_ms: int) -> Run:
        """Hold ``claim`` and start its task (after ``gate`` opens, if given)."""
        deadline = start_ms + round(claim.timeout_secs * 1000)
        run = Run(claim, deadline, time.monotonic())
        tracing.run_claimed(claim)
        self._runs[claim.run_id] = run
        self._unsettled += 1
        ctx = JobContext(
            prompt=claim.prompt,
            session_mode=claim.session_mode,
            job_name=claim.job_name,
            job_id=claim.job_id,
            user_id=claim.user_id,
            run_id=claim.run_id,
            attempt=claim.attempt,
            scheduled_for=claim.scheduled_for,
            one_shot=claim.one_shot,
            previous_result=claim.previous_result,
            previous_at=claim.previous_at,
            options=claim.options,
            last_attempt=claim.last_attempt,
        )
        run.task = task = self._calls.spawn(
            self._call(run, ctx, gate), f"{claim.job_name}:{claim.run_id}", on_done=self._ended_cb
        )
        self._by_task[task] = run
        self.watchdog.watch(run, deadline)
        self._leases.keep()
        return run

    # ------------------------------------------------------------------ calling executors
    async def _call(self, run: Run, ctx: JobContext, gate: asyncio.Event | None) -> object:
        if gate is not None:
            await gate.wait()
            if run.claim.budgeted and await self._spent(run):
                return None
        try:
            return await self._execute(run, ctx)
        except SystemExit as exc:
            raise ExecutorExited(f"the executor called sys.exit({exc.code!r})") from None
        except KeyboardInterrupt:
            raise ExecutorExited("the executor raised KeyboardInterrupt") from None

    async def _spent(self, run: Run) -> bool:
        """Whether a budget of the run claimed ahead was spent by its start (the store then
        recorded it skipped; no request is made). A store that cannot tell lets it start:
        its budget was checked when it was claimed."""
        try:
            why = await self._store.skip_if_spent(run.claim.run_id, self._owner)
        except StarpodCronError as exc:
            run.log.warning("budget not checked again at start (%s); starting", exc)
            return False
        if why is None:
            return False
        run.reason = "spent"
        run.log.warning("skipped: %s", why, action="skip")
        return True

    async def _execute(self, run: Run, ctx: JobContext) -> object:
        """Call the executor through the adaptive limit. A provider's "saturated" answer is not
        a failure: the call is retried after its delay in the same attempt, while the limit
        holds back further calls; a stop hands the run back instead of waiting."""
        limit = self._limit
        while True:
            await limit.acquire()
            if run.phase == "waiting":
                run.started = time.monotonic()
                if log.isEnabledFor(logging.INFO):
                    run.log.info(
                        "started (attempt %d, scheduled for %s)",
                        ctx.attempt,
                        ctx.scheduled_for,
                        action="start",
                    )
            try:
                await self._take_turn(run)
            except BaseException:
                self._release()
                raise
            run.phase = "calling"
            try:
                result: object = await self._executor(ctx)
            except ProviderSaturated as exc:
                self._release(saturated=True)
                delay = SATURATED_DELAY_SECS if exc.retry_after is None else exc.retry_after
                self._hold_if_past_deadline(run, delay, exc)
                run.phase = "retrying"
                run.log.debug(
                    "provider saturated, retrying in %.1fs in the same attempt (%d calls in "
                    "flight, limit now %d): %s",
                    delay,
                    limit.in_flight,
                    limit.limit,
                    exc,
                    action="saturated",
                )
                if self.stopping:  # nothing more to wait for: hand it back now
                    self.cancel(run, "stopping")
                await self._clock.wait(self._never, self._clock.now_ms() + round(delay * 1000))
                continue
            except ProviderHeld as exc:
                self._release()
                if exc.retry_after is None:  # the provider did not say when: the setting
                    exc.retry_after = self._settings.quota_retry_secs
                raise
            except BaseException:
                self._release()
                raise
            self._release()
            return result

    def _release(self, *, saturated: bool = False) -> None:
        """A call ended: give back its slot, and cap the calls in flight at what the
        provider's announced budgets admit now."""
        self._limit.release(saturated=saturated)
        if self._pacer is not None:
            self._limit.pace(self._pacer.cap())

    async def _take_turn(self, run: Run) -> None:
        """Wait for this call's turn in the provider's pace (:mod:`.pacing`); a turn that
        comes after the run's deadline holds the run instead of sleeping through its timeout."""
        if self._pacer is None:
            return
        at = self._pacer.book()
        now = self._clock.now_ms()
        if at <= now:
            return
        try:
            self._hold_if_past_deadline(run, (at - now) / 1000, None)
            await self._clock.wait(self._never, at)
        except BaseException:  # held or cancelled: the turn is not taken
            self._pacer.unbook()
            raise

    def _hold_if_past_deadline(self, run: Run, delay: float, cause: Exception | None) -> None:
        """Raise :class:`ProviderHeld` when waiting ``delay`` seconds for the provider would
        end after the run's deadline: the run is handed back, its job held that long."""
        if self._clock.now_ms() + round(delay * 1000) <= run.deadline_ms:
            return
        why = f"provider rate limit: a wait of {delay:.1f}s is longer than the run has left"
        raise ProviderHeld(why, retry_after=delay) from cause

    # ------------------------------------------------------------------ ending runs
    def hand_back_waiting(self) -> list[Run]:
        """At stop: cancel every run not in an executor call (waiting for its fire time or a
        slot, or to retry a saturated provider); returns the runs in a call."""
        calling = []
        for run in list(self._runs.values()):
            if run.settled:
                continue
            if run.phase == "calling":
                calling.append(run)
            else:
                self.cancel(run, "stopping")
        return calling

    def interrupt(self) -> None:
        """Cancel every run in flight now (recorded ``interrupted``, retried at once)."""
        for run in list(self._runs.values()):
            if not run.settled:
                self.cancel(run, "stopping")

    def _expire(self, run: Run) -> None:
        """The watchdog's callback: the run reached its job's timeout."""
        if not run.settled:
            self.cancel(run, "timeout")

    def _lose(self, run_ids: Collection[str], why: str) -> None:
        """The lease renewal's callback: these runs may be held by someone else now."""
        for run_id in run_ids:
            run = self._runs.get(run_id)
            if run is not None and not run.settled:
                run.log.error("%s", why)
                self.cancel(run, "lease_lost")

    def cancel(self, run: Run, reason: Reason) -> None:
        run.reason = run.reason or reason
        assert run.task is not None
        run.task.cancel()
        asyncio.get_running_loop().call_later(self._settings.cancel_grace_secs, self._abandon, run)

    def _abandon(self, run: Run) -> None:
        """An executor that ignores cancellation is left behind; its run is still recorded."""
        if run.settled:
            return
        run.log.error(
            "executor ignored cancellation for %ss; abandoning it",
            self._settings.cancel_grace_secs,
            action="abandon",
        )
        self._settle(run)

    def _task_ended(self, task: asyncio.Task[object]) -> None:
        self._settle(self._by_task.pop(task))

    def _settle(self, run: Run) -> None:
        """The run's outcome is known: hand it to the completion writer (once)."""
        if run.settled:
            return
        run.settled = True
        self._unsettled -= 1
        if self.completions.writing:  # its slot is free now, not after the next write
            self._on_finished()
        self.watchdog.discard(run)
        if run.reason in ("lease_lost", "spent"):  # nothing to record (the store has it)
            self._finish(run)
            return
        outcome = completion(self._ended(run))
        if outcome.status is RunStatus.FAILED:
            run.log.warning("failed: %s", outcome.error, action="fail")
        self.completions.submit(outcome, lambda answer: self._recorded(run, outcome, answer))

    def _ended(self, run: Run) -> RunEnd:
        task = run.task
        assert task is not None
        finished = task.done()
        cancelled = finished and task.cancelled()
        error = task.exception() if finished and not cancelled else None
        return RunEnd(
            run.claim.run_id,
            run.claim.timeout_secs,
            run.phase,
            run.reason,
            finished=finished,
            cancelled=cancelled,
            error=error,
            result=task.result() if finished and not cancelled and error is None else None,
            overrun_ms=self._clock.now_ms() - run.deadline_ms,
        )

    def _recorded(self, run: Run, outcome: Completion, answer: bool | BaseException) -> None:
        tracing.run_recorded(run.claim.run_id, outcome.status.value, answer)
        if isinstance(answer, BaseException):
            run.log.error(
                "its outcome (%s) could not be recorded (%s); it stays 'running' in the store "
                "until its lease expires, then it is recovered as interrupted",
                outcome.status.value,
                answer,
                action="record",
            )
        elif not answer:
            run.log.error(
                "finished but no longer leased here (recovered elsewhere); result refused",
                action="record",
            )
        elif log.isEnabledFor(logging.INFO):
            run.log.info(
                "%s in %.3fs",
                outcome.status.value,
                time.monotonic() - run.started,
                action="record",
            )
        self._finish(run)

    def _finish(self, run: Run) -> None:
        self._runs.pop(run.claim.run_id, None)
        tracing.run_ended(run.claim.run_id)
        run.finished = True
        if run._done is not None:
            run._done.set()
        self._on_finished()

    async def close(self, shutdown_timeout_secs: float) -> None:
        """After :meth:`interrupt`: wait for every outcome to be recorded (given up after
        ``shutdown_timeout_secs`` if the store keeps failing), then stop the helpers."""
        s = self._settings
        # every run now ends (or is abandoned) within cancel_grace_secs; recording may take
        # longer if the database fails, and is given up after shutdown_timeout_secs
        await wait_all([r.done for r in self._runs.values()], s.cancel_grace_secs + 1)
        if not await self.completions.close(within=max(1.0, shutdown_timeout_secs)):
            log.error(
                "some run outcomes could not be recorded; those runs stay 'running' in the "
                "store until their lease expires, then they are recovered as interrupted"
            )
        await wait_all([r.done for r in self._runs.values()], 1)
        self._runs.clear()
        await self.watchdog.close()
        await self._tasks.stop(grace=s.cancel_grace_secs)
        abandoned = self._calls.close()
        if abandoned:
            log.error("%d executor call(s) ignored cancellation and were abandoned", abandoned)


async def wait_all(events: Collection[asyncio.Event], within: float) -> bool:
    """Wait up to ``within`` seconds until every event is set; False if some are not."""
    try:
        async with asyncio.timeout(within):
            for event in events:
                await event.wait()
    except TimeoutError:
        return False
    return True
