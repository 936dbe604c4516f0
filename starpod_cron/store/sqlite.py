"""The SQLite backend: one connection per store object, WAL journal, every write one
``BEGIN IMMEDIATE`` transaction, so claims are atomic across processes sharing the file.

Each operation runs as ONE synchronous function on the store's own worker thread (a
single-worker ``ThreadPoolExecutor`` from the standard library): one thread hop per transaction
instead of one per statement, row planning off the event loop, and a thread that the
interpreter reclaims at exit even when ``close()`` was forgotten (aiosqlite's thread kept such
processes alive forever).

Other processes' commits are noticed within about 250 ms through ``PRAGMA data_version``; a
database file deleted or replaced while open is noticed too, and the store then refuses to
write (writes would go to a file nobody will ever open again).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from .. import owner as owners
from ..clock import Clock
from ..errors import (
    DatabaseMissing,
    InvalidInput,
    JobNotFound,
    SchemaVersionError,
    StarpodCronError,
    StoreLost,
    StoreUnavailable,
)
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

log = logging.getLogger("starpod_cron.store")
T = TypeVar("T")
Conn = sqlite3.Connection

Q = load_queries(
    "sqlite.sql",
    job_columns=", ".join(JOB_COLUMNS),
    job_placeholders=", ".join("?" * len(JOB_COLUMNS)),
    job_state_assignments=", ".join(f"{c} = ?" for c in JOB_STATE_COLUMNS),
    run_columns=", ".join(RUN_COLUMNS),
    run_placeholders=", ".join("?" * len(RUN_COLUMNS)),
    job_runtime_assignments=", ".join(f"{c} = ?" for c in JOB_RUNTIME_COLUMNS),
    run_result_assignments=", ".join(f"{c} = ?" for c in RUN_RESULT_COLUMNS),
    delivery_columns=", ".join(DELIVERY_COLUMNS),
)
WATCH_INTERVAL_SECS = 0.25


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


class SqliteStore(CronStore):
    """:class:`CronStore` on a SQLite file. Safe to share the file between processes."""

    def __init__(self, path: str, settings: StoreSettings, clock: Clock) -> None:
        super().__init__()
        self.path = path
        self.url = path
        self.settings = settings
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="starpod-cron-sqlite")
        self._conn: Conn | None = None
        self._inflight: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._planner: DeliveryPlanner | None = None
        self._start_planner: DeliveryPlanner | None = None
        self._identity: tuple[int, int] | None = None
        self._lost: str | None = None
        self._data_version = 0
        self._watcher: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, path: str, settings: StoreSettings, clock: Clock, *, create: bool = True
    ) -> SqliteStore:
        check_zone(settings.default_timezone)
        store = cls(path, settings, clock)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(store._pool, store._open_sync, create)
        except BaseException:
            store._pool.shutdown(wait=False)
            raise
        return store

    # ---------------------------------------------------------------- the worker thread
    def _open_sync(self, create: bool) -> None:
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
            conn.execute(f"PRAGMA synchronous = {self.settings.synchronous.upper()}")
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

    def _check_identity(self) -> None:
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

    def _require(self) -> Conn:
        if self._conn is None:
            raise StarpodCronError("the store is closed")
        return self._conn

    def _tx(self, body: Callable[..., T], *args: Any) -> T:
        conn = self._require()
        self._check_identity()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise unavailable(exc, self.path) from exc
        return result

    def _rd(self, body: Callable[..., T], *args: Any) -> T:
        conn = self._require()
        try:
            return body(conn, *args)
        except sqlite3.Error as exc:
            raise unavailable(exc, self.path) from exc

    def _poll(self, conn: Conn) -> bool:
        """True when another connection committed since the last poll."""
        self._check_identity()
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    # ------------------------------------------------------------- the event loop side
    def _check_open(self) -> None:
        if self._closed:
            raise StarpodCronError("the store is closed")

    async def _write(self, body: Callable[..., T], *args: Any) -> T:
        """Run ``body(conn, *args)`` in one BEGIN IMMEDIATE transaction on the worker thread.
        Shielded: if the caller is cancelled the transaction still commits or rolls back."""
        self._check_open()
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._tx, body, *args)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return await asyncio.shield(future)

    async def _read(self, body: Callable[..., T], *args: Any) -> T:
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._rd, body, *args)

    async def _rows(self, sql: str, params: Sequence[object] | dict[str, object] = ()) -> Any:
        return await self._read(lambda conn: conn.execute(sql, params).fetchall())

    async def _jobs(self, sql: str, params: Sequence[object] | dict[str, object] = ()) -> Any:
        def body(conn: Conn) -> list[CronJob]:
            rows = conn.execute(sql, params).fetchall()
            return [JobRecord.from_row(r).to_public() for r in rows]

        return await self._read(body)

    async def _runs(self, sql: str, params: Sequence[object] | dict[str, object] = ()) -> Any:
        def body(conn: Conn) -> list[CronRun]:
            return [RunRecord.from_row(r).to_public() for r in conn.execute(sql, params)]

        return await self._read(body)

    def _watch_others(self) -> None:
        if self._watcher is not None or self._closed or self._identity is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._watcher = loop.create_task(self._watch(), name="starpod-cron:sqlite-watch")

    async def _watch(self) -> None:
        """Notice commits by other processes (and a vanished file) within a quarter second."""
        reported = False
        while not self._closed:
            await asyncio.sleep(WATCH_INTERVAL_SECS)
            try:
                changed = await self._read(self._poll)
            except StoreUnavailable as exc:
                if not reported:
                    log.error("%s", exc)
                    reported = True
                continue
            except StarpodCronError:
                return  # closed
            if changed:
                self._signal(Topic.JOBS, Topic.DELIVERIES)

    async def ping(self) -> None:
        def body(conn: Conn) -> None:
            self._check_identity()
            conn.execute("SELECT 1")

        await self._read(body)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._close_sync)
        self._pool.shutdown(wait=False)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---------------------------------------------------------------------- jobs
    async def add_jobs(
        self, specs: Sequence[JobSpec], *, max_jobs_per_owner: int | None = None
    ) -> list[str]:
        records = new_records(specs, self.clock.now_ms(), self.settings)
        if not records:
            return []
        owners = limited_owners(records, max_jobs_per_owner)

        def body(conn: Conn) -> None:
            if owners:  # BEGIN IMMEDIATE: no other add runs between this count and the insert
                have = conn.execute(Q["owner_job_counts"], (json.dumps(owners),)).fetchall()
                check_owner_limit(records, dict(have), max_jobs_per_owner)
            pairs = json.dumps([[r.user_id or "", r.name] for r in records])
            taken = conn.execute(Q["names_taken"], (pairs,)).fetchone()
            if taken:
                raise duplicate_name(taken[1], taken[0])
            conn.executemany(Q["insert_job"], [r.to_row() for r in records])

        await self._write(body)
        self._signal(Topic.JOBS)
        return [r.id for r in records]

    async def list_jobs(self) -> list[CronJob]:
        jobs: list[CronJob] = await self._jobs(Q["list_jobs"])
        return jobs

    async def list_jobs_for_user(self, user_id: str) -> list[CronJob]:
        jobs: list[CronJob] = await self._jobs(Q["list_jobs_for_user"], (user_id,))
        return jobs

    async def get_job(self, job_id: str) -> CronJob | None:
        jobs: list[CronJob] = await self._jobs(Q["get_job"], (job_id,))
        return jobs[0] if jobs else None

    async def get_job_by_name(self, name: str, user_id: str | None = None) -> CronJob | None:
        jobs: list[CronJob] = await self._jobs(
            Q["get_job_by_name"], {"name": name, "user_id": user_id}
        )
        return jobs[0] if jobs else None

    async def find_jobs_by_name(self, name: str) -> list[CronJob]:
        jobs: list[CronJob] = await self._jobs(Q["find_jobs_by_name"], (name,))
        return jobs

    async def update_job(self, job_id: str, update: JobUpdate) -> CronJob:
        def body(conn: Conn) -> CronJob:
            job = load_job(conn, job_id)
            before = (job.user_id, job.name)
            planning.apply_update(job, update, self.clock.now_ms())
            if (job.user_id, job.name) != before:
                params = {"name": job.name, "user_id": job.user_id}
                row = conn.execute(Q["get_job_by_name"], params).fetchone()
                if row is not None and row[0] != job.id:
                    raise duplicate_name(job.name, job.user_id)
            conn.execute(Q["update_job_state"], job.state_params())
            return job.to_public()

        result = await self._write(body)
        self._signal(Topic.JOBS)
        return result

    async def remove_job(self, job_id: str) -> None:
        def body(conn: Conn) -> None:
            if conn.execute(Q["delete_job"], (job_id,)).rowcount == 0:
                raise JobNotFound(f"no job with id {job_id!r}")
            conn.execute(Q["delete_job_runs"], (job_id,))

        await self._write(body)

    async def get_due_jobs(self) -> list[CronJob]:
        jobs: list[CronJob] = await self._jobs(Q["select_due"], (self.clock.now_ms(), -1))
        return jobs

    async def next_due_at(self) -> datetime | None:
        ((value,),) = await self._rows(Q["next_due_at"])
        return None if value is None else from_ms(int(value))

    # ---------------------------------------------------------------------- runs
    async def record_run_start(
        self, job_id: str, *, lease_secs: float | None = None, owner: str | None = None
    ) -> str:
        starts = self._start_planner

        def body(conn: Conn) -> tuple[str, int]:
            job = load_job(conn, job_id)
            now = self.clock.now_ms()
            run = manual_run(job, now, lease_secs, owner)
            conn.execute(Q["insert_run"], run.to_row())
            conn.execute(Q["update_job_runtime"], job.runtime_params())
            events = [] if starts is None else start_rows(starts, job, run, now)
            conn.executemany(Q["insert_delivery"], events)
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

        def body(conn: Conn) -> tuple[list[bool], list[RunFinished], int]:
            ids = json.dumps([c.run_id for c in completions])
            rows = conn.execute(Q["get_runs_by_ids"], (ids,)).fetchall()
            runs = {r.id: r for r in map(RunRecord.from_row, rows)}
            jobs = load_jobs(conn, {r.job_id for r in runs.values()})
            tell = planner is not None or bool(self._finished_listeners)
            batch = FinishBatch(
                runs, jobs, owner, self.clock.now_ms(), self.settings, planner, tell
            )
            for done in completions:
                batch.add(done)
            write_finished(
                conn, batch.finished, batch.touched.values(), batch.deleted, self.settings
            )
            conn.executemany(Q["insert_delivery"], batch.deliveries)
            return batch.answers, batch.events, len(batch.deliveries)

        answers, events, queued = await self._write(body)
        self._signal(Topic.JOBS)
        if queued:
            self._signal(Topic.DELIVERIES)
        self._finished(events)
        return answers

    async def list_runs(self, job_id: str, limit: int = 20) -> list[CronRun]:
        runs: list[CronRun] = await self._runs(Q["list_runs"], (job_id, bounded(limit)))
        return runs

    async def list_recent_runs(
        self,
        limit: int = 20,
        *,
        job_id: str | None = None,
        status: RunStatus | None = None,
    ) -> list[CronRun]:
        params: dict[str, object] = {
            "limit": bounded(limit),
            "job_id": job_id,
            "status": None if status is None else RunStatus(status).value,
        }
        runs: list[CronRun] = await self._runs(Q["list_recent_runs"], params)
        return runs

    async def get_run(self, run_id: str) -> CronRun | None:
        runs: list[CronRun] = await self._runs(Q["get_run"], (run_id,))
        return runs[0] if runs else None

    async def run_stats(self) -> dict[str, RunStats]:
        rows = await self._rows(Q["run_stats"])
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
            ((count,),) = await self._rows(Q[f"count_{what}"], (cutoff,))
            return int(count)

        def body(conn: Conn) -> int:
            return int(conn.execute(Q[f"delete_{what}"], (cutoff,)).rowcount)

        deleted: int = await self._write(body)
        return deleted

    async def optimize(self) -> None:
        def body(conn: Conn) -> None:
            conn.execute("PRAGMA optimize")

        await self._write(body)

    # ------------------------------------------------------------ delivery outbox
    def set_delivery_planner(self, planner: DeliveryPlanner | None) -> None:
        self._planner = planner

    def set_start_planner(self, planner: DeliveryPlanner | None) -> None:
        self._start_planner = planner

    async def claim_deliveries(
        self,
        owner: str,
        limit: int,
        lease_secs: float,
        prefixes: Sequence[str] | None = None,
    ) -> list[Delivery]:
        def body(conn: Conn) -> list[Delivery]:
            now = self.clock.now_ms()
            senders = [row[0] for row in conn.execute(Q["sending_owners"])]
            params = {
                "now": now,
                "limit": bounded(limit),
                "any": prefixes is None,
                "prefixes": json.dumps(list(prefixes or ())),
                "dead": json.dumps([s for s in senders if owners.is_dead(s)]),
            }
            ids = [r[0] for r in conn.execute(Q["due_deliveries"], params)]
            if not ids:
                return []
            lease = (owner, now + round(lease_secs * 1000), json.dumps(ids))
            rows = conn.execute(Q["lease_deliveries"], lease).fetchall()
            return sorted(map(delivery_from_row, rows), key=lambda d: d.id)

        claimed: list[Delivery] = await self._write(body)
        return claimed

    async def finish_deliveries(
        self, owner: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[bool]:
        if not outcomes:
            return []

        def body(conn: Conn) -> list[bool]:
            now = self.clock.now_ms()
            answers: list[bool] = []
            for o in outcomes:
                cursor = conn.execute(
                    Q["finish_delivery"], (*outcome_params(o, now), o.delivery_id, owner)
                )
                answers.append(cursor.rowcount == 1)
            return answers

        answers: list[bool] = await self._write(body)
        if any(o.retry_at is not None for o in outcomes):
            self._signal(Topic.DELIVERIES)
        return answers

    async def renew_deliveries(self, owner: str, ids: Collection[int], lease_secs: float) -> int:
        if not ids:
            return 0

        def body(conn: Conn) -> int:
            expires = self.clock.now_ms() + round(lease_secs * 1000)
            params = (expires, owner, json.dumps(sorted(ids)))
            return int(conn.execute(Q["renew_deliveries"], params).rowcount)

        renewed: int = await self._write(body)
        return renewed

    async def record_delivery_progress(self, delivery_id: int, owner: str, progress: int) -> bool:
        def body(conn: Conn) -> bool:
            cursor = conn.execute(Q["delivery_progress"], (progress, delivery_id, owner))
            return bool(cursor.rowcount == 1)

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
        params = {
            "since": bounded(since_id, 0, MAX_ID),
            "everywhere": destinations is None,
            "destinations": json.dumps(list(destinations or ())),
            "prefix": prefix,
            "limit": bounded(limit),
        }

        def body(conn: Conn) -> list[Delivery]:
            return [delivery_from_row(r) for r in conn.execute(Q["list_deliveries"], params)]

        deliveries: list[Delivery] = await self._read(body)
        return deliveries

    async def count_deliveries(self) -> dict[DeliveryStatus, int]:
        rows = await self._rows(Q["count_deliveries"])
        return {DeliveryStatus(status): int(n) for status, n in rows}

    async def deliveries_with_status(
        self, status: DeliveryStatus, limit: int = 100
    ) -> list[Delivery]:
        rows = await self._rows(
            Q["deliveries_with_status"], (DeliveryStatus(status).value, bounded(limit))
        )
        return [delivery_from_row(r) for r in rows]

    async def retry_delivery(self, delivery_id: int) -> bool:
        def body(conn: Conn) -> bool:
            params = (self.clock.now_ms(), bounded(delivery_id, 0, MAX_ID))
            return bool(conn.execute(Q["retry_delivery"], params).rowcount == 1)

        retried: bool = await self._write(body)
        if retried:
            self._signal(Topic.DELIVERIES)
        return retried

    async def next_delivery_at(self, prefixes: Sequence[str] | None = None) -> datetime | None:
        params = {"any": prefixes is None, "prefixes": json.dumps(list(prefixes or ()))}
        ((value,),) = await self._rows(Q["next_delivery_at"], params)
        return None if value is None else from_ms(int(value))

    async def refuse_destination(
        self, name: str, error: str, backoff_secs: Sequence[float]
    ) -> DestinationRefusal:
        check_destination(name, backoff_secs)

        def body(conn: Conn) -> DestinationRefusal:
            now = self.clock.now_ms()
            since, failures = conn.execute(
                Q["refuse_destination"], (name, now, now, error)
            ).fetchone()
            retry_at = now + refusal_delay_ms(backoff_secs, failures)
            conn.execute(Q["destination_retry_at"], (retry_at, name))
            return DestinationRefusal(name, from_ms(since), from_ms(retry_at), failures, error)

        refusal: DestinationRefusal = await self._write(body)
        return refusal

    async def take_destination_probe(self, name: str, lease_secs: float) -> bool:
        check_destination(name)
        check_lease(name, "probe", lease_secs)

        def body(conn: Conn) -> bool:
            now = self.clock.now_ms()
            params = (now + round(lease_secs * 1000), name, now)
            return bool(conn.execute(Q["take_destination_probe"], params).rowcount == 1)

        taken: bool = await self._write(body)
        return taken

    async def clear_destination(self, name: str) -> bool:
        check_destination(name)

        def body(conn: Conn) -> bool:
            return bool(conn.execute(Q["clear_destination"], (name,)).rowcount == 1)

        cleared: bool = await self._write(body)
        if cleared:
            self._signal(Topic.DELIVERIES)
        return cleared

    async def refusing_destinations(self) -> list[DestinationRefusal]:
        return [refusal_from_row(r) for r in await self._rows(Q["refusing_destinations"])]

    # ------------------------------------------------------------ coordination
    async def acquire_lease(self, name: str, holder: str, lease_secs: float) -> Lease | None:
        check_lease(name, holder, lease_secs)

        def body(conn: Conn) -> Lease | None:
            now = self.clock.now_ms()
            row = conn.execute(Q["get_lease"], (name,)).fetchone()
            since, state = now, None
            if row is not None:
                _, current, held_since, expires_at, state = row
                if not may_take_lease(holder, current, expires_at, now):
                    return None
                since = lease_since(holder, current, held_since, expires_at, now)
            expires = now + round(lease_secs * 1000)
            conn.execute(Q["put_lease"], (name, holder, since, expires))
            return Lease(name, holder, from_ms(since), from_ms(expires), state)

        lease: Lease | None = await self._write(body)
        return lease

    async def save_lease_state(self, name: str, holder: str, state: str) -> bool:
        check_lease(name, holder)

        def body(conn: Conn) -> bool:
            params = (state, name, holder, self.clock.now_ms())
            return bool(conn.execute(Q["save_lease_state"], params).rowcount == 1)

        saved: bool = await self._write(body)
        return saved

    async def release_lease(self, name: str, holder: str) -> None:
        check_lease(name, holder)

        def body(conn: Conn) -> None:
            now = self.clock.now_ms()
            conn.execute(Q["release_lease"], (now, name, holder, now))

        await self._write(body)

    async def list_leases(self) -> list[Lease]:
        return [lease_from_row(r) for r in await self._rows(Q["list_leases"])]

    async def heartbeat(self, node: NodeInfo, *, stopped: bool = False) -> None:
        def body(conn: Conn) -> None:
            now = self.clock.now_ms()
            conn.execute(Q["heartbeat"], node_params(node, now, stopped))
            conn.execute(Q["forget_nodes"], (now - NODE_MEMORY_MS,))

        await self._write(body)

    async def list_nodes(self) -> list[NodeInfo]:
        since = self.clock.now_ms() - NODE_MEMORY_MS
        return [node_from_row(r) for r in await self._rows(Q["list_nodes"], (since,))]

    async def last_delivery_id(self) -> int:
        ((value,),) = await self._rows(Q["last_delivery_id"])
        return int(value)

    # ----------------------------------------------------------- user preferences
    async def get_user_timezone(self, user_id: str) -> str | None:
        rows = await self._rows(Q["get_user_timezone"], (user_id,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    async def set_user_timezone(self, user_id: str, timezone: str) -> None:
        check_zone(timezone)

        def body(conn: Conn) -> None:
            conn.execute(Q["set_user_timezone"], (user_id, timezone, self.clock.now_ms()))

        await self._write(body)

    # ------------------------------------------------------------- conversations
    async def main_session_id(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise InvalidInput("session key must be a non-empty string")

        def body(conn: Conn) -> str:
            now = self.clock.now_ms()
            conn.execute(Q["insert_session"], (planning.new_id(now), key, now, now))
            ((session_id,),) = conn.execute(Q["get_session_by_key"], (key,)).fetchall()
            return str(session_id)

        session: str = await self._write(body)
        return session

    async def session_messages(self, session_id: str, limit: int) -> list[SessionMessage]:
        rows = await self._rows(Q["session_messages"], (session_id, bounded(limit)))
        return [SessionMessage(r[0], r[1], r[2], from_ms(r[3])) for r in rows]

    async def append_session_messages(
        self,
        session_id: str,
        messages: Sequence[tuple[str, str]],
        *,
        run_id: str | None = None,
        keep: int | None = None,
    ) -> None:
        def body(conn: Conn) -> None:
            now = self.clock.now_ms()
            conn.executemany(
                Q["insert_message"],
                [(session_id, role, content, run_id, now) for role, content in messages],
            )
            conn.execute(Q["touch_session"], (now, session_id))
            if keep is not None:
                params = {"session_id": session_id, "keep": bounded(keep, 1)}
                conn.execute(Q["trim_messages"], params)

        await self._write(body)

    # ---------------------------------------------------- dashboard log-in sessions
    async def create_login_session(
        self, user_id: str, token_fingerprint: str, ttl_secs: float
    ) -> str:
        ttl_ms = logins.check_new(user_id, token_fingerprint, ttl_secs)
        session_id, key = logins.new_session()

        def body(conn: Conn) -> None:
            now = self.clock.now_ms()
            conn.execute(Q["delete_expired_login_sessions"], (now,))
            row = (key, user_id, token_fingerprint, now, now + ttl_ms, now)
            conn.execute(Q["insert_login_session"], row)

        await self._write(body)
        return session_id

    async def get_login_session(self, session_id: str) -> LoginSession | None:
        key = logins.id_hash(session_id)
        if key is None:
            return None
        now = self.clock.now_ms()
        rows = await self._rows(Q["get_login_session"], (key, now))
        if not rows:
            return None
        session = logins.session_from_row(rows[0])
        if int(rows[0][4]) < now - logins.TOUCH_MS:

            def body(conn: Conn) -> None:
                conn.execute(Q["touch_login_session"], (now, key, now - logins.TOUCH_MS))

            await self._write(body)
            session = replace(session, last_used_at=from_ms(now))
        return session

    async def delete_login_session(self, session_id: str) -> bool:
        key = logins.id_hash(session_id)
        if key is None:
            return False

        def body(conn: Conn) -> bool:
            return int(conn.execute(Q["delete_login_session"], (key,)).rowcount) > 0

        deleted: bool = await self._write(body)
        return deleted

    async def end_login_sessions(self, keep_fingerprints: Collection[str]) -> int:
        keep = json.dumps(sorted(str(f) for f in keep_fingerprints))

        def body(conn: Conn) -> int:
            return int(conn.execute(Q["end_login_sessions"], (keep,)).rowcount)

        ended: int = await self._write(body)
        return ended

    async def prune_login_sessions(self) -> int:
        def body(conn: Conn) -> int:
            now = self.clock.now_ms()
            return int(conn.execute(Q["delete_expired_login_sessions"], (now,)).rowcount)

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

        def body(conn: Conn) -> tuple[list[Claim], list[Note], int]:
            now = self.clock.now_ms()
            lease_until = now + round(lease_secs * 1000)
            rows = conn.execute(Q["select_due"], (now + ahead, limit)).fetchall()
            batch = ClaimBatch(
                owner, now, lease_until, grace, self.settings.queue_limit, self._start_planner
            )
            for row in rows:
                batch.add(JobRecord.from_row(row))
            conn.executemany(Q["update_job_runtime"], [j.runtime_params() for j in batch.jobs])
            conn.executemany(Q["insert_run"], [r.to_row() for r in batch.runs])
            if batch.deliveries:
                conn.executemany(Q["insert_delivery"], batch.deliveries)
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

        def body(conn: Conn) -> set[str]:
            now = self.clock.now_ms()
            params = {
                "until": now + round(lease_secs * 1000),
                "now": now,
                "owner": owner,
                "all": run_ids is None,
                "ids": json.dumps(list(run_ids or ())),
            }
            return {str(row[0]) for row in conn.execute(Q["renew_leases"], params)}

        held: set[str] = await self._write(body)
        return held

    async def recover(self, *, held: Collection[str] = (), repair: bool = True) -> RecoveryReport:
        def body(conn: Conn) -> tuple[RecoveryReport, list[Note]]:
            now = self.clock.now_ms()
            holders = [row[0] for row in conn.execute(Q["running_owners"])]
            dead = [h for h in holders if owners.is_dead(h)]
            params = {"now": now, "dead": json.dumps(dead), "held": json.dumps(list(held))}
            expired = [RunRecord.from_row(r) for r in conn.execute(Q["expired_runs"], params)]
            jobs = load_jobs(conn, {r.job_id for r in expired})
            touched, notes = interrupt_expired(expired, jobs, dead, now, self.settings)
            write_finished(conn, expired, touched.values(), (), self.settings)
            repaired: list[JobRecord] = []
            if repair:  # whole-table scans: at start-up, not on every periodic pass
                conn.execute(Q["release_orphaned_jobs"])
                rows = conn.execute(Q["jobs_missing_next_run"]).fetchall()
                repaired = [j for j in map(JobRecord.from_row, rows) if planning.repair(j, now)]
                conn.executemany(Q["update_job_runtime"], [j.runtime_params() for j in repaired])
            return RecoveryReport([r.id for r in expired], len(repaired)), notes

        report, notes = await self._write(body)
        write_notes(notes)
        if report.interrupted_run_ids or report.rescheduled_jobs:
            self._signal(Topic.JOBS)
        return report


# --------------------------------------------------------------------- shared helpers
def write_finished(
    conn: Conn,
    runs: Iterable[RunRecord],
    jobs: Iterable[JobRecord],
    deleted: Iterable[str],
    settings: StoreSettings,
) -> None:
    conn.executemany(Q["finish_run"], [r.result_params() for r in runs])
    jobs = list(jobs)
    conn.executemany(Q["update_job_runtime"], [j.runtime_params() for j in jobs])
    conn.executemany(Q["delete_job"], [(job_id,) for job_id in deleted])
    keep = settings.runs_keep_per_job
    conn.executemany(
        Q["prune_job_runs"],
        [{"job_id": j.id, "keep": keep} for j in jobs if j.run_count > keep],
    )


def load_job(conn: Conn, job_id: str) -> JobRecord:
    row = conn.execute(Q["get_job"], (job_id,)).fetchone()
    if row is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return JobRecord.from_row(row)


def load_jobs(conn: Conn, ids: set[str]) -> dict[str, JobRecord]:
    if not ids:
        return {}
    rows = conn.execute(Q["get_jobs_by_ids"], (json.dumps(sorted(ids)),)).fetchall()
    return {rec.id: rec for rec in map(JobRecord.from_row, rows)}


def migrate(conn: Conn, path: str) -> None:
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
            log.info("migrated %s to schema version %d", path, number)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
