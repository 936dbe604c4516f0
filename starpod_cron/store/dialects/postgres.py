"""The PostgreSQL dialect (asyncpg): several schedulers and gateways, on one machine or many,
share one database, and each occurrence is still claimed and recorded once.

How the guarantees hold under PostgreSQL's concurrency (the SQL is in ``sql/postgres.sql``):

- **Claims** lock the due job rows with ``FOR UPDATE SKIP LOCKED``: two claimers get disjoint
  jobs, neither waits for the other. The unique index on runs (job, occurrence, attempt)
  makes a duplicate impossible anyway: a claim whose run is already recorded drops it.
- **Completions, renewals and recovery** lock the runs (then their jobs) they change, always in
  id order, so writers of the same rows wait for each other but never deadlock.
- **Deliveries** take their ids under a transaction-scoped lock held to commit, so they become
  visible in id order and event readers tailing by id never skip one.
- **Wake-ups** travel by ``LISTEN/NOTIFY`` (a hint: the tables stay the truth), sent inside
  the transaction for every topic its script changed, on a listener connection that
  reconnects by itself (``pglisten.py``).

Transactions that lose a deadlock or a serialization race are retried. Every script runs on
the event loop; a long one yields every ``SLICE_SECS`` (``Tx.pause``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ...errors import DatabaseMissing, SchemaVersionError, StarpodCronError, StoreUnavailable
from ...logs import register_secret
from ..driver import Background, Params, Row, Script, Tx
from ..pgerrors import RETRIED, is_connection_error, unavailable, why
from ..pglisten import Listener
from ..sqlfile import load_migrations, load_queries, parameter_names, parameters
from ..types import Topic

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger("starpod_cron.store")
T = TypeVar("T")
SLICE_SECS = 0.005  # a script yields at least this often (a sleeper waits ~3 slices)
CHUNK_ROWS = 1000  # rows per set-based statement; a chunk encodes well under a slice
ATTEMPTS = 5
_TARGET = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE)\s+(\w+)", re.IGNORECASE | re.MULTILINE)


def safe_dsn(dsn: str) -> str:
    """``dsn`` without its password, for messages."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


class Query:
    """A named query compiled for asyncpg: ``:name`` -> ``$n`` (or, for a bulk statement, its
    ``unnest(:rows)`` left to be typed per call)."""

    def __init__(self, name: str, sql: str | None) -> None:
        self.name = name
        self.bulk = sql is not None and ":rows" in sql
        self.names = [] if sql is None or self.bulk else parameter_names(sql)
        self.raw = sql
        self.sql = None if sql is None or self.bulk else parameters(sql, self._number)
        match = None if sql is None else _TARGET.search(sql)
        self.table = match.group(1) if match else None

    def _number(self, name: str) -> str:
        return f"${self.names.index(name) + 1}"

    def args(self, params: Params | None) -> list[object]:
        if not self.names:
            return []
        if params is None:
            raise KeyError(f"{self.name} needs parameters {self.names}")
        return [params[n] for n in self.names]


Q = {name: Query(name, sql) for name, sql in load_queries("postgres").items()}


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3`` (0 for one without)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgTx:
    """The :class:`~starpod_cron.store.driver.Tx` of one PostgreSQL connection."""

    def __init__(self, conn: Conn, driver: PostgresDriver) -> None:
        self._conn = conn
        self._driver = driver
        self._since = time.perf_counter()
        self.topics: set[Topic] = set()

    async def rows(self, name: str, params: Params | None = None) -> list[Row]:
        q = Q[name]
        if q.sql is None:
            return []
        return list[Row](await self._conn.fetch(q.sql, *q.args(params)))

    async def one(self, name: str, params: Params | None = None) -> Row | None:
        q = Q[name]
        if q.sql is None:
            return None
        row: Row | None = await self._conn.fetchrow(q.sql, *q.args(params))
        return row

    async def value(self, name: str, params: Params | None = None) -> Any:
        q = Q[name]
        return None if q.sql is None else await self._conn.fetchval(q.sql, *q.args(params))

    async def execute(self, name: str, params: Params | None = None) -> int:
        q = Q[name]
        if q.sql is None:
            return 0
        return _count(await self._conn.execute(q.sql, *q.args(params)))

    async def execute_many(
        self, name: str, rows: Sequence[Sequence[object]], columns: Sequence[str]
    ) -> int:
        """One set-based statement per CHUNK_ROWS rows (one typed array per column), with a
        yield to the event loop between chunks."""
        if not rows:
            return 0
        sql = self._driver.bulk_sql(Q[name], columns)
        changed = 0
        for start in range(0, len(rows), CHUNK_ROWS):
            if start:
                await asyncio.sleep(0)
            chunk = rows[start : start + CHUNK_ROWS]
            arrays = [list(column) for column in zip(*chunk, strict=True)]
            changed += _count(await self._conn.execute(sql, *arrays))
        return changed

    async def pause(self) -> None:
        if time.perf_counter() - self._since >= SLICE_SECS:
            await asyncio.sleep(0)
            self._since = time.perf_counter()

    def changed(self, *topics: Topic) -> None:
        self.topics.update(topics)


class PostgresDriver:
    """Runs scripts on a PostgreSQL pool; any number of processes and machines may share it."""

    def __init__(
        self, pool: asyncpg.Pool, dsn: str, schema: str, types: dict[tuple[str, str], str]
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self.url = safe_dsn(dsn)
        self.schema = schema
        self.channel = f"starpod_cron.{schema}"
        self._types = types
        self._bulk: dict[tuple[str, tuple[str, ...]], str] = {}
        self._closed = False
        self._background = Background("starpod-cron:pg")
        self._watching = False

    @classmethod
    async def connect(cls, dsn: str, *, create: bool) -> PostgresDriver:
        register_secret(urlsplit(dsn).password)
        where = safe_dsn(dsn)
        try:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, command_timeout=60)
        except Exception as exc:
            if is_connection_error(exc):
                raise StoreUnavailable(
                    f"cannot connect to PostgreSQL at {where}: {why(exc)}"
                ) from None
            if isinstance(exc, asyncpg.PostgresError):
                raise StoreUnavailable(f"PostgreSQL at {where} refused: {why(exc)}") from None
            raise
        try:
            async with pool.acquire() as conn:
                schema = await conn.fetchval(_sql("current_schema"))
                if schema is None:
                    raise StoreUnavailable(
                        f"PostgreSQL at {where}: no schema to work in (the search_path names "
                        "no existing schema); create it or fix the search_path"
                    )
                await migrate(conn, where, create=create)
                rows = await conn.fetch(_sql("column_types"))
        except Exception as exc:
            if is_connection_error(exc):
                pool.terminate()
                raise unavailable(exc, where) from None
            await pool.close()
            raise
        except BaseException:
            pool.terminate()
            raise
        types = {(str(r[0]), str(r[1])): str(r[2]) for r in rows}
        return cls(pool, dsn, str(schema), types)

    def bulk_sql(self, query: Query, columns: Sequence[str]) -> str:
        """``query`` with ``unnest(:rows)`` as one array per column, typed as the columns of
        the table the statement writes (the catalog read at connect); a value the table has no
        column for (``add_spend``'s day and month starts) is an instant if named ``*_ms``:
        ``bigint``, the type of every instant in the schema."""
        key = (query.name, tuple(columns))
        sql = self._bulk.get(key)
        if sql is None:
            if not query.bulk or query.raw is None or query.table is None:
                raise ValueError(f"{query.name} is not a bulk statement (unnest(:rows))")
            table = query.table
            arrays = ", ".join(
                f"${i}::{self._column_type(table, c)}[]" for i, c in enumerate(columns, 1)
            )
            sql = self._bulk[key] = query.raw.replace(":rows", arrays)
        return sql

    def _column_type(self, table: str, column: str) -> str:
        found = self._types.get((table, column))
        if found is None:
            if not column.endswith("_ms"):
                raise ValueError(f"{table} has no column {column} to type a bulk value by")
            return "bigint"
        return found

    def _check_open(self) -> None:
        if self._closed:
            raise StarpodCronError("the store is closed")

    async def _transaction(self, script: Script[T]) -> tuple[T, frozenset[Topic]]:
        delay = 0.01
        for attempt in range(1, ATTEMPTS + 1):
            try:
                # read committed whatever the server's default: every script is written for
                # it (explicit row and advisory locks, then fresh reads)
                async with (
                    self._pool.acquire() as conn,
                    conn.transaction(isolation="read_committed"),
                ):
                    tx = PgTx(conn, self)
                    result = await script(tx)
                    for topic in sorted(tx.topics):  # delivered when the transaction commits
                        await conn.execute(_sql("notify"), self.channel, topic.value)
                    return result, frozenset(tx.topics)
            except RETRIED as exc:
                log.warning("a transaction on %s lost a race (%s); retrying", self.url, why(exc))
                if attempt == ATTEMPTS:
                    raise StoreUnavailable(
                        f"PostgreSQL kept refusing a transaction: {exc}"
                    ) from exc
                await asyncio.sleep(delay * random.uniform(1, 2))
                delay *= 2
            except Exception as exc:
                if is_connection_error(exc):
                    await self._reset()
                    raise unavailable(exc, self.url) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _reset(self) -> None:
        """After a connection error, replace every pooled connection on its next use: one reset
        (a failover, a pooler restart) usually ends them all, idle ones included."""
        await self._pool.expire_connections()

    async def write(self, script: Script[T]) -> tuple[T, frozenset[Topic]]:
        """Shielded from the caller's cancellation (see :class:`.Background`)."""
        self._check_open()
        return await self._background.shielded(asyncio.ensure_future(self._transaction(script)))

    async def read(self, script: Script[T]) -> T:
        """Retried once on new connections if its connection was reset (not when the server
        cannot be reached)."""
        self._check_open()
        for attempt in (1, 2):
            try:
                async with self._pool.acquire() as conn:
                    return await script(PgTx(conn, self))
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                await self._reset()
                if attempt == 2 or self._closed or isinstance(exc, OSError | TimeoutError):
                    raise unavailable(exc, self.url) from None  # unreachable: no second wait
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> None:
        async def probe(tx: Tx) -> None:
            await tx.value("ping")

        await self.read(probe)

    def watch(self, signal: Callable[..., None]) -> None:
        if self._watching or self._closed:
            return
        self._watching = True
        listener = Listener(self._dsn, self.channel, self.url, signal)
        self._background.tasks.keep(listener.run, "listen")  # restarted if it dies

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._background.stop()
        try:
            await asyncio.wait_for(self._pool.close(), 10)
        except TimeoutError:
            log.error("closing the PostgreSQL pool took over 10 s; terminating its connections")
            self._pool.terminate()


def _sql(name: str) -> str:
    sql = Q[name].sql
    assert sql is not None, name
    return sql


async def migrate(conn: Conn, where: str, *, create: bool) -> None:
    migrations = load_migrations("postgres")
    latest = migrations[-1][0]
    async with conn.transaction():
        await conn.execute(_sql("migrate_lock"))
        await conn.execute(_sql("schema_table"))
        version = await conn.fetchval(_sql("schema_version"))
        if version > latest:
            raise SchemaVersionError(
                f"{where} was written by a newer starpod-cron (schema version {version}; this "
                f"version understands up to {latest}). Upgrade starpod-cron to open it."
            )
        if version == 0 and not create:
            raise DatabaseMissing(
                f"no starpod-cron tables at {where} (they are created by `jobs add` or `serve`)"
            )
        for number, script in migrations:
            if number <= version:
                continue
            await conn.execute(script)
            await conn.execute(_sql("record_version"), number)
            log.debug("migrated %s to schema version %d", where, number)
