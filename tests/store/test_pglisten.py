"""The PostgreSQL store's LISTEN connection, terminated by the server: it is re-established,
its listeners are woken at once (a notification sent meanwhile was missed), notifications
from other nodes reach it again, and a read on a reset pool connection is tried again."""

from __future__ import annotations

import asyncio

import asyncpg

from starpod_cron import CronStore, Schedule, Topic
from tests.backends import needs_postgres, pg_dsn, pg_schema
from tests.conftest import eventually
from tests.pgfaults import named, terminate

pytestmark = needs_postgres


async def _listening(admin: asyncpg.Connection[asyncpg.Record], app: str) -> int:
    count = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
        "AND query LIKE 'LISTEN%'",
        app,
    )
    return int(count)


async def test_a_terminated_listen_connection_is_reopened_and_wakes_its_listeners() -> None:
    async with pg_schema() as dsn:
        url, app = named(dsn)
        admin = await asyncpg.connect(pg_dsn())
        try:
            async with CronStore.open(url) as store, CronStore.open(dsn) as other:
                woken = asyncio.Event()
                store.on_change(woken.set, Topic.JOBS)
                await eventually(lambda: _listening(admin, app), what="the LISTEN connection")
                for _ in range(3):
                    woken.clear()
                    assert await terminate(admin, app) >= 1
                    # woken without any NOTIFY: whatever was sent while it was down was missed
                    await asyncio.wait_for(woken.wait(), 5)
                    await eventually(lambda: _listening(admin, app), what="a new LISTEN")
                    woken.clear()
                    await other.add_job(
                        f"j{id(woken)}-{_}", "p", Schedule.interval(every_ms=60_000)
                    )
                    await asyncio.wait_for(woken.wait(), 5)  # another node's NOTIFY arrives
                # the store itself goes on: a read on a reset connection is tried again
                for _ in range(3):
                    await terminate(admin, app)
                    assert len(await store.list_jobs()) == 3
        finally:
            await admin.close()
