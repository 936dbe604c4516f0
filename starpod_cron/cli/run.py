"""``jobs run``: run jobs now through the configured executor and record the runs (with their
deliveries, so a running gateway sends them).

Ctrl-C once: runs in progress get ``shutdown_timeout_secs`` to finish (the wait is announced);
Ctrl-C again: they are interrupted at once (recorded ``interrupted``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import declared
from ..access import LOCAL_ADMIN
from ..bootstrap import user_limits
from ..errors import InvalidInput, JobAlreadyRunning
from ..executors import BuiltExecutor, build_executor
from ..maintenance import configured_jobs
from ..models import CronJob
from ..operations import JobOperations
from ..scheduler import CronScheduler
from ..tasks import TaskSet
from ..timeutil import zone
from ..views import run_json
from .context import Context, find_jobs
from .render import Output, ms, one_line, tokens


async def jobs_run(c: Context, args: argparse.Namespace) -> Output:
    if args.all and args.names:
        raise InvalidInput("give job names or --all, not both")
    if not args.all and not args.names:
        raise InvalidInput("name the jobs to run, or use --all")
    jobs = (
        [j for j in await c.store.list_jobs() if j.enabled]
        if args.all
        else await find_jobs(c, args.names)
    )
    executor = _executor(c, jobs)
    runners = sorted({declared.runs_with(executor, job) for job in jobs})
    scheduler = CronScheduler(c.store, executor, c.config.scheduler)
    parallel = 1 if args.sequential else c.config.scheduler.max_concurrent_runs
    limit = asyncio.Semaphore(parallel)
    progress = _Progress(len(jobs))
    batch = asyncio.gather(
        *(_run_one(scheduler, job, c.tz(job.timezone), limit, progress) for job in jobs)
    )
    interrupts = _Interrupts(scheduler, batch)
    try:
        results = list(await batch)
    finally:
        await interrupts.close()
        await scheduler.stop()
        await executor.aclose()
    succeeded = sum(1 for r in results if r["status"] == "success")
    data = {
        "jobs_run": results,
        "total": len(results),
        "succeeded": succeeded,
        "failed": len(results) - succeeded,
        "executor": "; ".join(runners),
    }
    out = Output(data, "table", "Job Execution Results")
    out.columns = ["JOB", "STATUS", "DURATION", "TOKENS", "RESULT"]
    out.rows = [
        [
            r["job_name"],
            r["status"],
            ms(r["duration_ms"]),
            tokens(r["prompt_tokens"], r["completion_tokens"]),
            one_line((r["result"] if r["status"] == "success" else r["error"]) or "", 80),
        ]
        for r in results
    ]
    out.text = f"{succeeded} of {len(results)} succeeded ({'; '.join(runners)})"
    out.exit_code = 0 if succeeded == len(results) else 1
    return out


def _executor(c: Context, jobs: Sequence[CronJob]) -> BuiltExecutor:
    """The configured executor (with the jobs declared in code), its notes on stderr; the
    note that the demo executor answers only when one of ``jobs`` goes to it."""
    config = c.config
    registry = configured_jobs(config, c.store)
    model = build_executor(config.executor, c.store, config.base_dir, limits=user_limits(config))
    executor: BuiltExecutor = declared.with_declared(model, registry)
    runners = {declared.runs_with(executor, job) for job in jobs}
    if "executor" not in c.config.configured and executor.description in runners:
        print(
            "note: no [executor] configured in agent.toml: using the built-in echo executor "
            "(a demo that returns each prompt)",
            file=sys.stderr,
        )
    for note in executor.notes:
        print(f"note: {note}", file=sys.stderr)
    return executor


async def jobs_backfill(c: Context, args: argparse.Namespace) -> Output:
    """``jobs backfill NAME --from T1 --to T2``: run here, through the configured executor,
    each past occurrence without a recorded run (``--dry-run``: list them)."""
    scheduler: CronScheduler | None = None
    executor: BuiltExecutor | None = None
    if not args.dry_run:
        executor = _executor(c, await find_jobs(c, [args.name]))
        scheduler = CronScheduler(c.store, executor, c.config.scheduler)
    ops = JobOperations(c.store, backfiller=None if scheduler is None else scheduler.backfill)
    try:
        work = asyncio.ensure_future(
            ops.backfill(
                LOCAL_ADMIN, args.name, args.start, args.end, dry_run=args.dry_run, limit=args.max
            )
        )
        interrupts = None if scheduler is None else _Interrupts(scheduler, work)
        try:
            job, occurrences, runs = await work
        finally:
            if interrupts is not None:
                await interrupts.close()
    finally:
        if scheduler is not None:
            await scheduler.stop()
        if executor is not None:
            await executor.aclose()
    tz = c.tz(job.timezone)
    if args.dry_run:
        out = Output(
            {"job": job.name, "dry_run": True, "occurrences": [iso(t, tz) for t in occurrences]},
            "table",
            f"Occurrences of {job.name} without a run",
        )
        out.columns = ["OCCURRENCE"] if occurrences else []
        out.rows = [[iso(t, tz)] for t in occurrences]
        out.text = f"{len(occurrences)} occurrence(s) would run (--dry-run: nothing ran)"
        return out
    entries = [run_json(r, job, tz) for r in runs]
    succeeded = sum(1 for r in entries if r["status"] == "success")
    out = Output(
        {"job": job.name, "dry_run": False, "runs": entries, "succeeded": succeeded},
        "table",
        f"Backfill of {job.name}",
    )
    out.columns = ["OCCURRENCE", "STATUS", "DURATION", "RESULT"] if entries else []
    out.rows = [
        [
            iso(r.scheduled_for, tz),
            e["status"],
            ms(e["duration_ms"]),
            one_line((e["result"] if e["status"] == "success" else e["error"]) or "", 80),
        ]
        for r, e in zip(runs, entries, strict=True)
    ]
    out.text = (
        f"{succeeded} of {len(entries)} backfilled occurrence(s) succeeded"
        if entries
        else "nothing to backfill: every occurrence in the range has a run"
    )
    out.exit_code = 0 if succeeded == len(entries) else 1
    return out


def iso(t: datetime, tz: str) -> str:
    return t.astimezone(zone(tz)).isoformat()


async def _run_one(
    scheduler: CronScheduler,
    job: CronJob,
    tz: str,
    limit: asyncio.Semaphore,
    progress: _Progress,
) -> dict[str, Any]:
    """The run's view (as every front end shows runs); a job that was already running is
    ``status: "not_run"`` with the reason as its ``error``."""
    async with limit:
        started = time.monotonic()
        try:
            run = await scheduler.run_now(job.id)
        except JobAlreadyRunning as exc:
            entry: dict[str, Any] = {
                "id": None,
                "job_id": job.id,
                "job_name": job.name,
                "status": "not_run",
                "duration_ms": 0,
                "result": None,
                "error": str(exc),
                "prompt_tokens": None,
                "completion_tokens": None,
            }
        else:
            entry = run_json(run, job, tz)
        progress.done(job.name, str(entry["status"]), time.monotonic() - started)
        return entry


class _Interrupts:
    """SIGINT/SIGTERM while jobs run: first a graceful stop (announced), then at once."""

    def __init__(self, scheduler: CronScheduler, batch: asyncio.Future[Any]) -> None:
        self._scheduler = scheduler
        self._batch = batch
        self._count = 0
        self._tasks = TaskSet("starpod-cron:jobs-run")
        self._loop = asyncio.get_running_loop()
        self._signals: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(sig, self._on_signal)
            except (NotImplementedError, RuntimeError):  # not the main thread, or no Unix
                continue
            self._signals.append(sig)

    def _on_signal(self) -> None:
        self._count += 1
        running = [name for name, _, started in self._scheduler.active_runs() if started]
        if self._count == 1:
            wait = self._scheduler.settings.shutdown_timeout_secs
            print(
                f"\nstopping: waiting up to {wait:g}s for {len(running)} run(s) to finish "
                f"({', '.join(running) or 'none'}); press Ctrl-C again to interrupt them now",
                file=sys.stderr,
                flush=True,
            )
            self._tasks.spawn(self._graceful(), "graceful-stop")
        else:
            print("interrupting the runs now", file=sys.stderr, flush=True)
            self._scheduler.interrupt()

    async def _graceful(self) -> None:
        await asyncio.wait([self._batch], timeout=self._scheduler.settings.shutdown_timeout_secs)
        self._scheduler.interrupt()

    async def close(self) -> None:
        for sig in self._signals:
            self._loop.remove_signal_handler(sig)
        await self._tasks.stop(grace=1)


class _Progress:
    """One line per finished job on stderr when several run (stdout stays the result)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0

    def done(self, name: str, status: str, seconds: float) -> None:
        self.finished += 1
        if self.total > 1:
            print(
                f"[{self.finished}/{self.total}] {name}: {status} ({seconds:.2f}s)",
                file=sys.stderr,
                flush=True,
            )
