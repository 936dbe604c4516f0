"""Jobs declared in code and in agent.toml: synced into a real store, run by a real scheduler,
re-synced after a change, and protected from edits made elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    Overlap,
    RunStatus,
    Schedule,
)
from starpod_cron.access import LOCAL_ADMIN
from starpod_cron.config import parse_config
from starpod_cron.declared import JobRegistry, ManagedJob, load, sync_jobs, with_declared
from starpod_cron.errors import ConfigError
from starpod_cron.jobfields import JobFields
from starpod_cron.operations import JobOperations
from starpod_cron.timeutil import from_ms
from tests.conftest import until

CONFIG = """
[cron]
job_modules = ["tests.declared_sample"]

[[jobs]]
name = "standup"
prompt = "Post the standup summary"
cron = "0 9 * * 1-5"
timezone = "Europe/Rome"
description = "the team's morning post"

[[jobs]]
name = "retro"
prompt = "Collect the week's notes"
cron = "0 16 * * 5"
"""


def registry(text: str) -> Any:
    config = parse_config(text)
    return load(config.jobs, config.job_modules)


async def test_declared_jobs_are_synced_run_resynced_and_protected(tmp_path: Path) -> None:
    store = await CronStore.open(str(tmp_path / "jobs.db"))
    now = from_ms(store.clock.now_ms())
    first = registry(CONFIG)
    dry = await sync_jobs(store, first, now=now, dry_run=True)
    assert sorted(dry.created) == ["heartbeat", "inbox", "retro", "standup"]
    assert await store.list_jobs() == []  # a dry run writes nothing
    report = await sync_jobs(store, first, now=now)
    assert sorted(report.created) == sorted(dry.created)
    again = await sync_jobs(store, first, now=now)  # idempotent
    assert again.changes() == 0 and len(again.unchanged) == 4
    standup = await store.get_job_by_name("standup")
    assert standup is not None and standup.description == "the team's morning post"
    assert standup.schedule == Schedule.cron("0 9 * * 1-5") and standup.timezone == "Europe/Rome"
    inbox = await store.get_job_by_name("inbox")
    assert inbox is not None and inbox.prompt == "Summarize my inbox"

    # the code job runs through the scheduler like any job; prompts go to the executor
    prompts: list[str] = []

    async def model(ctx: JobContext) -> JobResult:
        prompts.append(ctx.prompt)
        return JobResult("", "from the model")

    scheduler = CronScheduler(store, with_declared(model, first))
    scheduler.start()
    try:
        heartbeat = await store.get_job_by_name("heartbeat")
        assert heartbeat is not None
        await until(lambda: scheduler.running_count == 0 and prompts == [], timeout=1)
        runs = await _eventually_runs(store, heartbeat.id)
        assert runs[0].status is RunStatus.SUCCESS and runs[0].result_summary == "beat 1"
        assert prompts == []  # the function ran, not the model
    finally:
        await scheduler.stop()

    # edits from elsewhere are refused, naming where the job is declared
    ops = JobOperations(store)
    with pytest.raises(ManagedJob, match=r"declared in agent.toml \[\[jobs\]\] standup"):
        await ops.update(LOCAL_ADMIN, "standup", JobFields(prompt="hijacked"))
    with pytest.raises(ManagedJob):
        await ops.set_enabled(LOCAL_ADMIN, "heartbeat", False)
    with pytest.raises(ManagedJob):
        await ops.remove(LOCAL_ADMIN, "retro")

    # a change in config: standup moves to 10:00, retro is gone (disabled, history kept)
    changed = CONFIG.replace('cron = "0 9 * * 1-5"', 'cron = "0 10 * * 1-5"')
    changed = changed[: changed.index('[[jobs]]\nname = "retro"')]
    report = await sync_jobs(store, registry(changed), now=now)
    assert report.updated == ["standup"] and report.disabled == ["retro"]
    standup = await store.get_job_by_name("standup")
    assert standup is not None and standup.schedule == Schedule.cron("0 10 * * 1-5")
    retro = await store.get_job_by_name("retro")
    assert retro is not None and not retro.enabled
    await store.close()


async def _eventually_runs(store: CronStore, job_id: str) -> list[Any]:
    found: list[Any] = []

    async def check() -> bool:
        found[:] = [r for r in await store.list_runs(job_id) if r.status is not RunStatus.RUNNING]
        return bool(found)

    import time

    deadline = time.monotonic() + 10
    while not await check():
        assert time.monotonic() < deadline, "the code job never ran"
        import asyncio

        await asyncio.sleep(0.05)
    return found


async def test_a_declared_name_taken_by_a_hand_made_job_is_refused(tmp_path: Path) -> None:
    store = await CronStore.open(str(tmp_path / "jobs.db"))
    await store.add_job("retro", "made by hand", Schedule.cron("0 16 * * 5"))
    with pytest.raises(ConfigError, match="made by hand; rename one of them"):
        await sync_jobs(store, registry(CONFIG), now=from_ms(store.clock.now_ms()))
    assert [j.name for j in await store.list_jobs()] == ["retro"]  # nothing written
    await store.close()


async def test_declared_jitter_and_overlap_are_synced_and_resynced(tmp_path: Path) -> None:
    store = await CronStore.open(str(tmp_path / "jobs.db"))
    now = from_ms(store.clock.now_ms())
    text = (
        '[[jobs]]\nname = "digest"\nprompt = "p"\ncron = "0 9 * * *"\n'
        'jitter_secs = 600\noverlap = "allow"\nmax_instances = 2\n'
    )
    await sync_jobs(store, registry(text), now=now)
    job = await store.get_job_by_name("digest")
    assert job is not None
    assert (job.jitter_secs, job.overlap, job.max_instances) == (600, Overlap.ALLOW, 2)
    assert (await sync_jobs(store, registry(text), now=now)).changes() == 0
    changed = text.replace('overlap = "allow"\nmax_instances = 2', 'overlap = "queue"')
    report = await sync_jobs(store, registry(changed.replace("600", "0")), now=now)
    assert report.updated == ["digest"]
    job = await store.get_job_by_name("digest")
    assert job is not None
    assert (job.jitter_secs, job.overlap, job.max_instances) == (0, Overlap.QUEUE, 1)
    with pytest.raises(ConfigError, match="needs overlap = 'allow'"):
        registry(text.replace('overlap = "allow"\n', ""))
    await store.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[jobs]]\nprompt = "p"\ncron = "0 9 * * *"\n', "name the job"),
        ('[[jobs]]\nname = "a"\nprompt = "p"\ncron = "61 * * * *"\n', "minute"),
        ('[[jobs]]\nname = "a"\nprompt = "p"\nevery = "1h"\ncolour = "red"\n', "colour"),
        ('[cron]\njob_modules = ["no_such_module_xyz"]\n', "cannot import"),
        (
            '[[jobs]]\nname = "a"\nprompt = "p"\nevery = "1h"\n'
            '[[jobs]]\nname = "a"\nprompt = "q"\nevery = "2h"\n',
            "declared twice",
        ),
    ],
)
def test_bad_declarations_are_config_errors_naming_the_job(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        registry(text)


async def test_maintenance_jobs_are_listed_and_delete_what_the_dry_run_counted(
    tmp_path: Path,
) -> None:
    from datetime import timedelta

    from starpod_cron import ManualClock
    from starpod_cron.maintenance import configured_jobs
    from tests.conftest import START

    clock = ManualClock(START)
    store = await CronStore.open(str(tmp_path / "m.db"), clock=clock)
    job_id = await store.add_job("old", "p", Schedule.interval(every_ms=60_000))
    for _ in range(3):
        clock.advance(60)
        (claim,) = await store.claim_due("me", 10, 30)
        await store.record_run_complete(claim.run_id, RunStatus.SUCCESS, "ok")
    clock.advance(40 * 86_400)
    config = parse_config("[maintenance]\nruns_days = 30\noptimize = true\n")
    jobs = configured_jobs(config, store)
    await sync_jobs(store, jobs, now=clock.now())
    names = sorted(j.name for j in await store.list_jobs())
    assert names == ["maintenance-optimize", "maintenance-runs", "old"]
    counted = await store.prune_runs(clock.now() - timedelta(days=30), dry_run=True)
    assert counted == 3

    async def model(ctx: JobContext) -> JobResult:
        raise AssertionError("maintenance jobs never reach the model")

    scheduler = CronScheduler(store, with_declared(model, jobs))
    maintenance = await store.get_job_by_name("maintenance-runs")
    assert maintenance is not None
    run = await scheduler.run_now(maintenance.id)
    assert run.status is RunStatus.SUCCESS
    assert run.result_summary == f"deleted {counted} run(s) older than 30 day(s)"
    assert await store.list_runs(job_id) == []
    await scheduler.stop()
    await store.close()


def test_a_decorator_refuses_an_option_no_field_declares() -> None:
    registry = JobRegistry()
    with pytest.raises(ConfigError, match=r"unknown job option\(s\) \['max_retry'\]"):
        registry.every("1h", max_retry=3)
    registry.every("1h", max_retries=3)  # a declared field is taken
