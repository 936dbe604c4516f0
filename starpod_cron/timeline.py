"""The fires of a set of jobs in a window (the dashboard's timeline, ``GET /api/timeline``),
pure: the first ``limit`` in time order, and how many there are in all, counted without
listing them (an interval arithmetically; a cron expression walked up to :data:`COUNT_CAP`
fires, past which the total is a lower bound). Jitter, ``end_at`` and ``max_runs`` apply as
in :func:`~starpod_cron.views.job_fires`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from .models import CronJob
from .schedules import Cron, Interval
from .timeutil import to_ms
from .views import job_fires, runs_left

COUNT_CAP = 50_000
"""The most cron fires one count walks (about 50 ms); an interval is counted exactly."""


@dataclass(frozen=True, slots=True)
class Timeline:
    fires: list[tuple[datetime, CronJob]]
    """The first ``limit`` fires in the window, in time order."""
    total: int
    """Every fire in the window (listed or not)."""
    total_is_lower_bound: bool
    """A cron job fired more than :data:`COUNT_CAP` times in the window: at least ``total``."""

    @property
    def truncated(self) -> bool:
        return len(self.fires) < self.total


def timeline(jobs: list[CronJob], end: datetime, limit: int) -> Timeline:
    """The fires of ``jobs`` (enabled ones) from their next fire up to ``end``."""
    fires: list[tuple[datetime, CronJob]] = []
    total, lower_bound = 0, False
    for job in jobs:
        if not job.enabled or job.next_fire_at is None or job.next_fire_at > end:
            continue
        listed = [t for t in job_fires(job, limit) if t <= end]
        fires += [(t, job) for t in listed]
        if len(listed) < limit:  # every fire of the window is listed
            total += len(listed)
            continue
        count, capped = count_fires(job, end)
        total += max(count, len(listed))
        lower_bound = lower_bound or capped
    fires.sort(key=lambda pair: pair[0])
    return Timeline(fires[:limit], total, lower_bound)


def count_fires(job: CronJob, end: datetime) -> tuple[int, bool]:
    """How many times ``job`` fires from its next occurrence up to ``end`` (nominal times,
    its ``end_at`` and ``max_runs`` applied), and whether that is a lower bound."""
    first = job.next_run_at
    if first is None or first > end:
        return 0, False
    last = end if job.end_at is None else min(end, job.end_at)
    schedule, capped = job.schedule, False
    if isinstance(schedule, Interval):
        count = (to_ms(last) - to_ms(first)) // schedule.every_ms + 1
    elif isinstance(schedule, Cron):
        walk = itertools.takewhile(lambda t: t <= last, schedule.fires_after(first, job.timezone))
        count = 1 + sum(1 for _ in itertools.islice(walk, COUNT_CAP))
        capped = count > COUNT_CAP
    else:
        count = 1
    return min(count, runs_left(job)), capped
