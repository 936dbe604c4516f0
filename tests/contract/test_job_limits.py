"""Store contract: ``add_jobs(max_jobs_per_owner=)`` counts the owner's jobs inside the adding
transaction, so no interleaving of concurrent adds (one store or several) passes the limit."""

from __future__ import annotations

import asyncio

import pytest

from starpod_cron import CronStore, JobSpec, ManualClock, Schedule, StoreSettings
from starpod_cron.errors import LimitExceeded
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
