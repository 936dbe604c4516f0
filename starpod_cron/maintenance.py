"""The built-in maintenance jobs (``[maintenance]`` in ``agent.toml``): declared jobs like any
in code, visible in ``jobs list``, scheduled at ``[maintenance] cron``. Each deletes what the
matching ``starpod-cron maintenance ... --dry-run`` counts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from .config import AgentConfig, MaintenanceConfig
from .declared import DeclaredJob, JobRegistry, load
from .jobfields import JobFields
from .models import JobContext, JobResult
from .store import CronStore
from .timeutil import from_ms

SOURCE = "agent.toml [maintenance]"


def maintenance_jobs(
    config: MaintenanceConfig, store: CronStore, source: str = SOURCE
) -> list[DeclaredJob]:
    """The maintenance jobs ``config`` turns on, acting on ``store``, declared in ``source``
    (the file read, as errors and managed jobs name it)."""
    days, hours = timedelta(days=1), timedelta(hours=1)
    prunes: list[tuple[str, int, timedelta, str, str, Prune]] = [
        ("runs", config.runs_days, days, "day(s)", "run(s)", store.prune_runs),
        (
            "sessions",
            config.sessions_hours,
            hours,
            "hour(s)",
            "conversation message(s)",
            store.prune_messages,
        ),
        (
            "deliveries",
            config.deliveries_days,
            days,
            "day(s)",
            "finished deliveries",
            store.prune_deliveries,
        ),
    ]
    declared = []
    for name, amount, unit, unit_name, what, prune in prunes:
        if amount:
            text = f"{what} older than {amount} {unit_name}"
            task = _pruning(store, prune, amount * unit, text)
            declared.append(_job(name, f"delete {text}", task, config.cron, source))
    if config.optimize:

        async def optimize() -> str:
            await store.optimize()
            return "refreshed the query statistics"

        declared.append(
            _job(
                "optimize",
                "refresh the database's query statistics",
                optimize,
                config.cron,
                source,
            )
        )
    return declared


Prune = Callable[..., Awaitable[int]]


def _pruning(
    store: CronStore, prune: Prune, age: timedelta, text: str
) -> Callable[[], Awaitable[str]]:
    """Delete what is older than ``age`` and say how much: ``deleted 3 run(s) older than ...``."""

    async def task() -> str:
        deleted = await prune(from_ms(store.clock.now_ms()) - age)
        return f"deleted {deleted} {text}"

    return task


def _job(
    name: str, text: str, task: Callable[[], Awaitable[str]], cron: str, source: str
) -> DeclaredJob:
    async def run(ctx: JobContext) -> JobResult:
        return JobResult(session_id="", summary=await task())

    fields = JobFields(prompt=f"[maintenance] {text}", cron=cron, description=text, max_retries=1)
    return DeclaredJob(f"maintenance-{name}", fields, source, run, None)


def configured_jobs(config: AgentConfig, store: CronStore) -> JobRegistry:
    """Every job ``config`` declares: ``[[jobs]]``, ``job_modules``, entry points and the
    ``[maintenance]`` jobs."""
    registry = load(config.jobs, config.job_modules, source=config.source, base_dir=config.base_dir)
    for job in maintenance_jobs(config.maintenance, store, f"{config.source} [maintenance]"):
        registry.add(job)
    return registry
