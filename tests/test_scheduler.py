"""The scheduler against a real SQLite store: wake-ups, concurrency, timeouts, retries,
notifications and graceful stop. Time moves through a ManualClock unless a test says otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from starpod_cron import (
    ConfigError,
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    ManualClock,
    PermanentJobError,
    RunStatus,
    RunTrigger,
    Schedule,
    SchedulerSettings,
    StoreSettings,
    SystemClock,
)
from tests.conftest import START, until


class Recorder:
    """An executor that records calls and can be told to block or fail."""

    def __init__(self) -> None:
        self.calls: list[JobContext] = []
        self.running = 0
        self.peak = 0
        self.release = asyncio.Event()
        self.block = False
        self.fail: Callable[[JobContext], BaseException | None] = lambda ctx: None

    async def __call__(self, ctx: JobContext) -> JobResult:
        self.calls.append(ctx)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.block:
                await self.release.wait()
            error = self.fail(ctx)
            if error is not None:
                raise error
            return JobResult(session_id=f"session-{ctx.run_id}", summary=f"did: {ctx.prompt}")
        finally:
            self.running -= 1


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def scheduler(
    store: CronStore, recorder: Recorder, clock: ManualClock
) -> AsyncIterator[CronScheduler]:
    s = CronScheduler(
        store,
        recorder,
        tick_secs=30,
        max_concurrent_runs=4,
        shutdown_timeout_secs=0.2,
        cancel_grace_secs=0.5,
    )
    yield s
    await s.stop()


async def settle(store: CronStore, job_id: str, count: int) -> list[RunStatus]:
    """Wait until ``count`` runs of the job have finished; their statuses, newest first. (A run
    of the next fire, claimed ahead of time, may already be recorded as running.)"""

    async def statuses() -> list[RunStatus]:
        return [r.status for r in await store.list_runs(job_id, 100) if r.status.is_final]

    for _ in range(1000):
        got = await statuses()
        if len(got) >= count:
            return got
        await asyncio.sleep(0.005)
    pytest.fail(f"runs did not settle: {await statuses()}")


async def test_sleeps_until_the_next_fire_not_the_tick(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    scheduler.start()
    await scheduler.checkpoint()  # a pass is done: the loop now sleeps up to tick_secs (30 s)
    job_id = await store.add_job("soon", "p", Schedule.one_shot(START + timedelta(seconds=2)))
    clock.advance(1)
    await scheduler.checkpoint()  # it looked again (and claimed ahead) ...
    assert recorder.calls == []  # ... but nothing runs before its time
    clock.advance(1)  # due now: the change through the store woke the loop, which slept 2 s
    await until(lambda: len(recorder.calls) == 1, what="the one-shot to run")
    assert recorder.calls[0].scheduled_for == START + timedelta(seconds=2)
    assert await settle(store, job_id, 1) == [RunStatus.SUCCESS]


async def test_every_fire_runs_once_in_order(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    job_id = await store.add_job("tick", "p", Schedule.interval(every_ms=1000))
    scheduler.start()
    for i in range(1, 6):
        clock.advance(1)
        await until(lambda i=i: len(recorder.calls) == i)  # type: ignore[misc]
        await settle(store, job_id, i)
    assert [c.scheduled_for for c in recorder.calls] == [
        START + timedelta(seconds=i) for i in range(1, 6)
    ]
    assert len({c.run_id for c in recorder.calls}) == 5


async def test_runs_up_to_max_concurrent_at_once(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    recorder.block = True
    for i in range(10):
        await store.add_job(f"j{i}", "p", Schedule.one_shot(START + timedelta(seconds=1)))
    scheduler.start()
    clock.advance(1)
    await until(lambda: recorder.running == 4, what="four concurrent runs")
    await scheduler.checkpoint()  # another full pass: still four, the limit
    assert recorder.running == 4 and len(recorder.calls) == 4
    recorder.release.set()
    await until(lambda: len(recorder.calls) == 10, what="all ten runs")
    assert recorder.peak == 4
    await until(lambda: scheduler.running_count == 0)
    runs = await store.list_recent_runs(50)
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 10


async def test_a_hung_executor_is_cancelled_at_its_timeout_while_others_fire(
    store: CronStore, recorder: Recorder, clock: ManualClock
) -> None:
    hung_started = asyncio.Event()
    cancelled = asyncio.Event()

    async def executor(ctx: JobContext) -> JobResult:
        if ctx.job_name == "hung":
            hung_started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return await recorder(ctx)

    scheduler = CronScheduler(store, executor, max_concurrent_runs=2)
    hung = await store.add_job_full(
        "hung",
        "p",
        Schedule.one_shot(START + timedelta(seconds=1)),
        timeout_secs=7200,
        max_retries=0,
    )
    ticker = await store.add_job("ticker", "p", Schedule.interval(every_ms=600_000))
    scheduler.start()
    try:
        clock.advance(1)
        await asyncio.wait_for(hung_started.wait(), 5)
        for i in range(1, 13):  # two simulated hours pass; the ticker keeps firing
            clock.advance(600)
            await until(lambda i=i: len(recorder.calls) == i)  # type: ignore[misc]
        await asyncio.wait_for(cancelled.wait(), 5)
        assert await settle(store, hung, 1) == [RunStatus.TIMEOUT]
        (run,) = await store.list_runs(hung)
        assert run.error == "timed out after 7200s" and run.duration_ms == 7200 * 1000
        job = await store.get_job(hung)
        assert job is not None and not job.enabled and job.last_error == run.error
        assert len(await store.list_runs(ticker, 100)) == 12
    finally:
        await scheduler.stop()


async def test_executor_ignoring_cancellation_does_not_block(
    store: CronStore, clock: ManualClock
) -> None:
    async def stubborn(ctx: JobContext) -> JobResult:
        for _ in range(3):
            try:
                await asyncio.sleep(0.3)
            except asyncio.CancelledError:
                continue
        return JobResult("s", "finished anyway")

    scheduler = CronScheduler(store, stubborn, cancel_grace_secs=0.1)
    job_id = await store.add_job_full(
        "stubborn",
        "p",
        Schedule.one_shot(START + timedelta(seconds=1)),
        timeout_secs=10,
        max_retries=0,
    )
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: scheduler.running_count == 1)
        clock.advance(10)
        assert await settle(store, job_id, 1) == [RunStatus.TIMEOUT]
    finally:
        await scheduler.stop()


async def test_real_clock_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = await CronStore.open(str(tmp_path / "real.db"), clock=SystemClock())

    async def slow(ctx: JobContext) -> JobResult:
        await asyncio.sleep(30)
        return JobResult("s", "never")

    scheduler = CronScheduler(store, slow, tick_secs=1)
    try:
        job_id = await store.add_job_full(
            "slow", "p", Schedule.interval(every_ms=1000), timeout_secs=0.3, max_retries=0
        )
        scheduler.start()
        await settle(store, job_id, 1)
        run = (await store.list_runs(job_id, 10))[-1]  # the first fire
        assert run.status is RunStatus.TIMEOUT
        assert run.duration_ms is not None and 300 <= run.duration_ms < 2000
    finally:
        await scheduler.stop()
        await store.close()


async def test_failures_are_retried_with_backoff(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    recorder.fail = lambda ctx: RuntimeError("flaky") if ctx.attempt < 3 else None
    job_id = await store.add_job(
        "flaky", "p", Schedule.one_shot(START + timedelta(seconds=1)), delete_after_run=True
    )
    scheduler.start()
    clock.advance(1)
    await settle(store, job_id, 1)
    clock.advance(29)
    await scheduler.checkpoint()
    assert len(recorder.calls) == 1  # no retry before its 30 s backoff
    clock.advance(1)  # first retry after 30 s
    await settle(store, job_id, 2)
    clock.advance(60)  # second retry after 60 s
    await until(lambda: len(recorder.calls) == 3)
    await until(lambda: scheduler.running_count == 0)
    assert [c.attempt for c in recorder.calls] == [1, 2, 3]
    assert {c.scheduled_for for c in recorder.calls} == {START + timedelta(seconds=1)}
    assert await store.get_job(job_id) is None  # succeeded at last, then deleted
    runs = await store.list_recent_runs(10)
    assert [(r.status, r.trigger) for r in runs] == [
        (RunStatus.SUCCESS, RunTrigger.RETRY),
        (RunStatus.FAILED, RunTrigger.RETRY),
        (RunStatus.FAILED, RunTrigger.SCHEDULE),
    ]
    assert runs[1].error == "RuntimeError: flaky"


async def test_permanent_error_is_not_retried(
    store: CronStore, scheduler: CronScheduler, recorder: Recorder, clock: ManualClock
) -> None:
    recorder.fail = lambda ctx: PermanentJobError("model not found")
    job_id = await store.add_job("bad", "p", Schedule.one_shot(START + timedelta(seconds=1)))
    scheduler.start()
    clock.advance(1)
    await settle(store, job_id, 1)
    job = await store.get_job(job_id)
    assert job is not None and job.retry_at is None and not job.enabled
    assert job.last_error == "PermanentJobError: model not found"


async def test_executor_must_return_a_job_result(store: CronStore, clock: ManualClock) -> None:
    async def sloppy(ctx: JobContext) -> JobResult:
        return "done"  # type: ignore[return-value]

    scheduler = CronScheduler(store, sloppy)
    job_id = await store.add_job_full(
        "sloppy", "p", Schedule.interval(every_ms=1000), max_retries=0
    )
    scheduler.start()
    try:
        clock.advance(1)
        await settle(store, job_id, 1)
        run = (await store.list_runs(job_id, 10))[-1]  # the first fire
        assert run.status is RunStatus.FAILED and "expected JobResult" in (run.error or "")
    finally:
        await scheduler.stop()


async def test_notifier_gets_each_finished_run_with_a_short_summary(
    store: CronStore, recorder: Recorder, clock: ManualClock
) -> None:
    notes: list[tuple[str, str, str, bool]] = []

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        notes.append((job_name, session_id, text, success))

    recorder.fail = lambda ctx: ValueError("nope") if ctx.job_name == "bad" else None
    scheduler = CronScheduler(store, recorder).with_notifier(notifier)
    long_prompt = "ü" * 2000
    await store.add_job("long", long_prompt, Schedule.one_shot(START + timedelta(seconds=1)))
    await store.add_job_full(
        "bad", "p", Schedule.one_shot(START + timedelta(seconds=1)), max_retries=0
    )
    scheduler.start()
    try:
        clock.advance(1)
        await until(lambda: len(notes) == 2, what="two notifications")
        by_job = {n[0]: n for n in notes}
        _name, session, text, success = by_job["long"]
        assert success and session.startswith("session-")
        assert len(text) == 500 and text == (f"did: {long_prompt}")[:499] + "…"
        assert by_job["bad"][1:] == ("", "ValueError: nope", False)
    finally:
        await scheduler.stop()


async def test_a_broken_or_hung_notifier_never_blocks_the_scheduler(
    store: CronStore, recorder: Recorder, clock: ManualClock
) -> None:
    calls: list[str] = []

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        calls.append(job_name)
        if len(calls) % 2:
            raise RuntimeError("notifier down")
        await asyncio.Event().wait()  # hangs forever

    scheduler = CronScheduler(
        store, recorder, notify_timeout_secs=0.2, cancel_grace_secs=0.1
    ).with_notifier(notifier)
    job_id = await store.add_job("tick", "p", Schedule.interval(every_ms=1000))
    scheduler.start()
    try:
        for i in range(1, 7):
            clock.advance(1)
            await until(lambda i=i: len(recorder.calls) == i)  # type: ignore[misc]
        assert await settle(store, job_id, 6) == [RunStatus.SUCCESS] * 6
        await until(lambda: len(calls) == 6)
    finally:
        await asyncio.wait_for(scheduler.stop(), 5)


async def test_stop_waits_for_quick_runs(store: CronStore, clock: ManualClock) -> None:
    async def quick(ctx: JobContext) -> JobResult:
        await asyncio.sleep(0.2)
        return JobResult("s", "finished")

    scheduler = CronScheduler(store, quick, shutdown_timeout_secs=5)
    job_id = await store.add_job("quick", "p", Schedule.interval(every_ms=1000))
    scheduler.start()
    clock.advance(1)
    await until(lambda: scheduler.running_count == 1)
    await scheduler.stop()
    runs = await store.list_runs(job_id)
    assert runs[-1].status is RunStatus.SUCCESS  # the run in progress finished
    # the next fire, claimed ahead but not yet due, was handed back for the next start
    assert [r.status for r in runs[:-1]] in ([], [RunStatus.INTERRUPTED])


async def test_stop_interrupts_long_runs_and_the_next_start_retries_them(
    store: CronStore, recorder: Recorder, clock: ManualClock
) -> None:
    recorder.block = True
    job_id = await store.add_job_full(
        "long", "p", Schedule.one_shot(START + timedelta(seconds=1)), max_retries=0
    )
    first = CronScheduler(store, recorder, shutdown_timeout_secs=0.1)
    first.start()
    clock.advance(1)
    await until(lambda: recorder.running == 1)
    await first.stop()
    await first.stop()  # idempotent
    (run,) = await store.list_runs(job_id)
    assert run.status is RunStatus.INTERRUPTED
    job = await store.get_job(job_id)
    assert job is not None and job.enabled and job.retry_at is not None

    recorder.block = False
    second = CronScheduler(store, recorder)
    second.start()
    try:
        await until(lambda: len(recorder.calls) == 2, what="the interrupted run to be retried")
        runs = await store.list_runs(job_id)
        await until(lambda: second.running_count == 0)
        runs = await store.list_runs(job_id)
        assert [(r.status, r.attempt) for r in runs] == [
            (RunStatus.SUCCESS, 2),
            (RunStatus.INTERRUPTED, 1),
        ]
    finally:
        await second.stop()


async def test_a_run_whose_lease_is_lost_is_cancelled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "lease.db")
    store = await CronStore.open(path)
    other = await CronStore.open(path)
    cancelled = asyncio.Event()

    async def long(ctx: JobContext) -> JobResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return JobResult("s", "never")

    scheduler = CronScheduler(store, long, tick_secs=1, lease_secs=0.3, shutdown_timeout_secs=0.1)
    try:
        job_id = await store.add_job("long", "p", Schedule.interval(every_ms=1000))
        scheduler.start()
        await until(lambda: scheduler.running_count >= 1)
        run = (await store.list_runs(job_id, 10))[-1]
        # another process decides the run is over (as recovery would after a lease expiry)
        await other.record_run_complete(run.id, RunStatus.INTERRUPTED, error="taken over")
        await asyncio.wait_for(cancelled.wait(), 5)
        (run,) = [r for r in await store.list_runs(job_id, 10) if r.id == run.id]
        assert run.status is RunStatus.INTERRUPTED and run.error == "taken over"
    finally:
        await scheduler.stop()
        await other.close()
        await store.close()


async def test_run_now_records_a_manual_run(
    store: CronStore, recorder: Recorder, clock: ManualClock
) -> None:
    notes: list[str] = []

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        notes.append(text)

    scheduler = CronScheduler(store, recorder).with_notifier(notifier)
    job_id = await store.add_job("later", "hello", Schedule.cron("0 0 1 1 *"))
    run = await scheduler.run_now(job_id)
    assert run.status is RunStatus.SUCCESS and run.trigger is RunTrigger.MANUAL
    assert run.result_summary == "did: hello"
    await until(lambda: notes == ["did: hello"])
    await scheduler.stop()


async def test_the_store_zone_is_the_default_and_the_scheduler_changes_no_store_setting(
    tmp_path: Path, recorder: Recorder, clock: ManualClock
) -> None:
    settings = StoreSettings(default_timezone="Europe/Rome")
    async with CronStore.open(str(tmp_path / "z.db"), settings=settings, clock=clock) as store:
        scheduler = CronScheduler(store, recorder, SchedulerSettings(tick_secs=5))
        assert store.settings is settings and scheduler.clock is store.clock is clock
        job = await store.get_job(await store.add_job("j", "p", Schedule.cron("0 9 * * *")))
        assert job is not None and job.timezone == "Europe/Rome"
        assert job.next_run_at == START.replace(day=22, hour=8)


@pytest.mark.parametrize(
    "kwargs",
    [dict(tick_secs=0), dict(max_concurrent_runs=0), dict(lease_secs=0), dict(claim_ahead_secs=60)],
)
async def test_bad_scheduler_options_are_rejected(
    store: CronStore, recorder: Recorder, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        CronScheduler(store, recorder, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        SchedulerSettings(**kwargs)  # type: ignore[arg-type]


def test_a_bad_store_zone_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Nope/X'"):
        StoreSettings(default_timezone="Nope/X")


async def test_fires_claimed_ahead_run_exactly_on_time_and_stop_hands_them_back(
    store: CronStore, recorder: Recorder, clock: ManualClock
) -> None:
    job_id = await store.add_job("soon", "p", Schedule.one_shot(START + timedelta(seconds=10)))
    first = CronScheduler(store, recorder, claim_ahead_secs=2)
    first.start()
    clock.advance(8.5)  # within two seconds of the fire: claimed now, started at +10 s
    await until(lambda: first.running_count == 1, what="the claim ahead")
    await first.checkpoint()
    assert recorder.calls == []
    await first.stop()  # before the fire time: handed back, not lost and not run early
    (run,) = await store.list_runs(job_id)
    assert run.status is RunStatus.INTERRUPTED and "fire time" in (run.error or "")
    job = await store.get_job(job_id)
    assert job is not None and job.retry_at == START + timedelta(seconds=10)

    second = CronScheduler(store, recorder, claim_ahead_secs=2)
    second.start()
    try:
        await second.checkpoint()
        assert recorder.calls == []
        clock.advance(1.5)
        await until(lambda: len(recorder.calls) == 1, what="the run at its fire time")
        assert recorder.calls[0].scheduled_for == START + timedelta(seconds=10)
        assert (await settle(store, job_id, 2))[0] is RunStatus.SUCCESS
    finally:
        await second.stop()


async def test_a_notifier_hears_only_the_runs_of_its_scheduler_while_it_runs(
    store: CronStore, recorder: Recorder, clock: ManualClock
) -> None:
    heard: list[str] = []

    async def notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
        heard.append(text)

    mine = CronScheduler(store, recorder).with_notifier(notifier)
    other = CronScheduler(store, recorder)  # the same store object, e.g. `jobs run` beside
    job_id = await store.add_job("j", "hello", Schedule.cron("0 0 1 1 *"))
    await other.run_now(job_id)  # before `mine` runs, and not its run
    run_id = await store.record_run_start(job_id)  # finished by hand through the store
    await store.record_run_complete(run_id, RunStatus.SUCCESS, "by hand")
    mine.start()
    await mine.checkpoint()
    await other.run_now(job_id)
    await mine.run_now(job_id)
    await until(lambda: heard == ["did: hello"], what="its own run")
    await mine.stop()
    second = CronScheduler(store, recorder).with_notifier(notifier)
    await second.run_now(job_id)
    await until(lambda: len(heard) == 2)
    await asyncio.sleep(0.05)
    assert heard == ["did: hello", "did: hello"]  # the stopped scheduler heard nothing more
    await second.stop()
    await other.stop()


class AsyncHook:
    async def __call__(self, job_name: str, session_id: str, text: str, success: bool) -> None:
        return None


class SyncHook:
    def __call__(self, job_name: str, session_id: str, text: str, success: bool) -> None:
        return None


def plain_notifier(job_name: str, session_id: str, text: str, success: bool) -> None:
    return None


@pytest.mark.parametrize(
    ("notifier", "named"),
    [
        (plain_notifier, "plain_notifier"),
        (lambda *args: None, "<lambda>"),
        (SyncHook(), "SyncHook object"),
    ],
)
async def test_a_notifier_that_is_not_async_is_refused_by_name(
    store: CronStore, recorder: Recorder, notifier: object, named: str
) -> None:
    scheduler = CronScheduler(store, recorder)
    with pytest.raises(TypeError, match=f"notifier .*{named}.* is not an async def"):
        scheduler.with_notifier(notifier)  # type: ignore[arg-type]
    assert scheduler.with_notifier(AsyncHook()) is scheduler  # an async __call__ will do
