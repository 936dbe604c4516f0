"""The SQLite database file, synchronously: one connection opened (and migrated), its
transaction scripts run WHOLE (their awaits never suspend on SQLite: one ``send`` drives a
script to its end), other connections' commits and a deleted or replaced file noticed.

No event loop here: :class:`~.sqlite.SqliteDriver` calls a :class:`SqliteFile` on its own
worker thread, and a command that only reads (``jobs list``) calls one directly, without
loading asyncio.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ...errors import (
    DatabaseMissing,
    SchemaVersionError,
    StarpodCronError,
    StoreLost,
    StoreUnavailable,
)
from ..sqlfile import load_migrations, load_queries, parameters
from ..topics import Topic

if TYPE_CHECKING:
    from ..driver import Params, Row, Script

log = logging.getLogger("starpod_cron.store")
T = TypeVar("T")
Q = load_queries("sqlite")


def unavailable(exc: sqlite3.Error, path: str) -> StoreUnavailable:
    """An sqlite3 error as a message a user can act on."""
    text = str(exc)
    hints = {
        "file is not a database": f"{path} is not a SQLite database; point --db at a "
        "starpod-cron database or at a new file",
        "unable to open database file": f"cannot open {path}: check that its directory exists "
        "and that this user may write there",
        "attempt to write a readonly database": f"{path} is read-only: starpod-cron must write "
        "to it (and create its -wal and -shm files beside it)",
        "database is locked": f"{path} stayed locked by another process for 30 s",
        "database or disk is full": f"{path}: the database or disk is full",
        "disk I/O error": f"{path}: disk I/O error",
    }
    for needle, message in hints.items():
        if needle in text:
            return StoreUnavailable(message)
    return StoreUnavailable(f"{path}: database error: {text}")


def statements(script: str) -> Iterable[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf.strip()
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") for ln in buf.strip().splitlines()):
        raise ValueError(f"incomplete SQL statement in migration: {buf[:80]!r}")


def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a script whose awaits never suspend (SQLite's Tx), driven here."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a store script suspended on SQLite (it may await only its Tx)")


_POSITIONAL: dict[tuple[str, tuple[str, ...]], str] = {}


def positional(name: str, columns: Sequence[str]) -> str:
    """Query ``name`` with each ``:column`` numbered ``?N`` by its place in ``columns``, so
    executemany takes row tuples as they are (no dict per row)."""
    key = (name, tuple(columns))
    sql = _POSITIONAL.get(key)
    if sql is None:
        number = lambda c: f"?{columns.index(c) + 1}"  # noqa: E731
        sql = _POSITIONAL[key] = parameters(_sql(name), number)
    return sql


def _sql(name: str) -> str:
    sql = Q[name]
    assert sql is not None, name
    return sql


def _bind(params: Params | None) -> Params:
    if not params:
        return {}
    import json  # (loaded with the first query that has parameters)

    return {
        k: json.dumps(list(v)) if isinstance(v, list | tuple | set | frozenset) else v
        for k, v in params.items()
    }


class SqliteTx:
    """The :class:`~starpod_cron.store.driver.Tx` of SQLite (synchronous underneath)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.topics: set[Topic] = set()

    async def rows(self, name: str, params: Params | None = None) -> list[Row]:
        sql = Q[name]
        return [] if sql is None else self._conn.execute(sql, _bind(params)).fetchall()

    async def one(self, name: str, params: Params | None = None) -> Row | None:
        sql = Q[name]
        return None if sql is None else self._conn.execute(sql, _bind(params)).fetchone()

    async def value(self, name: str, params: Params | None = None) -> Any:
        row = await self.one(name, params)
        return None if row is None else row[0]

    async def execute(self, name: str, params: Params | None = None) -> int:
        sql = Q[name]
        return 0 if sql is None else int(self._conn.execute(sql, _bind(params)).rowcount)

    async def execute_many(
        self, name: str, rows: Sequence[Sequence[object]], columns: Sequence[str]
    ) -> int:
        if not rows:
            return 0
        return int(self._conn.executemany(positional(name, columns), rows).rowcount)

    async def pause(self) -> None:
        """Nothing: the script runs on the store's thread, not on the event loop."""

    def changed(self, *topics: Topic) -> None:
        self.topics.update(topics)


class SqliteFile:
    """One connection to a SQLite file (or ``:memory:``), used from one thread at a time."""

    def __init__(self, path: str, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        """``PRAGMA synchronous`` (``[store] synchronous``)."""
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._lost: str | None = None
        self._data_version = 0

    @property
    def on_disk(self) -> bool:
        """A file whose identity is watched (not ``:memory:`` or a ``file:`` URI)."""
        return self._identity is not None

    def open(self, create: bool) -> None:
        path = self.path
        on_disk = path != ":memory:" and not path.startswith("file:")
        if on_disk:
            if os.path.isdir(path):
                raise StoreUnavailable(f"{path} is a directory, not a database file")
            if not create and not os.path.exists(path):
                raise DatabaseMissing(
                    f"no database at {path} (one is created by `jobs add` or `serve`; "
                    "use --db to point at another)"
                )
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise unavailable(exc, path) from exc
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            migrate(conn, path)
            self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            conn.close()
            raise unavailable(exc, path) from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._identity = self._stat() if on_disk else None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def check_identity(self) -> None:
        """Refuse to go on with a database file that was deleted or replaced while open."""
        if self._lost is not None:
            raise StoreLost(self._lost)
        if self._identity is None:
            return
        if self._stat() != self._identity:
            self._lost = (
                f"the database file {self.path} was deleted or replaced while this process had "
                "it open; writes would be lost, so this process no longer writes to it. Stop "
                "it, restore the file (or accept a new one), and start again"
            )
            log.error("%s", self._lost)
            raise StoreLost(self._lost)

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StarpodCronError("the store is closed")
        return self._conn

    def write(self, script: Script[T]) -> tuple[T, frozenset[Topic]]:
        conn = self._require()
        self.check_identity()
        tx = SqliteTx(conn)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = run_to_end(script(tx))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise unavailable(exc, self.path) from exc
        return result, frozenset(tx.topics)

    def read(self, script: Script[T]) -> T:
        tx = SqliteTx(self._require())
        try:
            return run_to_end(script(tx))
        except sqlite3.Error as exc:
            raise unavailable(exc, self.path) from exc

    def poll(self) -> bool:
        """True when another connection committed since the last poll."""
        self.check_identity()
        version = int(self._require().execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    def ping(self) -> None:
        self.check_identity()
        self._require().execute(_sql("ping"))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def migrate(conn: sqlite3.Connection, path: str) -> None:
    migrations = load_migrations("sqlite")
    latest = migrations[-1][0]
    ((version,),) = conn.execute("PRAGMA user_version").fetchall()
    if version > latest:
        raise SchemaVersionError(
            f"{path} was written by a newer starpod-cron (schema version {version}; this "
            f"version understands up to {latest}). Upgrade starpod-cron to open it."
        )
    if version == latest:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        ((version,),) = conn.execute("PRAGMA user_version").fetchall()  # under the lock
        for number, script in migrations:
            if number <= version:
                continue
            for statement in statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            log.debug("migrated %s to schema version %d", path, number)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
