"""The floor: what the hardware allows for a burst, measured beside the scheduler rows.

Only the irreducible writes per occurrence, no scheduler, no event loop, no executor: ``n``
jobs due at one instant, then per batch of 256 one transaction that selects the due jobs,
clears their next fire time and inserts their runs, and one that marks those runs successful.

python -m bench.drivers.floor floor --n 10000        # plain sqlite3, WAL, synchronous=FULL
python -m bench.drivers.floor floor_wide --n 10000   # the same writes on starpod-cron's schema
python -m bench.drivers.floor floor_wide_random ...  # ... with ids random within a millisecond
python -m bench.drivers.floor floor_split --n 10000  # ... with the jobs row split hot/cold
python -m bench.drivers.floor floor_pg --n 10000     # asyncpg, a fresh schema ($STARPOD_PG_DSN)

``floor`` is the floor of the issue: two small tables with integer ids (jobs with a partial
index on the next fire time; runs with only its primary key). ``floor_wide`` runs the same three
writes per occurrence on the real tables (every column and index of the migrations, the jobs
added by the store), so the difference to ``floor`` is what the schema's width costs; its
``_random`` twin uses ids laid out as before time-ordered ids (48 bits of ms, 80 random bits).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starpod_cron import CronStore, JobSpec, Schedule
from starpod_cron.store.ids import new_id
from starpod_cron.store.records import JOB_COLUMNS, JOB_RUNTIME_COLUMNS, RUN_COLUMNS

from .common import args, emit, rss_mb

BATCH = 256
CONFIG = "plain sqlite3, WAL, synchronous=FULL, BEGIN IMMEDIATE per 256 claims / completions"


def _timed(work: Callable[[], tuple[float, float]]) -> dict[str, Any]:
    cpu, began = time.process_time(), time.perf_counter()
    claim_s, complete_s = work()
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"makespan_s": wall, "claim_s": claim_s, "complete_s": complete_s, "cpu_s": cpu}


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def small(n: int, directory: str) -> dict[str, Any]:
    conn = _connect(os.path.join(directory, "floor.db"))
    conn.executescript(
        """
        CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, next_at INTEGER);
        CREATE INDEX jobs_next ON jobs (next_at) WHERE next_at IS NOT NULL;
        CREATE TABLE runs (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL,
                           scheduled_for INTEGER NOT NULL, status TEXT NOT NULL,
                           started_at INTEGER NOT NULL, completed_at INTEGER);
        """
    )
    due = int(time.time() * 1000)
    with conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO jobs (name, next_at) VALUES (?, ?)", ((f"job-{i}", due) for i in range(n))
        )

    def work() -> tuple[float, float]:
        claim_s = complete_s = 0.0
        first = 1
        while True:
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "SELECT id, next_at FROM jobs WHERE next_at <= ? ORDER BY next_at LIMIT ?",
                (due, BATCH),
            ).fetchall()
            if not rows:
                conn.execute("COMMIT")
                return claim_s, complete_s
            now = int(time.time() * 1000)
            conn.executemany("UPDATE jobs SET next_at = NULL WHERE id = ?", ((r[0],) for r in rows))
            conn.executemany(
                "INSERT INTO runs (id, job_id, scheduled_for, status, started_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                ((first + k, job_id, at, now) for k, (job_id, at) in enumerate(rows)),
            )
            conn.execute("COMMIT")
            t1 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            done = int(time.time() * 1000)
            conn.executemany(
                "UPDATE runs SET status = 'success', completed_at = ? WHERE id = ?",
                ((done, first + k) for k in range(len(rows))),
            )
            conn.execute("COMMIT")
            first += len(rows)
            claim_s, complete_s = claim_s + t1 - t0, complete_s + time.perf_counter() - t1

    result = _timed(work)
    runs = conn.execute("SELECT count(*) FROM runs WHERE status = 'success'").fetchone()[0]
    conn.close()
    return {**result, "runs": runs, "per_run_us": result["makespan_s"] / n * 1e6, "config": CONFIG}


def _random_id(now_ms: int) -> str:
    """An id as they were before ids were time-ordered: random within a millisecond."""
    return f"{now_ms & 0xFFFFFFFFFFFF:012x}{random.getrandbits(80):020x}"


HOT = (*JOB_RUNTIME_COLUMNS, "max_instances")
"""``floor_split``'s narrow table: what claims and completions write, and what due_at reads."""
DUE_AT = """due_at INTEGER GENERATED ALWAYS AS (
    CASE WHEN enabled = 1 AND running_count < max_instances
         THEN coalesce(held_until, min(coalesce(next_run_at + fire_offset_ms, retry_at),
                                       coalesce(retry_at, next_run_at + fire_offset_ms)))
    END) VIRTUAL"""


def _split(conn: sqlite3.Connection) -> str:
    """Split the jobs table in two, as a hot/cold schema would: ``hot`` (id, the columns of
    ``HOT`` and the due index) and ``cold`` (id and the rest, with the name indexes); the
    select of a claim joins them, in ``JOB_COLUMNS`` order."""
    cold = [c for c in JOB_COLUMNS if c not in HOT and c != "id"]
    conn.executescript(
        f"""
        BEGIN;
        CREATE TABLE hot (id TEXT PRIMARY KEY, {", ".join(HOT)}, {DUE_AT});
        INSERT INTO hot (id, {", ".join(HOT)}) SELECT id, {", ".join(HOT)} FROM jobs;
        CREATE INDEX hot_due ON hot (due_at) WHERE due_at IS NOT NULL;
        CREATE TABLE cold (id TEXT PRIMARY KEY, {", ".join(cold)});
        INSERT INTO cold SELECT id, {", ".join(cold)} FROM jobs;
        CREATE INDEX cold_user ON cold (user_id, name);
        CREATE UNIQUE INDEX cold_owner_name ON cold (name, coalesce(user_id, ''));
        DROP TABLE jobs;
        COMMIT;
        """
    )
    picked = ", ".join(("h." if c in HOT or c == "id" else "c.") + c for c in JOB_COLUMNS)
    return (
        f"SELECT {picked} FROM hot h JOIN cold c ON c.id = h.id WHERE h.due_at <= ? "
        "ORDER BY h.due_at LIMIT ?"
    )


def wide(
    n: int, directory: str, make_id: Callable[[int], str], split: bool = False
) -> dict[str, Any]:
    """The floor's writes on starpod-cron's own tables: the jobs made by the store (all their
    columns and indexes), each claim inserting a full run row, each completion its results.
    ``split``: the jobs table split hot/cold first (:func:`_split`), the claim writing ``hot``."""
    path = os.path.join(directory, "wide.db")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)  # claimed "early"

    async def seed() -> None:
        store = await CronStore.open(path)
        await store.add_jobs([JobSpec("template", "p", Schedule.one_shot(at))])
        await store.close()

    asyncio.run(seed())
    conn = _connect(path)
    template = conn.execute("SELECT * FROM jobs WHERE name = 'template'").fetchone()
    columns = [d[0] for d in conn.execute("SELECT * FROM jobs LIMIT 0").description]
    stored = [c for c in columns if c != "due_at"]  # a generated column
    index = {c: columns.index(c) for c in stored}
    created = int(time.time() * 1000)
    with conn:
        conn.execute("BEGIN")
        conn.execute("DELETE FROM jobs")
        rows = []
        for i in range(n):
            row = [template[index[c]] for c in stored]
            row[stored.index("id")], row[stored.index("name")] = make_id(created), f"job-{i}"
            rows.append(row)
        marks = ", ".join("?" * len(stored))
        conn.executemany(f"INSERT INTO jobs ({', '.join(stored)}) VALUES ({marks})", rows)
    run_marks = ", ".join("?" * len(RUN_COLUMNS))
    insert_run = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({run_marks})"
    select = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE due_at <= ? ORDER BY due_at LIMIT ?"
    table = "jobs"
    if split:
        select, table = _split(conn), "hot"
    job_id, job_name, next_run = (JOB_COLUMNS.index(c) for c in ("id", "name", "next_run_at"))
    until = int(at.timestamp() * 1000) + 1

    def run_row(job: tuple[Any, ...], now: int) -> tuple[Any, ...]:
        values: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
        values.update(
            id=make_id(now),
            job_id=job[job_id],
            job_name=job[job_name],
            trigger="scheduled",
            scheduled_for=job[next_run],
            attempt=1,
            started_at=now,
            status="running",
            lease_owner="floor",
            lease_expires_at=now + 60_000,
            lease_renewed_at=now,
            silent=0,
        )
        return tuple(values[c] for c in RUN_COLUMNS)

    def work() -> tuple[float, float]:
        claim_s = complete_s = 0.0
        while True:
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            jobs = conn.execute(select, (until, BATCH)).fetchall()
            if not jobs:
                conn.execute("COMMIT")
                return claim_s, complete_s
            now = int(time.time() * 1000)
            conn.executemany(
                f"UPDATE {table} SET next_run_at = NULL, last_run_at = ? WHERE id = ?",
                ((now, j[job_id]) for j in jobs),
            )
            runs = [run_row(j, now) for j in jobs]
            conn.executemany(insert_run, runs)
            conn.execute("COMMIT")
            t1 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            done = int(time.time() * 1000)
            conn.executemany(
                "UPDATE runs SET status = 'success', completed_at = ?, lease_owner = NULL, "
                "lease_expires_at = NULL, result_summary = '', duration_ms = ? WHERE id = ?",
                ((done, done - now, r[0]) for r in runs),
            )
            conn.execute("COMMIT")
            claim_s, complete_s = claim_s + t1 - t0, complete_s + time.perf_counter() - t1

    result = _timed(work)
    runs = conn.execute("SELECT count(*) FROM runs WHERE status = 'success'").fetchone()[0]
    conn.close()
    config = "starpod-cron's tables and indexes, " + CONFIG.removeprefix("plain ")
    if split:
        config = "the jobs table split hot/cold, " + config
    return {**result, "runs": runs, "per_run_us": result["makespan_s"] / n * 1e6, "config": config}


async def on_postgres(n: int) -> dict[str, Any]:
    """The floor on PostgreSQL: the same two small tables and transactions, through asyncpg
    (one connection; read committed; FOR UPDATE SKIP LOCKED as a claimer among others would)."""
    import asyncpg

    from .starpod_pg import _drop, _schema

    name, dsn = await _schema()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            CREATE TABLE jobs (id bigint PRIMARY KEY, name text NOT NULL, next_at bigint);
            CREATE INDEX jobs_next ON jobs (next_at) WHERE next_at IS NOT NULL;
            CREATE TABLE runs (id bigint PRIMARY KEY, job_id bigint NOT NULL,
                               scheduled_for bigint NOT NULL, status text NOT NULL,
                               started_at bigint NOT NULL, completed_at bigint);
            """
        )
        due = int(time.time() * 1000)
        await conn.copy_records_to_table(
            "jobs", records=[(i + 1, f"job-{i}", due) for i in range(n)]
        )
        await conn.execute("ANALYZE jobs")
        claim_s = complete_s = 0.0
        cpu, began = time.process_time(), time.perf_counter()
        next_run = 1
        while True:
            t0 = time.perf_counter()
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT id, next_at FROM jobs WHERE next_at <= $1 ORDER BY next_at "
                    "LIMIT $2 FOR UPDATE SKIP LOCKED",
                    due,
                    BATCH,
                )
                if not rows:
                    break
                ids = [r["id"] for r in rows]
                now = int(time.time() * 1000)
                await conn.execute("UPDATE jobs SET next_at = NULL WHERE id = ANY($1)", ids)
                run_ids = list(range(next_run, next_run + len(rows)))
                next_run += len(rows)
                await conn.execute(
                    "INSERT INTO runs (id, job_id, scheduled_for, status, started_at) "
                    "SELECT r, j, s, 'running', $4 FROM unnest($1::bigint[], $2::bigint[], "
                    "$3::bigint[]) AS v(r, j, s)",
                    run_ids,
                    ids,
                    [r["next_at"] for r in rows],
                    now,
                )
            t1 = time.perf_counter()
            async with conn.transaction():
                await conn.execute(
                    "UPDATE runs SET status = 'success', completed_at = $1 WHERE id = ANY($2)",
                    int(time.time() * 1000),
                    run_ids,
                )
            claim_s, complete_s = claim_s + t1 - t0, complete_s + time.perf_counter() - t1
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        runs = await conn.fetchval("SELECT count(*) FROM runs WHERE status = 'success'")
    finally:
        await conn.close()
        await _drop(name)
    return {
        "makespan_s": wall,
        "claim_s": claim_s,
        "complete_s": complete_s,
        "cpu_s": cpu,
        "runs": runs,
        "per_run_us": wall / n * 1e6,
        "config": "asyncpg, one connection, read committed, 256 per transaction",
    }


def main() -> None:
    a = args()
    workloads: dict[str, Callable[[], dict[str, Any]]] = {
        "floor": lambda: small(a.n, a.dir),
        "floor_wide": lambda: wide(a.n, a.dir, new_id),
        "floor_wide_random": lambda: wide(a.n, a.dir, _random_id),
        "floor_split": lambda: wide(a.n, a.dir, new_id, split=True),
        "floor_pg": lambda: asyncio.run(on_postgres(a.n)),
    }
    result = workloads[a.workload]()
    emit({**result, "rss_mb": rss_mb()})


if __name__ == "__main__":
    main()
