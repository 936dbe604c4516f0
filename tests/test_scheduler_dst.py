"""The whole scheduler across real DST transitions, with time moved by a ManualClock."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    ManualClock,
    Schedule,
)

CASES = [
    # zone, start (UTC), transition day (local)
    ("Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC), "2026-03-29"),
    ("Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC), "2026-10-25"),
    ("America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC), "2026-03-08"),
    ("America/New_York", datetime(2026, 10, 31, 12, tzinfo=UTC), "2026-11-01"),
]


@pytest.mark.parametrize(("zone", "start", "day"), CASES)
async def test_scheduler_across_dst(tmp_path: Path, zone: str, start: datetime, day: str) -> None:
    clock = ManualClock(start)
    store = await CronStore.open(str(tmp_path / "dst.db"), clock=clock)
    fired: list[tuple[str, datetime]] = []

    async def executor(ctx: JobContext) -> JobResult:
        fired.append((ctx.job_name, ctx.scheduled_for))
        return JobResult("", "ok")

    scheduler = CronScheduler(store, executor, max_concurrent_runs=8)
    for name, expr in [
        ("fixed-0230", "30 2 * * *"),
        ("fixed-0130", "30 1 * * *"),
        ("hourly", "0 * * * *"),
        ("seconds-first-0230", "0 30 2 * * *"),
    ]:
        await store.add_job(name, "p", Schedule.cron(expr), timezone=zone)
    scheduler.start()
    try:
        end = start + timedelta(hours=48)
        while clock.now() < end:
            clock.advance(300)
            for _ in range(400):  # let the loop claim and finish everything now due
                await asyncio.sleep(0.002)
                due = await store.next_due_at()
                if scheduler.running_count == 0 and (due is None or due > clock.now()):
                    break
    finally:
        await scheduler.stop()
        await store.close()

    tz = ZoneInfo(zone)
    on_day = Counter(name for name, at in fired if at.astimezone(tz).date().isoformat() == day)
    assert on_day["fixed-0230"] == 1
    assert on_day["fixed-0130"] == 1
    assert on_day["seconds-first-0230"] == 1
    hours_that_day = 23 if day.endswith(("-03-29", "-03-08")) else 25
    assert on_day["hourly"] == hours_that_day
    assert len(fired) == len(set(fired)), "an occurrence ran twice"
    assert all(at.minute == 0 for name, at in fired if name == "hourly")
