"""The SQLite dialect: one connection per store object (a :class:`~.sqlitefile.SqliteFile`),
WAL journal, every write one ``BEGIN IMMEDIATE`` transaction, so claims are atomic across
processes sharing the file.

A script runs WHOLE on the store's own worker thread (a single-worker ``ThreadPoolExecutor``):
the Tx methods are ``async def`` but never suspend, so the thread drives the script's
coroutine to its end with one ``send`` (and refuses one that suspends). One thread hop per
transaction instead of one per statement, row planning off the event loop, and a thread the
interpreter reclaims at exit even when ``close()`` was forgotten.

Other processes' commits are noticed within about 250 ms through ``PRAGMA data_version``; a
database file deleted or replaced while open is noticed too, and the store then refuses to
write (writes would go to a file nobody will ever open again).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ...errors import StarpodCronError, StoreUnavailable
from ...settings import StoreSettings
from ..driver import Background, Script
from ..topics import Topic
from .sqlitefile import SqliteFile, unavailable

log = logging.getLogger("starpod_cron.store")
T = TypeVar("T")
WATCH_INTERVAL_SECS = 0.25


class SqliteDriver:
    """Runs scripts on a SQLite file. Safe to share the file between processes."""

    def __init__(self, path: str, settings: StoreSettings) -> None:
        self.path = path
        self.url = path
        self.settings = settings
        self.file = SqliteFile(path, settings.synchronous)
        """The connection, used only on the worker thread."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="starpod-cron-sqlite")
        self._background = Background("starpod-cron:sqlite")
        self._watching = False
        self._closed = False

    @classmethod
    async def connect(cls, path: str, settings: StoreSettings, *, create: bool) -> SqliteDriver:
        driver = cls(path, settings)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(driver._pool, driver.file.open, create)
        except BaseException:
            driver._pool.shutdown(wait=False)
            raise
        return driver

    # ------------------------------------------------------------- the event loop side
    def _check_open(self) -> None:
        if self._closed:
            raise StarpodCronError("the store is closed")

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def write(self, script: Script[T]) -> tuple[T, frozenset[Topic]]:
        """Shielded from the caller's cancellation (see :class:`.Background`)."""
        self._check_open()
        future = asyncio.get_running_loop().run_in_executor(self._pool, self.file.write, script)
        return await self._background.shielded(future)

    async def read(self, script: Script[T]) -> T:
        return await self._on_thread(self.file.read, script)

    async def ping(self) -> None:
        try:
            await self._on_thread(self.file.ping)
        except sqlite3.Error as exc:
            raise unavailable(exc, self.path) from exc

    def watch(self, signal: Callable[..., None]) -> None:
        if self._watching or self._closed or not self.file.on_disk:
            return
        self._watching = True
        self._background.tasks.keep(lambda: self._watch(signal), "watch")  # restarted if it dies

    async def _watch(self, signal: Callable[..., None]) -> None:
        """Notice commits by other processes (and a vanished file) within a quarter second."""
        reported = False
        while not self._closed:
            await asyncio.sleep(WATCH_INTERVAL_SECS)
            try:
                changed = await self._on_thread(self.file.poll)
            except StoreUnavailable as exc:
                if not reported:
                    log.error("%s", exc)
                    reported = True
                continue
            except sqlite3.Error as exc:
                log.error("%s", unavailable(exc, self.path))
                continue
            except StarpodCronError:
                return  # closed
            if changed:
                signal(Topic.JOBS, Topic.DELIVERIES)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._background.stop()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self.file.close)
        self._pool.shutdown(wait=False)
