"""The PostgreSQL backend (asyncpg): several schedulers and gateways, on one machine or many,
share one database, and each occurrence is still claimed and recorded once.

How the guarantees hold under PostgreSQL's concurrency (not a single writer, as in SQLite):

- **Claims** lock the due job rows with ``FOR UPDATE SKIP LOCKED``: two claimers get disjoint
  jobs, neither waits for the other, and the rows they lock are the latest committed versions.
  The unique index on runs (job, occurrence, attempt) makes a duplicate impossible anyway.
- **Completions, renewals and recovery** lock the runs (then their jobs) they change, always in
  id order, so writers of the same rows wait for each other but never deadlock (a deadlock
  costs PostgreSQL's ``deadlock_timeout``, a second); a completion is applied only by the
  run's current lease holder (fencing).
- **Deliveries** take their ids under a transaction-scoped lock held to commit, so they become
  visible in id order and event readers tailing by id never skip one; a destination is
  claimed by one sender at a time, in order.
- **Wake-ups** travel by ``LISTEN/NOTIFY`` (a hint: the tables stay the truth, a missed
  notification costs latency, not correctness), on a listener connection that reconnects by
  itself.

Transactions that lose a deadlock or a serialization race are retried. Time comes from the
store's clock on each node: keep the nodes' clocks in sync (NTP), as for any scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .. import owner as owners
from ..clock import Clock
from ..errors import (
    DatabaseMissing,
    DuplicateJobName,
    InvalidInput,
    JobNotFound,
    SchemaVersionError,
    StarpodCronError,
    StoreUnavailable,
)
from ..logs import register_secret
from ..models import (
    CronJob,
    CronRun,
    Delivery,
    DeliveryStatus,
    DestinationRefusal,
    JobUpdate,
    Lease,
    LoginSession,
    NodeInfo,
    RunStats,
    RunStatus,
    SessionMessage,
)
from ..settings import StoreSettings
from ..timeutil import check_zone, from_ms, to_ms
from . import logins, planning
from .base import CronStore
from .common import (
    MAX_ID,
    NODE_MEMORY_MS,
    ClaimBatch,
    FinishBatch,
    Note,
    bounded,
    check_completions,
    check_destination,
    check_lease,
    check_owner_limit,
    duplicate_name,
    interrupt_expired,
    lease_from_row,
    lease_since,
    limited_owners,
    manual_run,
    may_take_lease,
    new_records,
    node_from_row,
    node_params,
    outcome_params,
    refusal_delay_ms,
    refusal_from_row,
    start_rows,
    write_notes,
)
from .pgerrors import RETRIED, is_connection_error, unavailable, why
from .pglisten import Listener
from .records import (
    DELIVERY_COLUMNS,
    JOB_COLUMNS,
    JOB_RUNTIME_COLUMNS,
    JOB_STATE_COLUMNS,
    RUN_COLUMNS,
    RUN_RESULT_COLUMNS,
    JobRecord,
    RunRecord,
    delivery_from_row,
)
from .sqlfile import load_migrations, load_queries
from .types import (
    Claim,
    Completion,
    DeliveryOutcome,
    DeliveryPlanner,
    JobSpec,
    RecoveryReport,
    RunFinished,
    Topic,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger("starpod_cron.store")
T = TypeVar("T")


def _assign(columns: Sequence[str]) -> str:
    return ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, 1))


def _placeholders(count: int) -> str:
    return ", ".join(f"${i}" for i in range(1, count + 1))


Q = load_queries(
    "postgres.sql",
    job_columns=", ".join(JOB_COLUMNS),
    job_placeholders=_placeholders(len(JOB_COLUMNS)),
    job_state_assignments=_assign(JOB_STATE_COLUMNS),
    job_state_id=str(len(JOB_STATE_COLUMNS) + 1),
    run_columns=", ".join(RUN_COLUMNS),
    run_placeholders=_placeholders(len(RUN_COLUMNS)),
    job_runtime_assignments=_assign(JOB_RUNTIME_COLUMNS),
    job_runtime_id=str(len(JOB_RUNTIME_COLUMNS) + 1),
    run_result_assignments=_assign(RUN_RESULT_COLUMNS),
    run_result_id=str(len(RUN_RESULT_COLUMNS) + 1),
    delivery_columns=", ".join(DELIVERY_COLUMNS),
    delivery_columns_qualified=", ".join(f"deliveries.{c}" for c in DELIVERY_COLUMNS),
)
# PostgreSQL types of the columns written in bulk (unnest of one array per column).
TYPES = {
    "id": "text",
    "job_id": "text",
    "job_name": "text",
    "trigger": "text",
    "scheduled_for": "bigint",
    "attempt": "integer",
    "started_at": "bigint",
    "completed_at": "bigint",
    "status": "text",
    "lease_owner": "text",
    "lease_expires_at": "bigint",
    "result_summary": "text",
    "error": "text",
    "session_id": "text",
    "duration_ms": "bigint",
    "prompt_tokens": "integer",
    "completion_tokens": "integer",
    "lease_renewed_at": "bigint",
    "enabled": "boolean",
    "updated_at": "bigint",
    "last_run_at": "bigint",
    "next_run_at": "bigint",
    "retry_count": "integer",
    "last_error": "text",
    "retry_at": "bigint",
    "retry_scheduled_for": "bigint",
    "retry_attempt": "integer",
    "last_status": "text",
    "run_count": "integer",
    "running_run_id": "text",
    "fire_offset_ms": "bigint",
    "running_count": "integer",
    "event": "text",
    "run_id": "text",
    "destination": "text",
    "payload": "text",
    "next_attempt_at": "bigint",
    "created_at": "bigint",
}


def _unnest(columns: Sequence[str]) -> str:
    arrays = ", ".join(f"${i}::{TYPES[c]}[]" for i, c in enumerate(columns, 1))
    return f"unnest({arrays}) AS v({', '.join(columns)})"


def _bulk_update(table: str, columns: Sequence[str]) -> str:
    """One UPDATE for many rows: ``columns`` then ``id``, one array each."""
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    return (
        f"UPDATE {table} AS t SET {assignments} FROM {_unnest([*columns, 'id'])} WHERE t.id = v.id"
    )


DELIVERY_INSERT = (
    "run_id",
    "job_id",
    "job_name",
    "destination",
    "payload",
    "next_attempt_at",
    "created_at",
    "status",
    "event",
)
BULK = {
    "insert_runs": f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
    f"SELECT * FROM {_unnest(RUN_COLUMNS)}",
    "update_jobs_runtime": _bulk_update("jobs", JOB_RUNTIME_COLUMNS),
    "finish_runs": _bulk_update("runs", RUN_RESULT_COLUMNS),
    "insert_deliveries": "INSERT INTO deliveries ("
    + ", ".join(DELIVERY_INSERT)
    + ", attempts) SELECT v.*, 0 FROM "
    + _unnest(DELIVERY_INSERT)
    + " ON CONFLICT (run_id, destination, event) DO NOTHING",
    "prune_runs": (
        "DELETE FROM runs WHERE seq IN (SELECT seq FROM (SELECT seq, status, row_number() "
        "OVER (PARTITION BY job_id ORDER BY seq DESC) AS newer FROM runs "
        "WHERE job_id = ANY($1::text[])) AS ranked WHERE newer > $2 AND status <> 'running')"
    ),
}
SLICE_SECS = 0.005  # planning yields at least this often (a sleeper waits ~3 slices)
CHUNK_ROWS = 1000  # rows per set-based statement; a chunk encodes well under a slice


def safe_dsn(dsn: str) -> str:
    """``dsn`` without its password, for messages."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


class PostgresStore(CronStore):
    """:class:`CronStore` on PostgreSQL; any number of processes and machines may share it."""

    def __init__(
        self, pool: asyncpg.Pool, dsn: str, settings: StoreSettings, clock: Clock, schema: str
    ) -> None:
        super().__init__()
        self._pool = pool
        self._dsn = dsn
        self.url = safe_dsn(dsn)
        self.settings = settings
        self.clock = clock
        self.schema = schema
        self.channel = f"starpod_cron.{schema}"
        self._planner: DeliveryPlanner | None = None
        self._start_planner: DeliveryPlanner | None = None
        self._closed = False
        self._inflight: set[asyncio.Future[Any]] = set()
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, dsn: str, settings: StoreSettings, clock: Clock, *, create: bool = True
    ) -> PostgresStore:
        check_zone(settings.default_timezone)
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
                schema = await conn.fetchval("SELECT current_schema()")
                if schema is None:
                    raise StoreUnavailable(
                        f"PostgreSQL at {where}: no schema to work in (the search_path names "
                        "no existing schema); create it or fix the search_path"
                    )
                await migrate(conn, where, create=create)
        except Exception as exc:
            if is_connection_error(exc):
                pool.terminate()
                raise unavailable(exc, where) from None
            await pool.close()
            raise
        except BaseException:
            pool.terminate()
            raise
        return cls(pool, dsn, settings, clock, str(schema))

    # ----------------------------------------------------------------- plumbing
    def _check_open(self) -> None:
        if self._closed:
            raise StarpodCronError("the store is closed")

    async def _transaction(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        delay = 0.01
        for attempt in range(1, 6):
            try:
                # read committed whatever the server's default: every transaction here is
                # written for it (explicit row and advisory locks, then fresh reads)
                async with (
                    self._pool.acquire() as conn,
                    conn.transaction(isolation="read_committed"),
                ):
                    return await body(conn)
            except RETRIED as exc:
                log.warning("a transaction on %s lost a race (%s); retrying", self.url, why(exc))
                if attempt == 5:
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

    async def _write(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``body`` in one transaction. Shielded: if the caller is cancelled, the
        transaction still commits or rolls back in the background."""
        self._check_open()
        future = asyncio.ensure_future(self._transaction(body))
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return await asyncio.shield(future)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """A read; retried once on new connections if its connection was reset (not when the
        server cannot be reached)."""
        self._check_open()
        for attempt in (1, 2):
            try:
                async with self._pool.acquire() as conn:
                    rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
                    return rows
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                await self._reset()
                if attempt == 2 or self._closed or isinstance(exc, OSError | TimeoutError):
                    raise unavailable(exc, self.url) from None  # unreachable: no second wait
        raise AssertionError("unreachable")  # pragma: no cover

    async def _value(self, sql: str, *args: Any) -> Any:
        rows = await self._fetch(sql, *args)
        return rows[0][0] if rows else None

    async def _jobs(self, sql: str, *args: Any) -> list[CronJob]:
        return [JobRecord.from_row(r).to_public() for r in await self._fetch(sql, *args)]

    async def _runs(self, sql: str, *args: Any) -> list[CronRun]:
        return [RunRecord.from_row(r).to_public() for r in await self._fetch(sql, *args)]

    async def _notify(self, conn: Conn, *topics: Topic) -> None:
        """Tell every listening node (delivered when the transaction commits)."""
        for topic in topics:
            await conn.execute(Q["notify"], self.channel, topic.value)

    def _watch_others(self) -> None:
        if self._listener is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        listen = Listener(self._dsn, self.channel, self.url, self._signal).run()
        self._listener = loop.create_task(listen, name="starpod-cron:pg-listen")

    async def ping(self) -> None:
        await self._value("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        try:
            await asyncio.wait_for(self._pool.close(), 10)
        except TimeoutError:
            log.error("closing the PostgreSQL pool took over 10 s; terminating its connections")
            self._pool.terminate()

    # ---------------------------------------------------------------------- jobs
    async def add_jobs(
        self, specs: Sequence[JobSpec], *, max_jobs_per_owner: int | None = None
    ) -> list[str]:
        records = new_records(specs, self.clock.now_ms(), self.settings)
        if not records:
            return []
        owners = limited_owners(records, max_jobs_per_owner)

        async def body(conn: Conn) -> None:
            if owners:  # held to commit: another add for these owners waits, then counts
                await conn.execute(Q["lock_owners"], self.channel, owners)
                have = await conn.fetch(Q["owner_job_counts"], owners)
                check_owner_limit(records, {r[0]: r[1] for r in have}, max_jobs_per_owner)
            owners_, names = [r.user_id or "" for r in records], [r.name for r in records]
            taken = await conn.fetchrow(Q["names_taken"], owners_, names)
            if taken:
                raise duplicate_name(taken[1], taken[0])
            try:
                await conn.executemany(Q["insert_job"], [r.to_row() for r in records])
            except asyncpg.UniqueViolationError:  # added by someone else meanwhile
                raise DuplicateJobName("a job with one of these names was just added") from None
            await self._notify(conn, Topic.JOBS)

        await self._write(body)
        self._signal(Topic.JOBS)
        return [r.id for r in records]

    async def list_jobs(self) -> list[CronJob]:
        return await self._jobs(Q["list_jobs"])

    async def list_jobs_for_user(self, user_id: str) -> list[CronJob]:
        return await self._jobs(Q["list_jobs_for_user"], user_id)

    async def get_job(self, job_id: str) -> CronJob | None:
        jobs = await self._jobs(Q["get_job"], job_id)
        return jobs[0] if jobs else None

    async def get_job_by_name(self, name: str, user_id: str | None = None) -> CronJob | None:
        jobs = await self._jobs(Q["get_job_by_name"], name, user_id)
        return jobs[0] if jobs else None

    async def find_jobs_by_name(self, name: str) -> list[CronJob]:
        return await self._jobs(Q["find_jobs_by_name"], name)

    async def update_job(self, job_id: str, update: JobUpdate) -> CronJob:
        async def body(conn: Conn) -> CronJob:
            job = await lock_job(conn, job_id)
            before = (job.user_id, job.name)
            planning.apply_update(job, update, self.clock.now_ms())
            if (job.user_id, job.name) != before:
                row = await conn.fetchrow(Q["get_job_by_name"], job.name, job.user_id)
                if row is not None and row[0] != job.id:
                    raise duplicate_name(job.name, job.user_id)
            await conn.execute(Q["update_job_state"], *job.state_params())
            await self._notify(conn, Topic.JOBS)
            return job.to_public()

        result = await self._write(body)
        self._signal(Topic.JOBS)
        return result

    async def remove_job(self, job_id: str) -> None:
        async def body(conn: Conn) -> None:
            if await conn.execute(Q["delete_job"], job_id) == "DELETE 0":
                raise JobNotFound(f"no job with id {job_id!r}")
            await conn.execute(Q["delete_job_runs"], job_id)

        await self._write(body)

    async def get_due_jobs(self) -> list[CronJob]:
        return await self._jobs(Q["select_due"], self.clock.now_ms(), None)

    async def next_due_at(self) -> datetime | None:
        value = await self._value(Q["next_due_at"])
        return None if value is None else from_ms(int(value))

    # ---------------------------------------------------------------------- runs
    async def record_run_start(
        self, job_id: str, *, lease_secs: float | None = None, owner: str | None = None
    ) -> str:
        starts = self._start_planner

        async def body(conn: Conn) -> tuple[str, int]:
            job = await lock_job(conn, job_id)
            now = self.clock.now_ms()
            run = manual_run(job, now, lease_secs, owner)
            await conn.execute(Q["insert_run"], *run.to_row())
            await conn.execute(Q["update_job_runtime"], *job.runtime_params())
            events = [] if starts is None else start_rows(starts, job, run, now)
            await self._insert_deliveries(conn, events)
            return run.id, len(events)

        run_id, queued = await self._write(body)
        if queued:
            self._signal(Topic.DELIVERIES)
        return run_id

    async def complete_runs(
        self, completions: Sequence[Completion], *, owner: str | None
    ) -> list[bool]:
        check_completions(completions)
        if not completions:
            return []
        planner = self._planner

        async def body(conn: Conn) -> tuple[list[bool], list[RunFinished], int]:
            ids = sorted({c.run_id for c in completions})
            runs = {r.id: r for r in map(RunRecord.from_row, await conn.fetch(Q["lock_runs"], ids))}
            jobs = await lock_jobs(conn, {r.job_id for r in runs.values()})
            slices = Slices()
            tell = planner is not None or bool(self._finished_listeners)
            batch = FinishBatch(
                runs, jobs, owner, self.clock.now_ms(), self.settings, planner, tell
            )
            for done in completions:
                await slices.yield_if_due()
                batch.add(done)
            await write_finished(
                conn, batch.finished, batch.touched.values(), batch.deleted, self.settings
            )
            await self._insert_deliveries(conn, batch.deliveries)
            if batch.finished:
                await self._notify(conn, Topic.JOBS)
            return batch.answers, batch.events, len(batch.deliveries)

        answers, events, queued = await self._write(body)
        self._signal(Topic.JOBS)
        if queued:
            self._signal(Topic.DELIVERIES)
        self._finished(events)
        return answers

    async def list_runs(self, job_id: str, limit: int = 20) -> list[CronRun]:
        return await self._runs(Q["list_runs"], job_id, bounded(limit))

    async def list_recent_runs(
        self,
        limit: int = 20,
        *,
        job_id: str | None = None,
        status: RunStatus | None = None,
    ) -> list[CronRun]:
        state = None if status is None else RunStatus(status).value
        return await self._runs(Q["list_recent_runs"], job_id, state, bounded(limit))

    async def get_run(self, run_id: str) -> CronRun | None:
        runs = await self._runs(Q["get_run"], run_id)
        return runs[0] if runs else None

    async def run_stats(self) -> dict[str, RunStats]:
        rows = await self._fetch(Q["run_stats"])
        return {
            job: RunStats(int(n), int(e), int(p), int(c), None if d is None else int(d))
            for job, n, e, p, c, d in rows
        }

    async def prune_runs(self, older_than: datetime, *, dry_run: bool = False) -> int:
        return await self._prune("old_runs", older_than, dry_run)

    async def prune_messages(self, older_than: datetime, *, dry_run: bool = False) -> int:
        return await self._prune("old_messages", older_than, dry_run)

    async def prune_deliveries(self, older_than: datetime, *, dry_run: bool = False) -> int:
        return await self._prune("old_deliveries", older_than, dry_run)

    async def _prune(self, what: str, older_than: datetime, dry_run: bool) -> int:
        """``count_<what>`` or ``delete_<what>`` of the rows before ``older_than``."""
        cutoff = to_ms(older_than)
        if dry_run:
            return int(await self._value(Q[f"count_{what}"], cutoff))

        async def body(conn: Conn) -> int:
            status: str = await conn.execute(Q[f"delete_{what}"], cutoff)
            return int(status.split()[-1])

        deleted: int = await self._write(body)
        return deleted

    async def optimize(self) -> None:
        async def body(conn: Conn) -> None:
            await conn.execute("ANALYZE jobs, runs, deliveries, messages, sessions")

        await self._write(body)

    # ------------------------------------------------------------ delivery outbox
    def set_delivery_planner(self, planner: DeliveryPlanner | None) -> None:
        self._planner = planner

    def set_start_planner(self, planner: DeliveryPlanner | None) -> None:
        self._start_planner = planner

    async def _insert_deliveries(self, conn: Conn, rows: Sequence[Sequence[object]]) -> None:
        """Insert deliveries as the last writes of a transaction: their ids are taken under a
        lock held to commit (see the module's notes), so keep what follows short."""
        if rows:
            await conn.execute(Q["lock_delivery_ids"])
            await bulk(conn, BULK["insert_deliveries"], rows)
            await self._notify(conn, Topic.DELIVERIES)

    async def claim_deliveries(
        self,
        owner: str,
        limit: int,
        lease_secs: float,
        prefixes: Sequence[str] | None = None,
    ) -> list[Delivery]:
        async def body(conn: Conn) -> list[Delivery]:
            now = self.clock.now_ms()
            senders = [row[0] for row in await conn.fetch(Q["sending_owners"])]
            rows = await conn.fetch(
                Q["claim_deliveries"],
                now,
                prefixes is None,
                list(prefixes or ()),
                bounded(limit),
                owner,
                now + round(lease_secs * 1000),
                [s for s in senders if owners.is_dead(s)],
            )
            return sorted(map(delivery_from_row, rows), key=lambda d: d.id)

        claimed: list[Delivery] = await self._write(body)
        return claimed

    async def finish_deliveries(
        self, owner: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[bool]:
        if not outcomes:
            return []

        async def body(conn: Conn) -> list[bool]:
            now = self.clock.now_ms()
            answers: list[bool] = []
            for o in outcomes:
                status = await conn.execute(
                    Q["finish_delivery"], *outcome_params(o, now), o.delivery_id, owner
                )
                answers.append(status == "UPDATE 1")
            if any(o.retry_at is not None for o in outcomes):
                await self._notify(conn, Topic.DELIVERIES)
            return answers

        answers: list[bool] = await self._write(body)
        if any(o.retry_at is not None for o in outcomes):
            self._signal(Topic.DELIVERIES)
        return answers

    async def renew_deliveries(self, owner: str, ids: Collection[int], lease_secs: float) -> int:
        if not ids:
            return 0

        async def body(conn: Conn) -> int:
            expires = self.clock.now_ms() + round(lease_secs * 1000)
            status = await conn.execute(Q["renew_deliveries"], expires, owner, sorted(ids))
            return int(status.split()[-1])

        renewed: int = await self._write(body)
        return renewed

    async def record_delivery_progress(self, delivery_id: int, owner: str, progress: int) -> bool:
        async def body(conn: Conn) -> bool:
            status = await conn.execute(Q["delivery_progress"], progress, delivery_id, owner)
            return bool(status == "UPDATE 1")

        done: bool = await self._write(body)
        return done

    async def list_deliveries(
        self,
        since_id: int,
        destinations: Sequence[str] | None,
        limit: int = 1000,
        *,
        prefix: str | None = None,
    ) -> list[Delivery]:
        rows = await self._fetch(
            Q["list_deliveries"],
            bounded(since_id, 0, MAX_ID),
            destinations is None,
            list(destinations or ()),
            prefix,
            bounded(limit),
        )
        return [delivery_from_row(r) for r in rows]

    async def count_deliveries(self) -> dict[DeliveryStatus, int]:
        rows = await self._fetch(Q["count_deliveries"])
        return {DeliveryStatus(status): int(n) for status, n in rows}

    async def deliveries_with_status(
        self, status: DeliveryStatus, limit: int = 100
    ) -> list[Delivery]:
        rows = await self._fetch(
            Q["deliveries_with_status"], DeliveryStatus(status).value, bounded(limit)
        )
        return [delivery_from_row(r) for r in rows]

    async def retry_delivery(self, delivery_id: int) -> bool:
        async def body(conn: Conn) -> bool:
            now = self.clock.now_ms()
            status = await conn.execute(Q["retry_delivery"], now, bounded(delivery_id, 0, MAX_ID))
            if status == "UPDATE 1":
                await self._notify(conn, Topic.DELIVERIES)
            return bool(status == "UPDATE 1")

        retried: bool = await self._write(body)
        if retried:
            self._signal(Topic.DELIVERIES)
        return retried

    async def next_delivery_at(self, prefixes: Sequence[str] | None = None) -> datetime | None:
        value = await self._value(Q["next_delivery_at"], prefixes is None, list(prefixes or ()))
        return None if value is None else from_ms(int(value))

    async def refuse_destination(
        self, name: str, error: str, backoff_secs: Sequence[float]
    ) -> DestinationRefusal:
        check_destination(name, backoff_secs)

        async def body(conn: Conn) -> DestinationRefusal:
            now = self.clock.now_ms()
            row = await conn.fetchrow(Q["refuse_destination"], name, now, error)
            assert row is not None  # an upsert returns its row
            since, failures = row
            retry_at = now + refusal_delay_ms(backoff_secs, failures)
            await conn.execute(Q["destination_retry_at"], retry_at, name)
            return DestinationRefusal(name, from_ms(since), from_ms(retry_at), failures, error)

        refusal: DestinationRefusal = await self._write(body)
        return refusal

    async def take_destination_probe(self, name: str, lease_secs: float) -> bool:
        check_destination(name)
        check_lease(name, "probe", lease_secs)

        async def body(conn: Conn) -> bool:
            now = self.clock.now_ms()
            until = now + round(lease_secs * 1000)
            status = await conn.execute(Q["take_destination_probe"], until, name, now)
            return bool(status == "UPDATE 1")

        taken: bool = await self._write(body)
        return taken

    async def clear_destination(self, name: str) -> bool:
        check_destination(name)

        async def body(conn: Conn) -> bool:
            status = await conn.execute(Q["clear_destination"], name)
            if status == "DELETE 1":
                await self._notify(conn, Topic.DELIVERIES)
            return bool(status == "DELETE 1")

        cleared: bool = await self._write(body)
        if cleared:
            self._signal(Topic.DELIVERIES)
        return cleared

    async def refusing_destinations(self) -> list[DestinationRefusal]:
        return [refusal_from_row(r) for r in await self._fetch(Q["refusing_destinations"])]

    # ------------------------------------------------------------ coordination
    async def acquire_lease(self, name: str, holder: str, lease_secs: float) -> Lease | None:
        check_lease(name, holder, lease_secs)

        async def body(conn: Conn) -> Lease | None:
            now = self.clock.now_ms()
            expires = now + round(lease_secs * 1000)
            row = await conn.fetchrow(Q["get_lease_for_update"], name)
            if row is None:  # a racing first taker wins; the other sees "held" next time
                status = await conn.execute(Q["insert_lease"], name, holder, now, expires)
                if status != "INSERT 0 1":
                    return None
                return Lease(name, holder, from_ms(now), from_ms(expires), None)
            _, current, held_since, expires_at, state = row
            if not may_take_lease(holder, current, expires_at, now):
                return None
            since = lease_since(holder, current, held_since, expires_at, now)
            await conn.execute(Q["update_lease"], name, holder, since, expires)
            return Lease(name, holder, from_ms(since), from_ms(expires), state)

        lease: Lease | None = await self._write(body)
        return lease

    async def save_lease_state(self, name: str, holder: str, state: str) -> bool:
        check_lease(name, holder)

        async def body(conn: Conn) -> bool:
            now = self.clock.now_ms()
            status = await conn.execute(Q["save_lease_state"], state, name, holder, now)
            return bool(status == "UPDATE 1")

        saved: bool = await self._write(body)
        return saved

    async def release_lease(self, name: str, holder: str) -> None:
        check_lease(name, holder)

        async def body(conn: Conn) -> None:
            now = self.clock.now_ms()
            await conn.execute(Q["release_lease"], now, name, holder, now)

        await self._write(body)

    async def list_leases(self) -> list[Lease]:
        return [lease_from_row(r) for r in await self._fetch(Q["list_leases"])]

    async def heartbeat(self, node: NodeInfo, *, stopped: bool = False) -> None:
        async def body(conn: Conn) -> None:
            now = self.clock.now_ms()
            await conn.execute(Q["heartbeat"], *node_params(node, now, stopped))
            await conn.execute(Q["forget_nodes"], now - NODE_MEMORY_MS)

        await self._write(body)

    async def list_nodes(self) -> list[NodeInfo]:
        since = self.clock.now_ms() - NODE_MEMORY_MS
        return [node_from_row(r) for r in await self._fetch(Q["list_nodes"], since)]

    async def last_delivery_id(self) -> int:
        return int(await self._value(Q["last_delivery_id"]))

    # ----------------------------------------------------------- user preferences
    async def get_user_timezone(self, user_id: str) -> str | None:
        value = await self._value(Q["get_user_timezone"], user_id)
        return None if value is None else str(value)

    async def set_user_timezone(self, user_id: str, timezone: str) -> None:
        check_zone(timezone)

        async def body(conn: Conn) -> None:
            await conn.execute(Q["set_user_timezone"], user_id, timezone, self.clock.now_ms())

        await self._write(body)

    # ------------------------------------------------------------- conversations
    async def main_session_id(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise InvalidInput("session key must be a non-empty string")

        async def body(conn: Conn) -> str:
            now = self.clock.now_ms()
            await conn.execute(Q["insert_session"], planning.new_id(now), key, now, now)
            return str(await conn.fetchval(Q["get_session_by_key"], key))

        session: str = await self._write(body)
        return session

    async def session_messages(self, session_id: str, limit: int) -> list[SessionMessage]:
        rows = await self._fetch(Q["session_messages"], session_id, bounded(limit))
        return [SessionMessage(r[0], r[1], r[2], from_ms(r[3])) for r in rows]

    async def append_session_messages(
        self,
        session_id: str,
        messages: Sequence[tuple[str, str]],
        *,
        run_id: str | None = None,
        keep: int | None = None,
    ) -> None:
        async def body(conn: Conn) -> None:
            now = self.clock.now_ms()
            await conn.executemany(
                Q["insert_message"],
                [(session_id, role, content, run_id, now) for role, content in messages],
            )
            await conn.execute(Q["touch_session"], now, session_id)
            if keep is not None:
                await conn.execute(Q["trim_messages"], session_id, bounded(keep, 1))

        await self._write(body)

    # ---------------------------------------------------- dashboard log-in sessions
    async def create_login_session(
        self, user_id: str, token_fingerprint: str, ttl_secs: float
    ) -> str:
        ttl_ms = logins.check_new(user_id, token_fingerprint, ttl_secs)
        session_id, key = logins.new_session()

        async def body(conn: Conn) -> None:
            now = self.clock.now_ms()
            await conn.execute(Q["delete_expired_login_sessions"], now)
            row = (key, user_id, token_fingerprint, now, now + ttl_ms, now)
            await conn.execute(Q["insert_login_session"], *row)

        await self._write(body)
        return session_id

    async def get_login_session(self, session_id: str) -> LoginSession | None:
        key = logins.id_hash(session_id)
        if key is None:
            return None
        now = self.clock.now_ms()
        rows = await self._fetch(Q["get_login_session"], key, now)
        if not rows:
            return None
        session = logins.session_from_row(tuple(rows[0]))
        if int(rows[0][4]) < now - logins.TOUCH_MS:

            async def body(conn: Conn) -> None:
                await conn.execute(Q["touch_login_session"], now, key, now - logins.TOUCH_MS)

            await self._write(body)
            session = replace(session, last_used_at=from_ms(now))
        return session

    async def delete_login_session(self, session_id: str) -> bool:
        key = logins.id_hash(session_id)
        if key is None:
            return False

        async def body(conn: Conn) -> bool:
            return _count(await conn.execute(Q["delete_login_session"], key)) > 0

        deleted: bool = await self._write(body)
        return deleted

    async def end_login_sessions(self, keep_fingerprints: Collection[str]) -> int:
        keep = sorted(str(f) for f in keep_fingerprints)

        async def body(conn: Conn) -> int:
            return _count(await conn.execute(Q["end_login_sessions"], keep))

        ended: int = await self._write(body)
        return ended

    async def prune_login_sessions(self) -> int:
        async def body(conn: Conn) -> int:
            now = self.clock.now_ms()
            return _count(await conn.execute(Q["delete_expired_login_sessions"], now))

        pruned: int = await self._write(body)
        return pruned

    # --------------------------------------------------------- scheduler primitives
    async def claim_due(
        self, owner: str, limit: int, lease_secs: float, *, ahead_secs: float = 0
    ) -> list[Claim]:
        if limit <= 0:
            return []
        grace = round(self.settings.misfire_grace_secs * 1000)
        ahead = max(0, round(ahead_secs * 1000))

        async def body(conn: Conn) -> tuple[list[Claim], list[Note], int]:
            now = self.clock.now_ms()
            lease_until = now + round(lease_secs * 1000)
            rows = await conn.fetch(Q["claim_due_jobs"], now + ahead, limit)
            batch = ClaimBatch(
                owner, now, lease_until, grace, self.settings.queue_limit, self._start_planner
            )
            slices = Slices()
            for row in rows:
                await slices.yield_if_due()  # plan in slices: the event loop stays responsive
                batch.add(JobRecord.from_row(row))
            await bulk(conn, BULK["update_jobs_runtime"], [j.runtime_params() for j in batch.jobs])
            await bulk(conn, BULK["insert_runs"], [r.to_row() for r in batch.runs])
            await self._insert_deliveries(conn, batch.deliveries)
            return batch.claims, batch.notes, len(batch.deliveries)

        claims, notes, queued = await self._write(body)
        write_notes(notes)
        if queued:
            self._signal(Topic.DELIVERIES)
        return claims

    async def renew_leases(
        self, owner: str, lease_secs: float, run_ids: Collection[str] | None = None
    ) -> set[str]:
        if run_ids is not None and not run_ids:
            return set()

        async def body(conn: Conn) -> set[str]:
            now = self.clock.now_ms()
            rows = await conn.fetch(
                Q["renew_leases"],
                now + round(lease_secs * 1000),
                now,
                owner,
                run_ids is None,
                list(run_ids or ()),
            )
            return {str(row[0]) for row in rows}

        held: set[str] = await self._write(body)
        return held

    async def recover(self, *, held: Collection[str] = (), repair: bool = True) -> RecoveryReport:
        async def body(conn: Conn) -> tuple[RecoveryReport, list[Note]]:
            now = self.clock.now_ms()
            holders = [row[0] for row in await conn.fetch(Q["running_owners"])]
            dead = [h for h in holders if owners.is_dead(h)]
            rows = await conn.fetch(Q["expired_runs"], now, dead, list(held))
            expired = [RunRecord.from_row(r) for r in rows]
            jobs = await lock_jobs(conn, {r.job_id for r in expired})
            touched, notes = interrupt_expired(expired, jobs, dead, now, self.settings)
            await write_finished(conn, expired, touched.values(), (), self.settings)
            repaired: list[JobRecord] = []
            if repair:  # whole-table scans: at start-up, not on every periodic pass
                await conn.execute(Q["release_orphaned_jobs"])
                rows = await conn.fetch(Q["jobs_missing_next_run"])
                repaired = [j for j in map(JobRecord.from_row, rows) if planning.repair(j, now)]
                await bulk(
                    conn, BULK["update_jobs_runtime"], [j.runtime_params() for j in repaired]
                )
            if expired or repaired:
                await self._notify(conn, Topic.JOBS)
            return RecoveryReport([r.id for r in expired], len(repaired)), notes

        report, notes = await self._write(body)
        write_notes(notes)
        if report.interrupted_run_ids or report.rescheduled_jobs:
            self._signal(Topic.JOBS)
        return report


# --------------------------------------------------------------------- helpers
class Slices:
    """Planning runs on the event loop (asyncpg is async): yield to it every SLICE_SECS, so a
    claim of a thousand jobs never stalls other work for more than a slice."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def yield_if_due(self) -> None:
        if time.perf_counter() - self._since >= SLICE_SECS:
            await asyncio.sleep(0)
            self._since = time.perf_counter()


async def lock_job(conn: Conn, job_id: str) -> JobRecord:
    row = await conn.fetchrow(Q["lock_job"], job_id)
    if row is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return JobRecord.from_row(row)


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.split()[-1])


async def lock_jobs(conn: Conn, ids: set[str]) -> dict[str, JobRecord]:
    if not ids:
        return {}
    rows = await conn.fetch(Q["lock_jobs"], sorted(ids))
    return {rec.id: rec for rec in map(JobRecord.from_row, rows)}


async def write_finished(
    conn: Conn,
    runs: Sequence[RunRecord],
    jobs: Collection[JobRecord],
    deleted: Collection[str],
    settings: StoreSettings,
) -> None:
    await bulk(conn, BULK["finish_runs"], [r.result_params() for r in runs])
    await bulk(conn, BULK["update_jobs_runtime"], [j.runtime_params() for j in jobs])
    if deleted:
        await conn.execute("DELETE FROM jobs WHERE id = ANY($1::text[])", list(deleted))
    keep = settings.runs_keep_per_job
    full = [j.id for j in jobs if j.run_count > keep]
    if full:
        await conn.execute(BULK["prune_runs"], full, keep)


async def bulk(conn: Conn, sql: str, rows: Sequence[Sequence[object]]) -> None:
    """One set-based statement for many rows (one array per column), in chunks of CHUNK_ROWS
    with a yield to the event loop between them."""
    for start in range(0, len(rows), CHUNK_ROWS):
        if start:
            await asyncio.sleep(0)
        chunk = rows[start : start + CHUNK_ROWS]
        await conn.execute(sql, *(list(column) for column in zip(*chunk, strict=True)))


async def migrate(conn: Conn, where: str, *, create: bool) -> None:
    migrations = load_migrations("postgres")
    latest = migrations[-1][0]
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock("
            "hashtextextended('starpod_cron:migrate:' || current_schema(), 0))"
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS starpod_cron_schema (version integer NOT NULL)"
        )
        version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM starpod_cron_schema")
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
            await conn.execute("INSERT INTO starpod_cron_schema (version) VALUES ($1)", number)
            log.info("migrated %s to schema version %d", where, number)
