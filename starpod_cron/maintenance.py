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
from .store.base import CronStore
from .timeutil import from_ms

SOURCE = "agent.toml [maintenance]"


def maintenance_jobs(config: MaintenanceConfig, store: CronStore) -> list[DeclaredJob]:
    """The maintenance jobs ``config`` turns on, acting on ``store``."""

    tasks: list[tuple[str, str, Callable[[], Awaitable[str]]]] = []
    if config.runs_days:
        days = config.runs_days

        async def runs() -> str:
            cutoff = from_ms(store.clock.now_ms()) - timedelta(days=days)
            return f"deleted {await store.prune_runs(cutoff)} run(s) older than {days} day(s)"

        tasks.append(("runs", f"delete run history older than {days} day(s)", runs))
    if config.sessions_hours:
        hours = config.sessions_hours

        async def sessions() -> str:
            cutoff = from_ms(store.clock.now_ms()) - timedelta(hours=hours)
            deleted = await store.prune_messages(cutoff)
            return f"deleted {deleted} conversation message(s) older than {hours} hour(s)"

        tasks.append(("sessions", f"delete conversation messages older than {hours} h", sessions))
    if config.deliveries_days:
        ddays = config.deliveries_days

        async def deliveries() -> str:
            cutoff = from_ms(store.clock.now_ms()) - timedelta(days=ddays)
            deleted = await store.prune_deliveries(cutoff)
            return f"deleted {deleted} finished deliveries older than {ddays} day(s)"

        tasks.append(
            ("deliveries", f"delete finished deliveries older than {ddays} day(s)", deliveries)
        )
    if config.optimize:

        async def optimize() -> str:
            await store.optimize()
            return "refreshed the query statistics"

        tasks.append(("optimize", "refresh the database's query statistics", optimize))
    return [_job(name, text, task, config.cron) for name, text, task in tasks]


def _job(name: str, text: str, task: Callable[[], Awaitable[str]], cron: str) -> DeclaredJob:
    async def run(ctx: JobContext) -> JobResult:
        return JobResult(session_id="", summary=await task())

    fields = JobFields(prompt=f"[maintenance] {text}", cron=cron, description=text, max_retries=1)
    return DeclaredJob(f"maintenance-{name}", fields, SOURCE, run, None)


def configured_jobs(config: AgentConfig, store: CronStore) -> JobRegistry:
    """Every job ``config`` declares: ``[[jobs]]``, ``job_modules``, entry points and the
    ``[maintenance]`` jobs."""
    registry = load(config.jobs, config.job_modules, base_dir=config.base_dir)
    for job in maintenance_jobs(config.maintenance, store):
        registry.add(job)
    return registry
