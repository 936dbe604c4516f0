"""What the jobs did, on behalf of someone, with the ownership rules of
:class:`~starpod_cron.operations.JobOperations`: recent runs and run statistics (a user sees
those of their own jobs, an admin all), the deliveries of run results (admins only: their
destinations are everyone's), the WebSocket events a principal may replay, and whether the
store answers. The HTTP API, the WebSocket server and the CLI are thin adapters over it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from .access import Principal
from .errors import LimitExceeded, StoreUnavailable
from .models import (
    CronJob,
    CronRun,
    Delivery,
    DeliveryStatus,
    DestinationRefusal,
    RunStats,
    RunStatus,
)
from .operations import JobOperations
from .routing import WS_PREFIX
from .settings import SchedulerSettings, StoreSettings
from .usage import usage_report

MAX_RECENT_RUNS = 500
MAX_DELIVERIES = 1000


def overdue_after_secs(scheduler: SchedulerSettings, store: StoreSettings) -> float:
    """How far past its next fire an enabled job counts as overdue: ``2 * tick_secs +
    misfire_grace_secs`` (a running scheduler would have claimed it by then)."""
    return 2 * scheduler.tick_secs + store.misfire_grace_secs


def overdue_jobs(
    jobs: Iterable[CronJob], now: datetime, after_secs: float
) -> list[tuple[CronJob, float]]:
    """The enabled jobs, not running now, whose next fire is more than ``after_secs`` in the
    past, each with how many seconds past its next fire it is, most overdue first: jobs that
    look healthy but do not fire (no scheduler up, or one stuck). ``status`` and
    ``starpod_cron_job_overdue_seconds`` show these."""
    found = []
    for job in jobs:
        due = job.next_fire_at or job.next_run_at
        if not job.enabled or job.running_count or due is None:
            continue
        late = (now - due).total_seconds()
        if late > after_secs:
            found.append((job, late))
    return sorted(found, key=lambda pair: -pair[1])


class AdminOnly(LimitExceeded):
    """Something only an admin may see or do (the deliveries of every destination)."""


class Activity:
    """Runs, deliveries and events as ``who`` may see them."""

    def __init__(self, jobs: JobOperations) -> None:
        self.jobs = jobs
        self._store = jobs.store

    async def recent_runs(
        self, who: Principal, limit: int = 50, status: RunStatus | None = None
    ) -> tuple[list[CronRun], dict[str, CronJob]]:
        """The newest ``limit`` runs (1-500) of the jobs ``who`` may see, optionally in one
        status, newest first; and those jobs by id (a deleted one-shot's runs have none)."""
        limit = max(1, min(limit, MAX_RECENT_RUNS))
        mine = await self.jobs.list_jobs(who)
        if who.admin:
            runs = await self._store.list_recent_runs(limit, status=status)
        else:
            found = [
                await self._store.list_recent_runs(limit, job_id=j.id, status=status) for j in mine
            ]
            runs = sorted((r for f in found for r in f), key=_newest_first)[:limit]
        return runs, {j.id: j for j in mine}

    async def job_stats(self, who: Principal) -> dict[str, RunStats]:
        """Per job id ``who`` may see: its kept runs, errors and tokens (jobs without runs
        are left out)."""
        mine = {j.id for j in await self.jobs.list_jobs(who)}
        return {k: v for k, v in (await self._store.run_stats()).items() if k in mine}

    async def usage(self, who: Principal, now: datetime) -> dict[str, Any]:
        """What runs cost and used (:func:`~starpod_cron.usage.usage_report`): per job ``who``
        may see, per owner (a user: only themselves) and, for admins, in total."""
        mine = await self.jobs.list_jobs(who)
        if who.admin:
            return await usage_report(self._store, mine, now, owners=None, everyone=True)
        owners = [] if who.user_id is None else [who.user_id]
        return await usage_report(self._store, mine, now, owners=owners, everyone=False)

    async def deliveries(
        self, who: Principal, status: DeliveryStatus = DeliveryStatus.DEAD, limit: int = 100
    ) -> tuple[list[Delivery], dict[DeliveryStatus, int]]:
        """The newest ``limit`` deliveries (1-1000) in ``status``, and how many there are in
        each status: every delivery for an admin; a user's own jobs' (counts: those found)."""
        limit = max(1, min(limit, MAX_DELIVERIES))
        if who.admin:
            found = await self._store.deliveries_with_status(status, limit)
            return found, await self._store.count_deliveries()
        mine = [j.id for j in await self.jobs.list_jobs(who)]
        found = await self._store.deliveries_with_status(status, limit, job_ids=mine)
        return found, {status: len(found)}

    async def retry_delivery(self, who: Principal, delivery_id: int) -> bool:
        """Give a dead delivery another round of attempts; False unless it was dead (or, for
        a user, not one of their own jobs': the same answer, nothing revealed)."""
        if not who.admin:
            delivery = await self._store.get_delivery(delivery_id)
            job = None if delivery is None else await self._store.get_job(delivery.job_id)
            if job is None or not who.may_touch(job):
                return False
        return await self._store.retry_delivery(delivery_id)

    async def events(
        self, who: Principal, since: int, limit: int, *, share_agent_events: bool
    ) -> list[Delivery]:
        """The WebSocket events after id ``since`` that ``who`` may see, oldest first, at
        most ``limit`` (the replay of an event stream)."""
        seen = who.audiences(share_agent_events)
        destinations: Sequence[str] | None = None if seen is None else sorted(seen)
        return await self._store.list_deliveries(since, destinations, limit, prefix=WS_PREFIX)

    def now_ms(self) -> int:
        """The store's clock (every node's judge of lease and pass ages)."""
        return self._store.clock.now_ms()

    async def store_health(self, timeout_secs: float) -> list[DestinationRefusal]:
        """The destinations refusing now, once the store answered within ``timeout_secs``;
        :class:`StoreUnavailable` when it did not (another StarpodCronError when closed)."""
        try:
            async with asyncio.timeout(timeout_secs):
                await self._store.ping()
                return await self._store.refusing_destinations()
        except TimeoutError:
            raise StoreUnavailable(f"the store did not answer in {timeout_secs:g} s") from None


def _newest_first(run: CronRun) -> float:
    return -run.started_at.timestamp()
