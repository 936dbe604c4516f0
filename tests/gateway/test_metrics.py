"""/metrics flags each enabled job more than 2 * tick_secs + misfire_grace_secs past its next
fire (`starpod_cron_job_overdue_seconds`) and counts each job's silent and undelivered runs,
on every backend."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics
from starpod_cron import (
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    ManualClock,
    NotifyPolicy,
    ProviderHeld,
    Schedule,
)
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


async def test_silent_and_undelivered_runs_are_counted_per_job(store: CronStore) -> None:
    hourly = Schedule.interval(3_600_000)
    beat, same, _capped = await store.add_jobs(
        [
            JobSpec(name="beat", prompt="[SILENT]", schedule=hourly),  # echo: answers the prompt
            JobSpec(
                name="same", prompt="all quiet", schedule=hourly, notify=NotifyPolicy.ON_CHANGE
            ),
            JobSpec(name="capped", prompt="hi", schedule=hourly, max_runs=4),
        ]
    )
    scheduler = CronScheduler(store, EchoExecutor(store))
    metrics = Metrics(store, scheduler, lambda: 0)
    try:
        for _ in range(3):
            for job_id in (beat, same):
                await scheduler.run_now(job_id)
        families = {
            f.name: f for f in text_string_to_metric_families((await metrics.render()).decode())
        }
    finally:
        metrics.close()
        await scheduler.stop()

    def series(name: str) -> dict[str, float]:
        return {s.labels["job"]: s.value for s in families[name].samples}

    assert families["starpod_cron_job_silent_runs"].type == "counter"
    assert series("starpod_cron_job_silent_runs") == {"beat": 3.0}
    assert series("starpod_cron_job_suppressed_runs") == {"same": 2.0}  # the first is delivered
    assert series("starpod_cron_job_remaining_runs") == {"capped": 4.0}
    (sample,) = families["starpod_cron_job_silent_runs"].samples
    assert sample.name == "starpod_cron_job_silent_runs_total" and sample.labels["id"] == beat


async def test_held_runs_are_counted_by_status_from_zero(store: CronStore) -> None:
    """Every run status shows from 0 (held among them), and a held run counts as held."""

    async def quota_gone(ctx: JobContext) -> JobResult:
        raise ProviderHeld("provider quota: HTTP 402", retry_after=600)

    (job_id,) = await store.add_jobs([JobSpec("q", "p", Schedule.interval(3_600_000))])
    scheduler = CronScheduler(store, quota_gone)
    metrics = Metrics(store, scheduler, lambda: 0)
    try:
        text = (await metrics.render()).decode()
        assert 'starpod_cron_runs_total{status="held"} 0.0' in text
        run = await scheduler.run_now(job_id)
        text = (await metrics.render()).decode()
    finally:
        metrics.close()
        await scheduler.stop()
    assert run.status.value == "held" and (run.error or "").startswith("held until")
    assert 'starpod_cron_runs_total{status="held"} 1.0' in text
    assert 'starpod_cron_runs_total{status="failed"} 0.0' in text
