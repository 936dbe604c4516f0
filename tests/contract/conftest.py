"""Every store backend runs the same contract suite (SQLite and PostgreSQL: tests/pgserver.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from starpod_cron import CronStore, DeliveryPlanner, ManualClock, StoreSettings

Opener = Callable[[StoreSettings, ManualClock], Awaitable[CronStore]]


@pytest.fixture
def open_store(url: str) -> Opener:
    """A function opening another store object on the same backend database."""

    async def opener(settings: StoreSettings, clock: ManualClock) -> CronStore:
        return await CronStore.open(url, settings=settings, clock=clock)

    return opener


@pytest.fixture
def settings() -> StoreSettings:
    return StoreSettings()


@pytest.fixture
async def store(
    open_store: Opener, settings: StoreSettings, clock: ManualClock
) -> AsyncIterator[CronStore]:
    s = await open_store(settings, clock)
    yield s
    await s.close()


Reopen = Callable[..., Awaitable[CronStore]]


@pytest.fixture
async def reopen(url: str, settings: StoreSettings, clock: ManualClock) -> AsyncIterator[Reopen]:
    """Open another store object on the same database with planners handed over at open:
    ``await reopen(delivery_planner=..., start_planner=...)`` (closed after the test)."""
    opened: list[CronStore] = []

    async def opener(
        *,
        delivery_planner: DeliveryPlanner | None = None,
        start_planner: DeliveryPlanner | None = None,
    ) -> CronStore:
        s = await CronStore.open(
            url,
            settings=settings,
            clock=clock,
            delivery_planner=delivery_planner,
            start_planner=start_planner,
        )
        opened.append(s)
        return s

    yield opener
    for s in opened:
        await s.close()
