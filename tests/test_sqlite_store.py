"""SQLite-specific behaviour: the schema version, migrations, file sharing and repair."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from starpod_cron import CronStore, ManualClock, RunStatus, Schedule, SchemaVersionError
from starpod_cron.store.sqlfile import load_migrations


def test_migrations_never_delete_user_data() -> None:
    for _, script in load_migrations("sqlite"):
        upper = script.upper()
        for forbidden in ("DROP TABLE", "DROP COLUMN", "DELETE ", "UPDATE ", "TRUNCATE"):
            assert forbidden not in upper


async def test_reopening_keeps_data_and_schema_version(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.db")
    async with CronStore.open(path) as store:
        await store.add_job("keep-me", "p", Schedule.cron("0 9 * * *"))
    store = await CronStore.open(path)  # the awaitable form
    assert [j.name for j in await store.list_jobs()] == ["keep-me"]
    await store.close()
    await store.close()  # idempotent
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert version == load_migrations("sqlite")[-1][0] and mode == "wal"


async def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = str(tmp_path / "future.db")
    async with CronStore.open(path) as store:
        await store.add_job("j", "p", Schedule.cron("0 9 * * *"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaVersionError, match=r"newer starpod-cron.*99"):
        await CronStore.open(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM jobs").fetchall() == [("j",)]
        assert conn.execute("PRAGMA user_version").fetchone() == (99,)


async def test_sqlite_url_form(tmp_path: Path) -> None:
    async with CronStore.open(f"sqlite:///{tmp_path / 'url.db'}") as store:
        await store.add_job("j", "p", Schedule.cron("0 9 * * *"))
    assert (tmp_path / "url.db").exists()


async def test_recover_repairs_jobs_left_without_a_next_fire(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = str(tmp_path / "repair.db")
    async with CronStore.open(path, clock=clock) as store:
        job_id = await store.add_job("j", "p", Schedule.cron("0 * * * *"))
    with sqlite3.connect(path) as conn:  # damage as an older, buggier writer might have left it
        conn.execute("UPDATE jobs SET next_run_at = NULL, running_run_id = 'ghost'")
    async with CronStore.open(path, clock=clock) as store:
        assert await store.get_due_jobs() == []
        assert (await store.recover(repair=False)).rescheduled_jobs == 0  # periodic: no scans
        report = await store.recover()
        assert report.rescheduled_jobs == 1
        job = await store.get_job(job_id)
        assert job is not None and job.running_run_id is None
        assert job.next_run_at is not None and job.next_run_at > clock.now()
        clock.advance(3600)
        (claim,) = await store.claim_due("me", 1, 30)
        await store.record_run_complete(claim.run_id, RunStatus.SUCCESS)


async def test_a_job_that_cannot_be_evaluated_is_disabled_not_blocking(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = str(tmp_path / "poison.db")
    async with CronStore.open(path, clock=clock) as store:
        bad = await store.add_job("bad", "p", Schedule.cron("0 * * * *"))
        good = await store.add_job("good", "p", Schedule.cron("0 * * * *"))
    with sqlite3.connect(path) as conn:  # e.g. a zone that a tzdata update removed
        conn.execute("UPDATE jobs SET timezone = 'Gone/Zone' WHERE id = ?", (bad,))
    async with CronStore.open(path, clock=clock) as store:
        clock.advance(3600)
        (claim,) = await store.claim_due("me", 10, 30)
        assert claim.job_id == good
        job = await store.get_job(bad)
        assert job is not None and not job.enabled
        assert job.last_error is not None and "Gone/Zone" in job.last_error
