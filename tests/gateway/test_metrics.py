"""/metrics flags each enabled job more than 2 * tick_secs + misfire_grace_secs past its next
fire (`starpod_cron_job_overdue_seconds`), on every backend."""

from __future__ import annotations

from gateway.metrics import Metrics
from starpod_cron import CronStore, JobSpec, ManualClock, Schedule
from starpod_cron.executors.echo import EchoExecutor
from starpod_cron.scheduler import CronScheduler


async def test_an_overdue_job_shows_with_its_seconds_and_a_healthy_one_does_not(
    store: CronStore, clock: ManualClock
) -> None:
    (late_id, _) = await store.add_jobs(
        [
            JobSpec(name="late", prompt="p", schedule=Schedule.interval(60_000)),
            JobSpec(name="daily", prompt="p", schedule=Schedule.interval(86_400_000)),
        ]
    )
    scheduler = CronScheduler(store, EchoExecutor(store), tick_secs=10)  # never started
    metrics = Metrics(store, scheduler, lambda: 0)
    try:
        clock.advance(60 + 2 * 10 + 60)  # exactly at the limit: not overdue yet
        assert b"starpod_cron_job_overdue_seconds{" not in await metrics.render()
        clock.advance(100)
        text = (await metrics.render()).decode()
        assert f'starpod_cron_job_overdue_seconds{{id="{late_id}",job="late"}} 180.0' in text
        assert 'job="daily"' not in text
    finally:
        metrics.close()
