"""The seam between the store's operations and a database dialect.

Every operation of :class:`~starpod_cron.store.CronStore` is ONE transaction script, written
once: an ``async def script(tx)`` that names its queries (blocks of ``sql/*.sql``) and passes
their parameters by name. A :class:`Driver` (``dialects/sqlite.py``, ``dialects/postgres.py``)
runs a script in one transaction of its dialect and resolves each name to its dialect's SQL.

What a script changed is recorded with :meth:`Tx.changed`; the driver tells other nodes inside
the transaction (PostgreSQL ``NOTIFY``) and the store tells this process's listeners after the
commit (``core.StoreCore._write``), so every dialect wakes the same listeners for the same
writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from ..tasks import TaskSet
from .topics import Topic

T = TypeVar("T")


class Row(Protocol):
    """A result row: indexable and iterable (sqlite3 tuples, asyncpg records)."""

    def __getitem__(self, index: int) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


Params = Mapping[str, object]


class Tx(Protocol):
    """One transaction (or, for a read, one connection) of a dialect."""

    async def rows(self, name: str, params: Params | None = None) -> list[Row]:
        """The rows of the query ``name``. A list or tuple parameter is a list of values (a
        JSON array for SQLite's ``json_each``, an array for PostgreSQL)."""

    async def one(self, name: str, params: Params | None = None) -> Row | None:
        """The first row of the query ``name``, or None."""

    async def value(self, name: str, params: Params | None = None) -> Any:
        """The first column of the first row of ``name``, or None."""

    async def execute(self, name: str, params: Params | None = None) -> int:
        """Run the statement ``name``; how many rows it changed."""

    async def execute_many(
        self, name: str, rows: Sequence[Sequence[object]], columns: Sequence[str]
    ) -> int:
        """Run the bulk statement ``name`` for every row (tuples whose values are, in order,
        the parameters ``columns``); how many rows it changed. Nothing for no rows."""

    async def pause(self) -> None:
        """Let the event loop run if this script has held it for a while (a long planning
        loop on PostgreSQL); nothing where scripts run off the loop (SQLite's thread)."""

    def changed(self, *topics: Topic) -> None:
        """Record that this transaction changed what ``topics`` are about: after the commit,
        listeners of those topics are woken on every node."""


Script = Callable[[Tx], Coroutine[Any, Any, T]]


class Driver(Protocol):
    """A database dialect: connection(s), transactions, change watching."""

    url: str
    """Where the store is, without secrets (for messages)."""

    async def write(self, script: Script[T]) -> tuple[T, frozenset[Topic]]:
        """Run ``script`` in ONE transaction, committed when this returns (also when the
        caller is cancelled meanwhile); its result and the topics it changed."""

    async def read(self, script: Script[T]) -> T:
        """Run the read-only ``script`` (no transaction needed)."""

    def watch(self, signal: Callable[..., None]) -> None:
        """Start calling ``signal(*topics)`` for changes committed by other processes (called
        once, when the first listener subscribes)."""

    async def ping(self) -> None:
        """StoreUnavailable if the database cannot be used now."""

    async def close(self) -> None:
        """Stop watching, wait for writes in flight, release the database. Idempotent."""


class Background:
    """A driver's work that outlives a call: its watcher task (a :class:`TaskSet`) and its
    writes in flight, each shielded from its caller's cancellation (it still commits or
    rolls back, and its caller's outcome is its own, so it is a future, not a task of the
    set); :meth:`stop` ends the one and waits for the others."""

    def __init__(self, prefix: str) -> None:
        self.tasks = TaskSet(prefix)
        self._writes: set[asyncio.Future[Any]] = set()

    async def shielded(self, future: asyncio.Future[T]) -> T:
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)
        return await asyncio.shield(future)

    async def stop(self) -> None:
        await self.tasks.stop()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
