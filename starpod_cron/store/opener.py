"""Which dialect a store URL means, connecting its driver, and the opener that
``CronStore.open`` returns. PostgreSQL's dialect is imported by name, on use (it needs asyncpg,
an optional dependency); this module never imports the store."""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..settings import StoreSettings
    from .driver import Driver, Script

SUPPORTED = "a file path, sqlite:///path, or postgresql://user@host/db"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class _Closable(Protocol):
    async def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)
T = TypeVar("T")


def parse_url(url: str) -> tuple[str, str]:
    """``(dialect, target)``: ``("sqlite", path)`` or ``("postgresql", dsn)``.

    ``sqlite:///jobs.db`` is the relative path ``jobs.db`` and ``sqlite:////var/jobs.db`` the
    absolute one (SQLAlchemy's convention); anything without a scheme is a file path.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"the store URL is empty: give {SUPPORTED}")
    if url.startswith("sqlite:///"):
        return "sqlite", url.removeprefix("sqlite:///")
    if url.startswith("sqlite:") and not url.startswith("sqlite://"):
        return "sqlite", url.removeprefix("sqlite:")
    match = _SCHEME.match(url)
    if match is None:
        return "sqlite", url
    scheme = match.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        return "postgresql", "postgresql://" + url[match.end() :]
    raise ConfigError(f"unsupported store URL scheme {scheme!r}: give {SUPPORTED}")


async def connect_driver(url: str, settings: StoreSettings, *, create: bool) -> Driver:
    """The dialect driver of ``url``, connected (and the database migrated)."""
    dialect, target = parse_url(url)
    if dialect == "sqlite":
        from .dialects.sqlite import SqliteDriver

        return await SqliteDriver.connect(target, settings, create=create)
    try:
        module = importlib.import_module("starpod_cron.store.dialects.postgres")
    except ImportError as exc:
        raise ConfigError(
            f"the {dialect} store needs a package that is not installed ({exc.name}): "
            "pip install 'starpod-cron[postgres]'"
        ) from exc
    driver: Driver = await module.PostgresDriver.connect(target, create=create)
    return driver


def read_once(url: str, settings: StoreSettings, script: Script[T]) -> T:
    """The result of the read-only ``script`` on the store at ``url``, opened for it and
    closed (a missing SQLite file is :class:`~starpod_cron.errors.DatabaseMissing`). On
    SQLite it runs in this thread, with no event loop (a command that only reads starts
    without asyncio); on PostgreSQL through its driver, in an event loop of its own."""
    dialect, target = parse_url(url)
    if dialect == "sqlite":
        from .dialects.sqlitefile import SqliteFile

        file = SqliteFile(target, settings.synchronous)
        file.open(create=False)
        try:
            return file.read(script)
        finally:
            file.close()
    from ..runner import run

    async def reading() -> T:
        driver = await connect_driver(url, settings, create=False)
        try:
            return await driver.read(script)
        finally:
            await driver.close()

    return run(reading())


class StoreOpener(Generic[S]):
    """What ``CronStore.open`` returns: ``await`` it, or use it as ``async with`` (the store
    is closed on exit)."""

    def __init__(self, opening: Callable[[], Awaitable[S]]) -> None:
        self._opening = opening
        self._store: S | None = None

    async def _open(self) -> S:
        return await self._opening()

    def __await__(self) -> Generator[Any, None, S]:
        return self._open().__await__()

    async def __aenter__(self) -> S:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()
