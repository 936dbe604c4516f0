"""Faults that lose or wedge runs, each tried for real: SIGKILL before a fire time, a paused
process, a full disk, an executor that exits the interpreter or ignores cancellation, blocking
code, a long outage, and other processes' changes."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    RunStatus,
    RunTrigger,
    Schedule,
    SystemClock,
)
from starpod_cron.scheduler import ExecutorExited
from starpod_cron.watchdog import Watchdog
from tests.conftest import eventually, until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.worker", *args, cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )


class Calls:
    """An executor recording when it was called."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[float, JobContext]] = []
        self.delay = delay

    async def __call__(self, ctx: JobContext) -> JobResult:
        self.calls.append((time.time(), ctx))
        if self.delay:
            await asyncio.sleep(self.delay)
        return JobResult("s", f"ok {ctx.attempt}")


# --------------------------------------------------------------- 1. claimed ahead, then killed
async def test_a_fire_claimed_ahead_by_a_killed_scheduler_runs_once_at_its_time(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "ahead.db")
    store = await CronStore.open(db)
    fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    job_id = await store.add_job_full("once", "p", Schedule.one_shot(fire), max_retries=0)
    proc = await spawn("run", db, str(tmp_path), "--lease", "30", "--ahead", "2.5")
    runs = await eventually(lambda: store.list_runs(job_id), what="the claim ahead of time")
    assert time.time() < fire.timestamp()  # claimed before its fire time ...
    assert runs[0].started_at == fire and runs[0].status is RunStatus.RUNNING
    proc.kill()  # ... and the scheduler dies before it
    await proc.wait()
    assert not list(tmp_path.glob("*.started"))

    executor = Calls()
    scheduler = CronScheduler(store, executor, tick_secs=0.5, lease_secs=30)
    scheduler.start()
    try:
        await until(lambda: executor.calls, timeout=10, what="the occurrence to run")
        await until(lambda: scheduler.running_count == 0)
    finally:
        await scheduler.stop()
    (called_at, ctx), *more = executor.calls
    assert not more
    assert fire.timestamp() - 0.01 <= called_at < fire.timestamp() + 1.0  # on time, not early
    assert ctx.scheduled_for == fire
    runs = await store.list_runs(job_id)
    assert [(r.status, r.trigger, r.attempt) for r in runs] == [
        (RunStatus.SUCCESS, RunTrigger.RETRY, 2),
        (RunStatus.INTERRUPTED, RunTrigger.SCHEDULE, 1),
    ]
    assert runs[1].error is not None and "no retry is used up" in runs[1].error
    await store.close()


# ------------------------------------------------------------------- 3c. a paused scheduler
async def test_a_paused_scheduler_is_fenced_off_and_its_executor_cancelled_on_resume(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "pause.db")
    store = await CronStore.open(db)
    at = datetime.now(UTC) + timedelta(seconds=0.5)
    job_id = await store.add_job_full(
        "report", "p", Schedule.one_shot(at), max_retries=3, timeout_secs=60
    )
    proc = await spawn("run", db, str(tmp_path), "--lease", "1", "--ahead", "0", "--sleep", "4")
    started = await eventually(
        lambda: _first(tmp_path.glob("*.started")), what="scheduler A to start the run"
    )
    run_a = started.name.removesuffix(".started")
    proc.send_signal(signal.SIGSTOP)  # A freezes mid-run (a VM pause, say)
    try:
        executor = Calls()
        b = CronScheduler(store, executor, tick_secs=0.2, lease_secs=1)
        b.start()
        try:  # B sees A's lease expire, recovers the run and runs the occurrence again
            await until(lambda: executor.calls, timeout=10, what="B to take the run over")
            await until(lambda: b.running_count == 0)
        finally:
            await b.stop()
        resumed_at = time.time()
    finally:
        proc.send_signal(signal.SIGCONT)
    cancelled = await eventually(
        lambda: _exists(tmp_path / f"{run_a}.cancelled"), timeout=5, what="A to cancel its run"
    )
    assert float(cancelled.read_text()) - resumed_at < 1.5  # at once, not after its 4 s
    await asyncio.sleep(4)  # A's executor would have finished by now: it must not have
    assert not (tmp_path / f"{run_a}.finished").exists()
    proc.kill()
    await proc.wait()
    runs = await store.list_runs(job_id)
    assert [(r.status, r.attempt) for r in runs] == [
        (RunStatus.SUCCESS, 2),
        (RunStatus.INTERRUPTED, 1),
    ]
    assert runs[1].id == run_a and runs[0].result_summary == "ok 2"  # recorded once, by B
    await store.close()


async def _first(paths: Iterator[Path]) -> Path | None:
    return next(paths, None)


async def _exists(path: Path) -> Path | None:
    return path if path.exists() else None


# --------------------------------------------------------------------- 2. a full disk
@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a real "database or disk is full"."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: closing has nothing to flush
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass  # full: that is the point
    return filler


async def test_a_full_disk_delays_recording_and_wedges_no_job(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    store = await CronStore.open(str(tiny_disk / "jobs.db"))
    calls = 0
    filled = asyncio.Event()

    async def executor(ctx: JobContext) -> JobResult:
        nonlocal calls
        calls += 1
        if calls > 1:  # the second run is in flight when the disk fills up
            await filled.wait()
        return JobResult("s", "r" * 100_000)  # every completion needs room in the WAL

    job_id = await store.add_job("tick", "p", Schedule.interval(every_ms=1000))
    scheduler = CronScheduler(store, executor, tick_secs=0.5, lease_secs=5)
    scheduler.start()
    try:
        await eventually(lambda: _successes(store, job_id, 1), what="a first success")
        await until(lambda: calls >= 2, what="a second run in flight")
        filler = _fill(tiny_disk)
        filled.set()
        await until(
            lambda: any("run completion(s) failed" in r.message for r in caplog.records),
            timeout=10,
            what="a completion failing on the full disk",
        )
        assert any("database or disk is full" in r.message for r in caplog.records)
        filler.unlink()  # space again: the waiting completion is written, the job goes on
        before = len(await _successes(store, job_id, 0))
        await eventually(lambda: _successes(store, job_id, before + 2), what="runs again")
    finally:
        await scheduler.stop()
    runs = await store.list_runs(job_id, 100)
    assert all(r.status in (RunStatus.SUCCESS, RunStatus.INTERRUPTED) for r in runs)
    job = await store.get_job(job_id)
    assert job is not None and job.running_run_id is None and job.next_run_at is not None
    await store.close()


async def test_a_run_whose_outcome_never_reached_the_disk_is_recovered(tiny_disk: Path) -> None:
    store = await CronStore.open(str(tiny_disk / "jobs.db"))

    async def executor(ctx: JobContext) -> JobResult:
        _fill(tiny_disk)  # the disk fills up while the run is in progress
        return JobResult("s", "r" * 100_000)

    job_id = await store.add_job_full(
        "once", "p", Schedule.one_shot(datetime.now(UTC) + timedelta(seconds=1)), max_retries=2
    )
    scheduler = CronScheduler(store, executor, tick_secs=0.2, lease_secs=1, shutdown_timeout_secs=1)
    scheduler.start()
    runs = await eventually(lambda: store.list_runs(job_id), timeout=10, what="the claim")
    await asyncio.sleep(1.5)
    await scheduler.stop()  # gives up on the outcome it could not write
    (run,) = await store.list_runs(job_id)
    assert run.id == runs[0].id and run.status is RunStatus.RUNNING  # not lost: recoverable
    (tiny_disk / "filler").unlink()
    executor_again = Calls()
    again = CronScheduler(store, executor_again, tick_secs=0.2, lease_secs=1)
    again.start()
    try:
        await until(lambda: executor_again.calls, timeout=10, what="the run to be retried")
        await until(lambda: again.running_count == 0)
    finally:
        await again.stop()
    statuses = [r.status for r in await store.list_runs(job_id)]
    assert statuses == [RunStatus.SUCCESS, RunStatus.INTERRUPTED]
    await store.close()


async def _successes(store: CronStore, job_id: str, at_least: int) -> list[object]:
    runs = await store.list_runs(job_id, 200)
    done = [r for r in runs if r.status is RunStatus.SUCCESS]
    return done if len(done) >= at_least and (done or at_least == 0) else []


# ---------------------------------------------------------------- 3. memory per finished run
def test_finished_runs_leave_the_watchdog_at_once() -> None:
    expired: list[object] = []

    async def main() -> int:
        watchdog: Watchdog[object] = Watchdog(SystemClock(), expired.append)
        peak = 0
        for _ in range(20_000):
            item = object()
            watchdog.watch(item, SystemClock().now_ms() + 7_200_000)  # a two-hour timeout
            watchdog.discard(item)  # ... that finished at once
            peak = max(peak, watchdog.heap_size)
        await watchdog.close()
        return peak

    assert asyncio.run(main()) <= 200  # not 20,000
    assert expired == []


async def test_scheduler_memory_does_not_grow_with_finished_runs(store: CronStore) -> None:
    await store.add_jobs(
        [JobSpec(f"j{i}", "p", Schedule.interval(every_ms=1000)) for i in range(50)]
    )
    executor = Calls()
    scheduler = CronScheduler(store, executor, max_concurrent_runs=50)
    scheduler.start()
    try:
        clock = store.clock
        for _ in range(40):  # 2,000 runs with the default two-hour timeout
            clock.advance(1)  # type: ignore[attr-defined]
            count = len(executor.calls)
            await until(lambda count=count: len(executor.calls) >= count + 50)  # type: ignore[misc]
            await until(lambda: scheduler.running_count <= 50)
        assert scheduler._watchdog.heap_size <= 200
    finally:
        await scheduler.stop()


# ---------------------------------------------------- 7. an executor exiting the interpreter
@pytest.mark.parametrize("prompt", ["exit:3", "interrupt"])
async def test_an_executor_calling_sys_exit_fails_its_run_and_nothing_else(
    store: CronStore, prompt: str
) -> None:
    from tests.targets import run as target

    bad = await store.add_job_full("bad", prompt, Schedule.interval(every_ms=1000), max_retries=0)
    good = await store.add_job("good", "fine", Schedule.interval(every_ms=1000))
    scheduler = CronScheduler(store, target)
    scheduler.start()
    try:
        store.clock.advance(1)  # type: ignore[attr-defined]
        await eventually(lambda: _successes(store, good, 1), what="the good job")
        runs = await eventually(lambda: _final(store, bad), what="the bad job's run")
        store.clock.advance(1)  # type: ignore[attr-defined]
        await eventually(lambda: _successes(store, good, 2), what="the scheduler to go on")
    finally:
        await scheduler.stop()
    assert runs[0].status is RunStatus.FAILED
    reason = "sys.exit(3)" if prompt == "exit:3" else "KeyboardInterrupt"
    assert runs[0].error == f"{ExecutorExited.__name__}: the executor " + (
        f"called {reason}" if prompt == "exit:3" else f"raised {reason}"
    )


async def _final(store: CronStore, job_id: str) -> list[object]:
    return [r for r in await store.list_runs(job_id, 10) if r.status.is_final]


# ------------------------------------------------ 8. an executor that ignores cancellation
async def test_stop_returns_although_an_executor_ignores_cancellation(store: CronStore) -> None:
    released = asyncio.Event()  # only so the test's own loop can finish afterwards
    ignored = 0

    async def stubborn(ctx: JobContext) -> JobResult:
        nonlocal ignored
        while not released.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                ignored += 1
        return JobResult("s", "finished anyway")

    job_id = await store.add_job_full(
        "stubborn", "p", Schedule.interval(every_ms=1000), timeout_secs=5, max_retries=0
    )
    scheduler = CronScheduler(store, stubborn, cancel_grace_secs=0.3, shutdown_timeout_secs=0.2)
    scheduler.start()
    store.clock.advance(1)  # type: ignore[attr-defined]
    await until(lambda: scheduler.running_count == 1)
    store.clock.advance(5)  # type: ignore[attr-defined]  # its timeout: recorded at once
    runs = await eventually(lambda: _final(store, job_id), what="the timeout to be recorded")
    assert runs[0].status is RunStatus.TIMEOUT
    started = time.monotonic()
    try:
        await asyncio.wait_for(scheduler.stop(), 5)  # was: forever
        assert time.monotonic() - started < 2
        assert ignored >= 1  # it really did ignore cancellation (and still does)
    finally:
        released.set()


# ----------------------------------------------------------- 17.8 blocking executors
async def test_a_blocking_executor_is_timed_out_and_named_as_the_loop_blocker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.targets import run as target

    caplog.set_level(logging.WARNING)
    store = await CronStore.open(str(tmp_path / "block.db"))
    job_id = await store.add_job_full(
        "sleepy", "block:1.5", Schedule.interval(every_ms=1000), timeout_secs=0.5, max_retries=0
    )
    scheduler = CronScheduler(store, target, tick_secs=0.5)
    scheduler.start()
    try:
        runs = await eventually(lambda: _final(store, job_id), what="the blocking run")
        await until(
            lambda: any("event loop blocked" in r.message for r in caplog.records), timeout=5
        )
    finally:
        await scheduler.stop()
        await store.close()
    assert runs[-1].status is RunStatus.TIMEOUT  # was: success after 1.5 s
    assert runs[-1].error is not None and "over its timeout of 0.5s" in runs[-1].error
    (line,) = [r.message for r in caplog.records if "event loop blocked" in r.message][:1]
    assert "(job sleepy, run " in line and "asyncio.to_thread" in line
    assert 1.2 < float(line.split("blocked for ")[1].split("s")[0]) < 3


async def test_a_sync_python_function_can_be_timed_out_while_other_jobs_run(
    tmp_path: Path,
) -> None:
    from starpod_cron.executors import PythonExecutor

    store = await CronStore.open(str(tmp_path / "sync.db"))
    executor = PythonExecutor(store, "tests.targets:run_sync")
    slow = await store.add_job_full(
        "slow", "sleep:3", Schedule.cron("0 0 1 1 *"), timeout_secs=0.5, max_retries=0
    )
    quick = await store.add_job("quick", "hi", Schedule.interval(every_ms=1000))
    scheduler = CronScheduler(store, executor, tick_secs=0.5)
    scheduler.start()
    try:
        started = time.monotonic()
        run = await asyncio.wait_for(scheduler.run_now(slow), 5)
        assert run.status is RunStatus.TIMEOUT and time.monotonic() - started < 1.5
        await eventually(lambda: _successes(store, quick, 2), what="the quick job meanwhile")
    finally:
        await scheduler.stop()
        await store.close()


# ------------------------------------------------ 17.3 catching up after a long outage
async def test_catching_up_a_long_outage_leaves_the_event_loop_serving(store: CronStore) -> None:
    """Planning a 1,000-job catch-up claim never holds the event loop: other tasks keep
    running all through it (before: none ran during an 8 s stall). The stall itself, at most
    50 ms, is measured by the `catchup` benchmark, not by a timed test."""
    from starpod_cron import MisfirePolicy

    specs = [
        JobSpec(f"every-second-{i}", "p", Schedule.cron("* * * * * *"), misfire_policy=policy)
        for i in range(1000)
        for policy in [MisfirePolicy.SKIP if i % 2 else MisfirePolicy.RUN_ONCE]
    ]
    await store.add_jobs(specs)
    store.clock.advance(30 * 60)  # type: ignore[attr-defined]  # 30 minutes down
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0)

    # what earlier tests left on the heap is not this claim's doing: collect it now and keep
    # it out of the collector's sight, so a full collection cannot land inside the measurement
    gc.collect()
    gc.freeze()
    running = asyncio.create_task(ticker())
    try:
        began = time.perf_counter()
        claimed = await store.claim_due("me", 1000, 30)
        ended = time.perf_counter()
    finally:
        running.cancel()
        gc.unfreeze()
    assert len(claimed) == 1000
    during = [t for t in ticks if began < t < ended]
    # the loop turned over and over while the claim was planned: no long gap anywhere
    assert len(during) >= 20, f"{len(during)} turns in {ended - began:.2f}s"
    gaps = [b - a for a, b in zip([began, *during], [*during, ended], strict=True)]
    assert max(gaps) < (ended - began) / 4, f"one gap held the loop for {max(gaps):.2f}s"


# ---------------------------------------------- 14. other processes' changes, at once
async def test_a_job_added_by_another_process_fires_on_time(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    store = await CronStore.open(db)
    executor = Calls()
    scheduler = CronScheduler(store, executor, tick_secs=30)  # the fallback is 30 s
    scheduler.start()
    try:
        await scheduler.checkpoint()  # the loop sleeps now, for up to 30 s
        cli = str(Path(sys.executable).with_name("starpod-cron"))
        proc = await asyncio.create_subprocess_exec(
            cli, "--db", db, "jobs", "add", "soon", "p", "--in", "2s", cwd=tmp_path
        )
        assert await proc.wait() == 0
        job = await store.get_job_by_name("soon")
        assert job is not None and job.next_run_at is not None
        await until(lambda: executor.calls, timeout=10, what="the job added elsewhere")
        late = executor.calls[0][0] - job.next_run_at.timestamp()
        assert -0.01 <= late < 0.5, f"fired {late:.2f}s late"
    finally:
        await scheduler.stop()
        await store.close()
