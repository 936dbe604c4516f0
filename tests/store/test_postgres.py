"""PostgreSQL-specific behaviour: the schema version, migrations, first opens racing, and the
errors a user sees for a server that is not there."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from starpod_cron import CronStore, Schedule, SchemaVersionError, StoreUnavailable
from starpod_cron.store.sqlfile import load_migrations
from tests.backends import assert_keeps_user_data, needs_postgres, pg_schema

pytestmark = needs_postgres


def test_migrations_never_delete_user_data() -> None:
    for _, script in load_migrations("postgres"):
        assert_keeps_user_data(script)
        assert "DROP TABLE" not in script.upper()


async def _version(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM starpod_cron_schema")]
    finally:
        await conn.close()


async def test_first_opens_racing_migrate_once_and_keep_data() -> None:
    async with pg_schema() as dsn:
        stores = await asyncio.gather(*(CronStore.open(dsn) for _ in range(5)))
        await stores[0].add_job("keep-me", "p", Schedule.cron("0 9 * * *"))
        for store in stores:
            await store.close()
        every = [number for number, _ in load_migrations("postgres")]
        assert sorted(await _version(dsn)) == every  # each migration applied once
        async with CronStore.open(dsn) as store:  # reopening keeps data and version
            assert [j.name for j in await store.list_jobs()] == ["keep-me"]
        assert sorted(await _version(dsn)) == every


async def test_upgrading_to_version_3_keeps_a_running_job_running_and_every_delivery() -> None:
    async with pg_schema() as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE starpod_cron_schema (version integer NOT NULL)")
            for number, script in load_migrations("postgres"):
                if number <= 2:
                    await conn.execute(script)
                    await conn.execute("INSERT INTO starpod_cron_schema VALUES ($1)", number)
            await conn.execute(
                "INSERT INTO jobs (id, name, prompt, schedule_kind, schedule_expr, enabled, "
                "delete_after_run, timezone, created_at, updated_at, next_run_at, max_retries, "
                "timeout_ms, session_mode, misfire_policy, run_count, running_run_id) VALUES "
                "('busy', 'busy', 'p', 'interval', '60000', true, false, 'UTC', 1, 1, 5, 3, "
                "1000, 'isolated', 'run_once', 1, 'r1'), "
                "('idle', 'idle', 'p', 'interval', '60000', true, false, 'UTC', 1, 1, 5, 3, "
                "1000, 'isolated', 'run_once', 0, NULL)"
            )
            await conn.execute(
                "INSERT INTO runs (id, job_id, job_name, trigger, scheduled_for, attempt, "
                "started_at, status, lease_owner, lease_expires_at) VALUES "
                "('r1', 'busy', 'busy', 'schedule', 5, 1, 5, 'running', 'x', 9999999999999)"
            )
            await conn.execute(
                "INSERT INTO deliveries (run_id, job_id, job_name, destination, payload, "
                "status, next_attempt_at, created_at) "
                "VALUES ('r0', 'busy', 'busy', 'tg:1', '{}', 'pending', 3, 3)"
            )
        finally:
            await conn.close()
        async with CronStore.open(dsn) as store:
            busy, idle = await store.get_job("busy"), await store.get_job("idle")
            assert busy is not None and busy.running_count == 1 and busy.running_run_id == "r1"
            assert idle is not None and idle.running_count == 0
            assert [c.job_id for c in await store.claim_due("me", 10, 30)] == ["idle"]
            (kept,) = await store.list_deliveries(0, None, 10)
            assert (kept.run_id, kept.destination) == ("r0", "tg:1")


async def test_a_newer_schema_is_refused_and_left_untouched() -> None:
    async with pg_schema() as dsn:
        async with CronStore.open(dsn) as store:
            await store.add_job("j", "p", Schedule.cron("0 9 * * *"))
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO starpod_cron_schema VALUES (99)")
        finally:
            await conn.close()
        with pytest.raises(SchemaVersionError, match=r"newer starpod-cron.*99"):
            await CronStore.open(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            assert [r[0] for r in await conn.fetch("SELECT name FROM jobs")] == ["j"]
        finally:
            await conn.close()


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    dsn = "postgresql://bob:s3cret-pw@127.0.0.1:1/jobs"  # nothing listens on port 1
    with pytest.raises(StoreUnavailable) as caught:
        await CronStore.open(dsn)
    message = str(caught.value)
    assert "cannot connect to PostgreSQL at postgresql://bob:***@127.0.0.1:1/jobs" in message
    assert "s3cret-pw" not in message and not re.search(r"Traceback", message)


async def test_a_search_path_naming_no_schema_is_a_clear_error() -> None:
    async with pg_schema() as dsn:
        missing = dsn.replace("search_path=t_", "search_path=gone_")
        with pytest.raises(StoreUnavailable, match="no schema to work in"):
            await CronStore.open(missing)


async def test_wake_ups_survive_a_dropped_listen_connection() -> None:
    """The server (or a proxy) drops the LISTEN connection: the store reconnects by itself and
    other nodes' changes wake it again."""
    async with pg_schema() as dsn, CronStore.open(dsn) as store, CronStore.open(dsn) as other:
        woken = asyncio.Event()
        store.on_change(woken.set)
        await other.add_job("first", "p", Schedule.cron("0 * * * *"))
        await asyncio.wait_for(woken.wait(), 2)
        admin = await asyncpg.connect(dsn)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN %' || current_schema() || '%' AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert killed >= 1
        for n in range(3):  # a change made while it reconnects may only wake it on reconnect
            woken.clear()
            await other.add_job(f"after-{n}", "p", Schedule.cron("0 * * * *"))
            await asyncio.wait_for(woken.wait(), 5)
