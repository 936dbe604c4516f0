from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from starpod_cron import CronStore, ManualClock, StoreSettings
from tests.backends import BACKENDS, store_url
from tests.pgserver import (  # noqa: F401 (hooks: the session's PostgreSQL)
    pytest_configure,
    pytest_configure_node,
    pytest_unconfigure,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """The spans starpod_cron.tracing records while the test runs (an in-memory exporter on
    a provider of its own, handed back at the end). The SDK is imported only by tests using it."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from starpod_cron import tracing

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.use(provider)
    yield spans
    tracing.use(None)


async def until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` (real time) until it is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.005)


T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 10.0, what: str = "", every: float = 0.02
) -> T:
    """Await ``check()`` (real time) until it returns something truthy, and return that; fail
    the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(every)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "jobs.db")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using a store runs once per backend (tests/pgserver.py: which PostgreSQL)."""
    return str(request.param)


@pytest.fixture
async def url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """Where this test's store lives: a SQLite file or a fresh PostgreSQL schema."""
    async with store_url(backend, str(tmp_path)) as where:
        yield where


@pytest.fixture
async def store(url: str, clock: ManualClock) -> AsyncIterator[CronStore]:
    s = await CronStore.open(
        url, clock=clock, settings=StoreSettings(retry_backoff_secs=(30, 60, 300, 900, 3600))
    )
    yield s
    await s.close()
