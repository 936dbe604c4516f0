"""Every store backend runs the same contract suite. Add a backend to BACKENDS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from starpod_cron import CronStore, ManualClock, StoreSettings

Opener = Callable[[StoreSettings, ManualClock], Awaitable[CronStore]]


@pytest.fixture(params=["sqlite"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """A function opening another store object on the same backend database."""
    if request.param == "sqlite":
        path = str(tmp_path / "contract.db")

        async def opener(settings: StoreSettings, clock: ManualClock) -> CronStore:
            return await CronStore.open(path, settings=settings, clock=clock)

        return opener
    raise AssertionError(request.param)  # pragma: no cover


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
