"""The SQLite backend (aiosqlite). One connection per store object, WAL journal, and every write
in a ``BEGIN IMMEDIATE`` transaction, so claims are atomic across processes sharing the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aiosqlite

from ..clock import Clock
from ..errors import (
    ConfigError,
    DuplicateJobName,
    InvalidInput,
    JobAlreadyRunning,
    JobNotFound,
    SchemaVersionError,
    StarpodCronError,
)
from ..models import (
    CronJob,
    CronRun,
    Delivery,
    JobUpdate,
    RunStatus,
    RunTrigger,
    SessionMessage,
)
from ..timeutil import check_zone, from_ms, to_ms
from . import planning
from .base import (
    Claim,
    Completion,
    CronStore,
    DeliveryOutcome,
    DeliveryPlanner,
    JobSpec,
    RecoveryReport,
    StoreSettings,
)
from .records import (
    _SESSION_MODES,
    _TRIGGERS,
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

log = logging.getLogger("starpod_cron.store")
T = TypeVar("T")
Row = Any

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
_NOTIFIED = {RunStatus.SUCCESS.value, RunStatus.FAILED.value, RunStatus.TIMEOUT.value}
_FINAL_FOR_COMPLETION = {
    RunStatus.SUCCESS,
    RunStatus.FAILED,
    RunStatus.TIMEOUT,
    RunStatus.INTERRUPTED,
}


def _statements(script: str) -> Iterable[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf.strip()
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") for ln in buf.strip().splitlines()):
        raise ValueError(f"incomplete SQL statement in migration: {buf[:80]!r}")


def validate_settings(settings: StoreSettings) -> None:
    if settings.synchronous not in ("full", "normal"):
        raise ConfigError(f"synchronous must be 'full' or 'normal', got {settings.synchronous!r}")
    if settings.runs_keep_per_job < 1:
        raise ConfigError("runs_keep_per_job must be at least 1")
    if not settings.retry_backoff_secs or min(settings.retry_backoff_secs) < 0:
        raise ConfigError("retry_backoff_secs must be a non-empty list of delays >= 0")
    if settings.misfire_grace_secs < 0:
        raise ConfigError("misfire_grace_secs must be >= 0")


class SqliteStore(CronStore):
    """:class:`CronStore` on a SQLite file. Safe to share the file between processes."""

    def __init__(
        self, db: aiosqlite.Connection, path: str, settings: StoreSettings, clock: Clock
    ) -> None:
        self._db = db
        self.path = path
        self.settings = settings
        self.clock = clock
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._inflight: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._planner: DeliveryPlanner | None = None

    @classmethod
    async def connect(cls, path: str, settings: StoreSettings, clock: Clock) -> SqliteStore:
        validate_settings(settings)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA busy_timeout = 30000")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute(f"PRAGMA synchronous = {settings.synchronous.upper()}")
            await _migrate(db, path)
        except BaseException:
            await db.close()
            raise
        return cls(db, path, settings, clock)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        async with self._lock:
            await self._db.close()

    # ------------------------------------------------------------------ plumbing
    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _changed(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                log.exception("store change listener %r failed", callback)

    def _check_open(self) -> None:
        if self._closed:
            raise StarpodCronError("the store is closed")

    async def _write(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one BEGIN IMMEDIATE transaction. The transaction is shielded: if
        the caller is cancelled it still commits or rolls back cleanly in the background."""
        self._check_open()
        task: asyncio.Future[T] = asyncio.ensure_future(self._transaction(body))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def _transaction(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        async with self._lock:
            db = self._db
            await db.execute("BEGIN IMMEDIATE")
            try:
                result = await body(db)
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise
        return result

    async def _read(self, sql: str, params: Sequence[object] | dict[str, object] = ()) -> list[Row]:
        self._check_open()
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _jobs(self, sql: str, params: Sequence[object] = ()) -> list[CronJob]:
        return [JobRecord.from_row(r).to_public() for r in await self._read(sql, params)]

    # ---------------------------------------------------------------------- jobs
    async def add_jobs(self, specs: Sequence[JobSpec]) -> list[str]:
        now = self.clock.now_ms()
        records = [planning.new_job(spec, now, self.settings) for spec in specs]
        seen: set[str] = set()
        for rec in records:
            if rec.name in seen:
                raise DuplicateJobName(f"job name {rec.name!r} appears twice in one batch")
            seen.add(rec.name)
        if not records:
            return []

        async def body(db: aiosqlite.Connection) -> None:
            names = json.dumps([r.name for r in records])
            taken = await db.execute_fetchall(Q["names_taken"], (names,))
            if taken:
                listed = ", ".join(repr(row[0]) for row in taken)
                raise DuplicateJobName(f"a job named {listed} already exists")
            await db.executemany(Q["insert_job"], [r.to_row() for r in records])

        await self._write(body)
        self._changed()
        return [r.id for r in records]

    async def list_jobs(self) -> list[CronJob]:
        return await self._jobs(Q["list_jobs"])

    async def list_jobs_for_user(self, user_id: str) -> list[CronJob]:
        return await self._jobs(Q["list_jobs_for_user"], (user_id,))

    async def get_job(self, job_id: str) -> CronJob | None:
        jobs = await self._jobs(Q["get_job"], (job_id,))
        return jobs[0] if jobs else None

    async def get_job_by_name(self, name: str) -> CronJob | None:
        jobs = await self._jobs(Q["get_job_by_name"], (name,))
        return jobs[0] if jobs else None

    async def update_job(self, job_id: str, update: JobUpdate) -> CronJob:
        async def body(db: aiosqlite.Connection) -> CronJob:
            job = await _load_job(db, job_id)
            old_name = job.name
            planning.apply_update(job, update, self.clock.now_ms())
            if job.name != old_name:
                taken = await db.execute_fetchall(Q["get_job_by_name"], (job.name,))
                if taken:
                    raise DuplicateJobName(f"a job named {job.name!r} already exists")
            await db.execute(Q["update_job_state"], job.state_params())
            return job.to_public()

        result = await self._write(body)
        self._changed()
        return result

    async def remove_job(self, job_id: str) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            cursor = await db.execute(Q["delete_job"], (job_id,))
            if cursor.rowcount == 0:
                raise JobNotFound(f"no job with id {job_id!r}")
            await db.execute(Q["delete_job_runs"], (job_id,))

        await self._write(body)

    async def get_due_jobs(self) -> list[CronJob]:
        return await self._jobs(Q["select_due"], (self.clock.now_ms(), -1))

    # ---------------------------------------------------------------------- runs
    async def record_run_start(
        self, job_id: str, *, lease_secs: float | None = None, owner: str | None = None
    ) -> str:
        async def body(db: aiosqlite.Connection) -> str:
            job = await _load_job(db, job_id)
            if job.running_run_id is not None:
                raise JobAlreadyRunning(
                    f"job {job.name!r} is already running (run {job.running_run_id})"
                )
            now = self.clock.now_ms()
            lease_ms = job.timeout_ms + 60_000 if lease_secs is None else round(lease_secs * 1000)
            holder = owner or f"manual:{planning.new_id()}"
            run = planning.start_run(job, RunTrigger.MANUAL, now, 1, now, holder, now + lease_ms)
            await db.execute(Q["insert_run"], run.to_row())
            await db.execute(Q["update_job_runtime"], job.runtime_params())
            return run.id

        return await self._write(body)

    async def complete_runs(
        self, completions: Sequence[Completion], *, owner: str | None
    ) -> list[bool]:
        for done in completions:
            if RunStatus(done.status) not in _FINAL_FOR_COMPLETION:
                raise InvalidInput(
                    f"a run can only be completed as success, failed, timeout or interrupted, "
                    f"not {done.status!r}"
                )
        if not completions:
            return []

        async def body(db: aiosqlite.Connection) -> list[bool]:
            ids = json.dumps([c.run_id for c in completions])
            rows = await db.execute_fetchall(Q["get_runs_by_ids"], (ids,))
            runs = {r.id: r for r in map(RunRecord.from_row, rows)}
            jobs = await _load_jobs(db, {r.job_id for r in runs.values()})
            now = self.clock.now_ms()
            answers: list[bool] = []
            finished: list[RunRecord] = []
            touched: dict[str, JobRecord] = {}
            deleted: set[str] = set()
            deliveries: list[tuple[object, ...]] = []
            for done in completions:
                run = runs.get(done.run_id)
                if (
                    run is None
                    or run.status != RunStatus.RUNNING.value
                    or (owner is not None and run.lease_owner != owner)
                ):
                    answers.append(False)
                    continue
                job = jobs.get(run.job_id)
                before = None if job is None or self._planner is None else job.to_public()
                action = planning.plan_finish(job, run, done, now, self.settings)
                finished.append(run)
                if before is not None and run.status in _NOTIFIED:
                    deliveries.extend(self._plan_deliveries(before, run, now))
                if job is not None and action == "update":
                    touched[job.id] = job
                elif job is not None and action == "delete":
                    deleted.add(job.id)
                    touched.pop(job.id, None)
                answers.append(True)
            await self._write_finished(db, finished, touched.values(), deleted)
            await db.executemany(Q["insert_delivery"], deliveries)
            return answers

        answers = await self._write(body)
        self._changed()
        return answers

    async def _write_finished(
        self,
        db: aiosqlite.Connection,
        runs: Iterable[RunRecord],
        jobs: Iterable[JobRecord],
        deleted: Iterable[str],
    ) -> None:
        await db.executemany(Q["finish_run"], [r.result_params() for r in runs])
        jobs = list(jobs)
        await db.executemany(Q["update_job_runtime"], [j.runtime_params() for j in jobs])
        await db.executemany(Q["delete_job"], [(job_id,) for job_id in deleted])
        keep = self.settings.runs_keep_per_job
        await db.executemany(
            Q["prune_job_runs"],
            [{"job_id": j.id, "keep": keep} for j in jobs if j.run_count > keep],
        )

    async def list_runs(self, job_id: str, limit: int = 20) -> list[CronRun]:
        rows = await self._read(Q["list_runs"], (job_id, limit))
        return [RunRecord.from_row(r).to_public() for r in rows]

    async def list_recent_runs(
        self,
        limit: int = 20,
        *,
        job_id: str | None = None,
        status: RunStatus | None = None,
    ) -> list[CronRun]:
        params: dict[str, object] = {
            "limit": limit,
            "job_id": job_id,
            "status": None if status is None else RunStatus(status).value,
        }
        rows = await self._read(Q["list_recent_runs"], params)
        return [RunRecord.from_row(r).to_public() for r in rows]

    async def get_run(self, run_id: str) -> CronRun | None:
        rows = await self._read(Q["get_run"], (run_id,))
        return RunRecord.from_row(rows[0]).to_public() if rows else None

    async def prune_runs(self, older_than: datetime, *, dry_run: bool = False) -> int:
        cutoff = to_ms(older_than)
        if dry_run:
            ((count,),) = await self._read(Q["count_old_runs"], (cutoff,))
            return int(count)

        async def body(db: aiosqlite.Connection) -> int:
            cursor = await db.execute(Q["delete_old_runs"], (cutoff,))
            return cursor.rowcount

        return await self._write(body)

    # ------------------------------------------------------------ delivery outbox
    def set_delivery_planner(self, planner: DeliveryPlanner | None) -> None:
        self._planner = planner

    def _plan_deliveries(self, job: CronJob, run: RunRecord, now: int) -> list[tuple[object, ...]]:
        assert self._planner is not None
        try:
            specs = self._planner(job, run.to_public())
        except Exception:
            log.exception(
                "job %s run %s: delivery planner failed; no notifications for it",
                run.job_name,
                run.id,
            )
            return []
        return [
            (
                run.id,
                run.job_id,
                run.job_name,
                s.destination,
                json.dumps(s.payload, ensure_ascii=False),
                now,
                now,
            )
            for s in specs
        ]

    async def claim_deliveries(self, owner: str, limit: int, lease_secs: float) -> list[Delivery]:
        async def body(db: aiosqlite.Connection) -> list[Delivery]:
            now = self.clock.now_ms()
            ids = [
                r[0]
                for r in await db.execute_fetchall(
                    Q["due_deliveries"], {"now": now, "limit": limit}
                )
            ]
            if not ids:
                return []
            rows = await db.execute_fetchall(
                Q["lease_deliveries"], (owner, now + round(lease_secs * 1000), json.dumps(ids))
            )
            return sorted(map(delivery_from_row, rows), key=lambda d: d.id)

        return await self._write(body)

    async def finish_deliveries(
        self, owner: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[bool]:
        if not outcomes:
            return []

        async def body(db: aiosqlite.Connection) -> list[bool]:
            now = self.clock.now_ms()
            answers: list[bool] = []
            for o in outcomes:
                params: tuple[str, int, str | None, int | None]
                if o.delivered:
                    params = ("delivered", now, o.error, now)
                elif o.retry_at is not None:
                    params = ("pending", to_ms(o.retry_at), o.error, None)
                else:
                    params = ("dead", now, o.error, None)
                uncount = 0 if o.attempted else 1
                cursor = await db.execute(
                    Q["finish_delivery"], (*params, uncount, o.delivery_id, owner)
                )
                answers.append(cursor.rowcount == 1)
            return answers

        answers = await self._write(body)
        if any(o.retry_at is not None for o in outcomes):
            self._changed()
        return answers

    async def list_deliveries(
        self, since_id: int, destinations: Sequence[str] | None, limit: int = 1000
    ) -> list[Delivery]:
        params = {
            "since": since_id,
            "everywhere": destinations is None,
            "destinations": json.dumps(list(destinations or ())),
            "limit": limit,
        }
        rows = await self._read(Q["list_deliveries"], params)
        return [delivery_from_row(r) for r in rows]

    async def next_delivery_at(self) -> datetime | None:
        ((value,),) = await self._read(Q["next_delivery_at"])
        return None if value is None else from_ms(int(value))

    # ----------------------------------------------------------- user preferences
    async def get_user_timezone(self, user_id: str) -> str | None:
        rows = await self._read(Q["get_user_timezone"], (user_id,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    async def set_user_timezone(self, user_id: str, timezone: str) -> None:
        check_zone(timezone)

        async def body(db: aiosqlite.Connection) -> None:
            await db.execute(Q["set_user_timezone"], (user_id, timezone, self.clock.now_ms()))

        await self._write(body)

    # ------------------------------------------------------------- conversations
    async def main_session_id(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise InvalidInput("session key must be a non-empty string")

        async def body(db: aiosqlite.Connection) -> str:
            now = self.clock.now_ms()
            await db.execute(Q["insert_session"], (planning.new_id(), key, now, now))
            ((session_id,),) = await db.execute_fetchall(Q["get_session_by_key"], (key,))
            return str(session_id)

        return await self._write(body)

    async def session_messages(self, session_id: str, limit: int) -> list[SessionMessage]:
        rows = await self._read(Q["session_messages"], (session_id, limit))
        return [SessionMessage(r[0], r[1], r[2], from_ms(r[3])) for r in rows]

    async def append_session_messages(
        self,
        session_id: str,
        messages: Sequence[tuple[str, str]],
        *,
        run_id: str | None = None,
        keep: int | None = None,
    ) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            now = self.clock.now_ms()
            await db.executemany(
                Q["insert_message"],
                [(session_id, role, content, run_id, now) for role, content in messages],
            )
            await db.execute(Q["touch_session"], (now, session_id))
            if keep is not None:
                await db.execute(
                    Q["trim_messages"], {"session_id": session_id, "keep": max(1, keep)}
                )

        await self._write(body)

    # --------------------------------------------------------- scheduler primitives
    async def claim_due(
        self, owner: str, limit: int, lease_secs: float, *, ahead_secs: float = 0
    ) -> list[Claim]:
        if limit <= 0:
            return []
        grace = round(self.settings.misfire_grace_secs * 1000)
        ahead = max(0, round(ahead_secs * 1000))

        async def body(db: aiosqlite.Connection) -> list[Claim]:
            now = self.clock.now_ms()
            lease_until = now + round(lease_secs * 1000)
            rows = await db.execute_fetchall(Q["select_due"], (now + ahead, limit))
            claims: list[Claim] = []
            jobs: list[JobRecord] = []
            new_runs: list[RunRecord] = []
            for row in rows:
                job = JobRecord.from_row(row)
                start = max(now, job.due_ms or now)  # a job claimed ahead starts on time
                plan = planning.plan_claim(job, start, owner, lease_until, grace)
                jobs.append(job)
                if not job.enabled and plan.run is None and plan.skipped is None:
                    log.error("job %s: %s", job.name, job.last_error)
                if plan.skipped is not None:
                    new_runs.append(plan.skipped)
                    log.warning("job %s: %s", job.name, plan.skipped.error)
                if plan.run is not None:
                    new_runs.append(plan.run)
                    claims.append(
                        Claim(
                            plan.run.id,
                            job.id,
                            job.name,
                            job.prompt,
                            _SESSION_MODES[job.session_mode],
                            job.user_id,
                            job.timeout_ms / 1000,
                            from_ms(plan.run.scheduled_for),
                            plan.run.attempt,
                            _TRIGGERS[plan.run.trigger],
                            from_ms(plan.run.started_at),
                            lease_until,
                        )
                    )
            await db.executemany(Q["update_job_runtime"], [j.runtime_params() for j in jobs])
            await db.executemany(Q["insert_run"], [r.to_row() for r in new_runs])
            return claims

        return await self._write(body)

    async def next_due_at(self) -> datetime | None:
        ((value,),) = await self._read(Q["next_due_at"])
        return None if value is None else from_ms(int(value))

    async def renew_leases(self, owner: str, lease_secs: float) -> set[str]:
        async def body(db: aiosqlite.Connection) -> set[str]:
            until = self.clock.now_ms() + round(lease_secs * 1000)
            rows = await db.execute_fetchall(Q["renew_leases"], (until, owner))
            return {str(row[0]) for row in rows}

        return await self._write(body)

    async def recover(
        self, *, alive_owner: str | None = None, repair: bool = True
    ) -> RecoveryReport:
        async def body(db: aiosqlite.Connection) -> RecoveryReport:
            now = self.clock.now_ms()
            expired = [
                RunRecord.from_row(r)
                for r in await db.execute_fetchall(Q["expired_runs"], (now, alive_owner))
            ]
            jobs = await _load_jobs(db, {r.job_id for r in expired})
            touched: dict[str, JobRecord] = {}
            for run in expired:
                error = (
                    f"interrupted: the lease of {run.lease_owner} expired at "
                    f"{from_ms(run.lease_expires_at or now).isoformat()} (its scheduler stopped "
                    "or was killed mid-run)"
                )
                job = jobs.get(run.job_id)
                done = Completion(run.id, RunStatus.INTERRUPTED, error=error, count_attempt=True)
                if planning.plan_finish(job, run, done, now, self.settings) and job is not None:
                    touched[job.id] = job
                log.warning("job %s run %s: %s", run.job_name, run.id, error)
            await self._write_finished(db, expired, touched.values(), ())
            repaired: list[JobRecord] = []
            if repair:  # whole-table scans: at start-up, not on every periodic pass
                await db.execute(Q["release_orphaned_jobs"])
                rows = await db.execute_fetchall(Q["jobs_missing_next_run"])
                repaired = [j for j in map(JobRecord.from_row, rows) if planning.repair(j, now)]
                await db.executemany(
                    Q["update_job_runtime"], [j.runtime_params() for j in repaired]
                )
            return RecoveryReport([r.id for r in expired], len(repaired))

        report = await self._write(body)
        if report.interrupted_run_ids or report.rescheduled_jobs:
            self._changed()
        return report


async def _load_job(db: aiosqlite.Connection, job_id: str) -> JobRecord:
    rows = list(await db.execute_fetchall(Q["get_job"], (job_id,)))
    if not rows:
        raise JobNotFound(f"no job with id {job_id!r}")
    return JobRecord.from_row(rows[0])


async def _load_jobs(db: aiosqlite.Connection, ids: set[str]) -> dict[str, JobRecord]:
    if not ids:
        return {}
    rows = await db.execute_fetchall(Q["get_jobs_by_ids"], (json.dumps(sorted(ids)),))
    return {rec.id: rec for rec in map(JobRecord.from_row, rows)}


async def _migrate(db: aiosqlite.Connection, path: str) -> None:
    migrations = load_migrations("sqlite")
    latest = migrations[-1][0]
    await db.execute("BEGIN IMMEDIATE")
    try:
        ((version,),) = await db.execute_fetchall("PRAGMA user_version")
        if version > latest:
            raise SchemaVersionError(
                f"{path} was written by a newer starpod-cron (schema version {version}; this "
                f"version understands up to {latest}). Upgrade starpod-cron to open it."
            )
        for number, script in migrations:
            if number <= version:
                continue
            for statement in _statements(script):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {number}")
            log.info("migrated %s to schema version %d", path, number)
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise
