"""What the jobs did, on behalf of someone, with the ownership rules of
:class:`~starpod_cron.operations.JobOperations`: recent runs and run statistics (a user sees
those of their own jobs, an admin all), the deliveries of run results (admins only: their
destinations are everyone's), the WebSocket events a principal may replay, and whether the
store answers. The HTTP API, the WebSocket server and the CLI are thin adapters over it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .access import Principal
from .errors import InvalidInput, LimitExceeded, StoreUnavailable
from .models import (
    CronJob,
    CronRun,
    Delivery,
    DeliveryStatus,
    DestinationRefusal,
    RunStats,
    RunStatus,
    RunTrigger,
)
from .operations import JobOperations
from .routing import WS_PREFIX
from .settings import SchedulerSettings, StoreSettings
from .store.types import RunFilter, RunPage
from .timeutil import from_ms, to_ms
from .usage import usage_report
from .views import job_json, run_json

MAX_RECENT_RUNS = 500
OVERVIEW_HOURS = 24
FAILED = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT})
MAX_PAGE = 200
"""The most runs one page lists (``GET /api/runs``, ``cron_runs``)."""
_CURSOR = "runs:"
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


def page_cursor(seq: int | None) -> str | None:
    """The opaque ``next`` of a page of runs (None: the last page)."""
    if seq is None:
        return None
    return base64.urlsafe_b64encode(f"{_CURSOR}{seq}".encode()).decode().rstrip("=")


def read_cursor(cursor: object) -> int | None:
    """The position a ``before`` cursor (a page's ``next``) stands for; InvalidInput."""
    if cursor is None or cursor == "":
        return None
    bad = InvalidInput("before must be the 'next' of a previous page of runs")
    if not isinstance(cursor, str) or len(cursor) > 64:
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise bad from None
    number = text.removeprefix(_CURSOR)
    if not text.startswith(_CURSOR) or not number.isascii() or not number.isdigit():
        raise bad
    return int(number)


def page_json(page: RunPage, jobs: dict[str, CronJob]) -> dict[str, Any]:
    """``{"runs": [...], "total": N, "next": cursor | null}``: each run with its job's
    ``late_ms`` (the job as ``jobs`` has it by id)."""
    return {
        "runs": [run_json(r, jobs.get(r.job_id)) for r in page.runs],
        "total": page.total,
        "next": page_cursor(page.next),
    }


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

    async def runs_page(
        self,
        who: Principal,
        *,
        job: str | None = None,
        status: RunStatus | None = None,
        trigger: RunTrigger | None = None,
        limit: object = 50,
        before: object = None,
    ) -> tuple[RunPage, dict[str, CronJob]]:
        """A page of the runs ``who`` may see (their own jobs'; an admin: all), newest first,
        optionally of one ``job`` (name or id), status and trigger; ``before``: a previous
        page's ``next``. With the jobs by id (``late_ms`` needs them)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be a whole number from 1 to {MAX_PAGE}, got {limit!r}")
        where = RunFilter(status=status, trigger=trigger, before=read_cursor(before))
        if job is not None:
            found = await self.jobs.find(who, job)
            return await self._store.page_runs(
                RunFilter(None, found.id, status, trigger, where.before), limit
            ), {found.id: found}
        if not who.admin:
            if who.user_id is None:
                return RunPage([], 0, None), {}
            where = RunFilter(who.user_id, None, status, trigger, where.before)
        mine = await self.jobs.list_jobs(who)
        return await self._store.page_runs(where, limit), {j.id: j for j in mine}

    async def overview(self, who: Principal) -> dict[str, Any]:
        """What the dashboard's first page shows, of the jobs ``who`` may see: counts (jobs,
        enabled, paused, failing, running runs, dead deliveries), runs and failures per whole
        hour of the last 24 (the current one last), the runs in flight with how long they
        have run, the failing jobs (last run failed, or failures in a row) and the paused."""
        now_ms = self.now_ms()
        mine = await self.jobs.list_jobs(who)
        owner = None if who.admin else who.user_id or ""  # "": no one's jobs
        hour = from_ms(now_ms).replace(minute=0, second=0, microsecond=0)
        since = hour - timedelta(hours=OVERVIEW_HOURS - 1)
        hours = await self._store.runs_per_hour(since, OVERVIEW_HOURS, owner)
        running, jobs = await self.runs_page(who, status=RunStatus.RUNNING, limit=MAX_PAGE)
        failing = [j for j in mine if j.last_status in FAILED or j.consecutive_failures > 0]
        paused = [j for j in mine if not j.enabled]
        dead = await self.deliveries(who, DeliveryStatus.DEAD, MAX_DELIVERIES)
        return {
            "counts": {
                "jobs": len(mine),
                "enabled": len(mine) - len(paused),
                "paused": len(paused),
                "failing": len(failing),
                "running": running.total,
                "dead_deliveries": dead[1].get(DeliveryStatus.DEAD, 0),
            },
            "hours": [
                {"start": h.start.isoformat(), "runs": h.runs, "failures": h.failures}
                for h in hours
            ],
            "running": [
                {**r, "elapsed_ms": max(0, now_ms - to_ms(run.started_at))}
                for r, run in zip(page_json(running, jobs)["runs"], running.runs, strict=True)
            ],
            "failing": [job_json(j) for j in failing],
            "paused": [job_json(j) for j in paused],
        }

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
