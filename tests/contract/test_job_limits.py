"""Store contract: ``add_jobs(max_jobs_per_owner=)`` counts the owner's jobs inside the adding
transaction, so no interleaving of concurrent adds (one store or several) passes the limit."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from starpod_cron import CronStore, JobSpec, ManualClock, Schedule, StoreSettings
from starpod_cron.errors import LimitExceeded
from tests.backends import needs_postgres, pg_schema
from tests.contract.conftest import Opener

HOURLY = Schedule.interval(3_600_000)


def spec(name: str, user: str | None = "alice") -> JobSpec:
    return JobSpec(name, "p", HOURLY, user_id=user)


async def test_forty_concurrent_adds_with_a_limit_of_five_store_exactly_five(
    store: CronStore, open_store: Opener, settings: StoreSettings, clock: ManualClock
) -> None:
    other = await open_store(settings, clock)  # a second node on the same database
    try:
        stores = [store, other]
        results = await asyncio.gather(
            *(stores[i % 2].add_jobs([spec(f"job-{i}")], max_jobs_per_owner=5) for i in range(40)),
            return_exceptions=True,
        )
    finally:
        await other.close()
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 35, refused
    assert all(isinstance(r, LimitExceeded) for r in refused), refused
    assert all("[gateway] max_jobs_per_user" in str(r) for r in refused)
    assert len(await store.list_jobs_for_user("alice")) == 5


def with_server_setting(dsn: str, key: str, value: str) -> str:
    """``dsn`` with a server setting in its query (asyncpg sends unknown keys to the server)."""
    parts = urlsplit(dsn)
    query = [*parse_qsl(parts.query), (key, value)]
    return urlunsplit(parts._replace(query=urlencode(query)))


@needs_postgres
async def test_the_limit_holds_when_the_database_defaults_to_repeatable_read(
    settings: StoreSettings, clock: ManualClock
) -> None:
    """A server (or DSN) whose default isolation is repeatable read: the store's transactions
    are still read committed, so the count after the owner's lock sees every committed add."""
    async with pg_schema() as dsn:
        url = with_server_setting(dsn, "default_transaction_isolation", "repeatable read")
        stores = [await CronStore.open(url, settings=settings, clock=clock) for _ in range(2)]
        try:
            results = await asyncio.gather(
                *(
                    stores[i % 2].add_jobs([spec(f"job-{i}")], max_jobs_per_owner=5)
                    for i in range(40)
                ),
                return_exceptions=True,
            )
            assert len(await stores[0].list_jobs_for_user("alice")) == 5
        finally:
            for s in stores:
                await s.close()
    assert all(isinstance(r, LimitExceeded) for r in results if isinstance(r, BaseException))


async def test_the_limit_counts_what_the_owner_has_and_a_whole_batch(store: CronStore) -> None:
    await store.add_jobs([spec(f"a{i}") for i in range(3)], max_jobs_per_owner=5)
    with pytest.raises(LimitExceeded, match="you already have 3 jobs and may have at most 5"):
        await store.add_jobs([spec("b1"), spec("b2"), spec("b3")], max_jobs_per_owner=5)
    assert len(await store.list_jobs_for_user("alice")) == 3  # nothing of the batch written
    await store.add_jobs([spec("b1"), spec("b2")], max_jobs_per_owner=5)
    with pytest.raises(LimitExceeded):
        await store.add_jobs([spec("c1")], max_jobs_per_owner=5)
    # other owners, agent-level jobs and unlimited adds are not held back by alice's count
    await store.add_jobs([spec("c1", "bob"), spec("c1", None)], max_jobs_per_owner=5)
    await store.add_jobs([spec("c1")])
    await store.add_jobs([spec("c2")], max_jobs_per_owner=0)
    assert len(await store.list_jobs_for_user("alice")) == 7
    assert len(await store.list_jobs_for_user("bob")) == 1
