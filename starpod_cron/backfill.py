"""Backfill: run once each past occurrence of a job that has no recorded run (``jobs backfill``,
the ``cron_backfill`` tool), oldest first, in a scheduler's runs in flight: the executor, the
timeouts, leases and group commit of scheduled runs, and their ``max_concurrent_runs``.

Occurrences are claimed a few at a time (``CronStore.claim_backfill``: as many as
``max_concurrent_runs`` and the job's ``max_instances`` allow), each batch after the last one
was recorded, so a watcher with ``context = "last"`` sees the results in order and two
processes backfilling one range share it: the store hands each occurrence to one of them.
While the job's other runs fill its ``max_instances`` (a scheduled run, another process's
backfill), it waits for a store change. A run ending ``interrupted`` (a stop, Ctrl-C) ends the
backfill: what is left is run by the next one."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from .inflight import RunsInFlight
from .models import CronRun, RunStatus
from .settings import SchedulerSettings
from .store import CronStore
from .store.ops.backfill import MAX_TAKE

MS = timedelta(milliseconds=1)


async def run_backfill(
    store: CronStore,
    runs: RunsInFlight,
    owner: str,
    settings: SchedulerSettings,
    job_id: str,
    start: datetime,
    end: datetime,
    *,
    limit: int | None = None,
) -> list[CronRun]:
    """The runs made, oldest occurrence first (see the module docstring). InvalidInput when
    the range holds more than ``limit`` occurrences (default ``[cron] backfill_limit``)."""
    planned = await store.backfill_occurrences(job_id, start, end, limit=limit)
    if not planned:
        return []
    cursor, last = planned[0], planned[-1]
    changed = asyncio.Event()
    unsubscribe = store.on_change(changed.set)
    recorded: list[CronRun] = []
    try:
        while not runs.stopping:
            changed.clear()
            claims, more = await store.claim_backfill(
                job_id,
                cursor,
                last,
                owner=owner,
                lease_secs=settings.lease_secs,
                take=min(settings.max_concurrent_runs, MAX_TAKE),
            )
            if not claims:
                if not more:
                    break
                tick = round(settings.tick_secs * 1000)
                await store.clock.wait(changed, store.clock.now_ms() + tick)
                continue
            now = store.clock.now_ms()
            started = [runs.spawn(claim, None, now) for claim in claims]
            await asyncio.gather(*(run.done.wait() for run in started))
            batch = [await store.get_run(claim.run_id) for claim in claims]
            recorded += [run for run in batch if run is not None]
            cursor = max(claim.scheduled_for for claim in claims) + MS
            if not more or any(r is None or r.status is RunStatus.INTERRUPTED for r in batch):
                break
    finally:
        unsubscribe()
    return sorted(recorded, key=lambda r: r.scheduled_for)
