"""The hot queries read through the index meant for them, on both dialects, and never scan a
whole table: the planner's own account (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL)
of each named query, run against a store holding what a busy one holds: thousands of jobs,
finished runs, runs in flight, and deliveries mostly long delivered.

SQLite is asked without statistics (a store nobody ran ANALYZE on); PostgreSQL after ANALYZE
(what autovacuum does) with the parameters a scheduler sends."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from starpod_cron import CronStore, JobSpec, ManualClock, RunStatus, Schedule
from starpod_cron.store.dialects.postgres import PostgresDriver, Q
from starpod_cron.store.records import JOB_RUNTIME_COLUMNS, RUN_RESULT_COLUMNS
from starpod_cron.store.sqlfile import load_queries
from starpod_cron.store.types import Completion
from tests.backends import tamper

JOBS, USERS = 3000, ("alice", "bob")
OPEN_DELIVERIES = 15


@dataclass(frozen=True)
class Hot:
    query: str
    uses: tuple[str, ...]  # each index the plan must name ("a|b": either)
    pg_uses: tuple[str, ...] | None = None  # when PostgreSQL's index is another
    sqlite_rowid_scan: bool = False  # a newest-first walk of the table's rowid (with LIMIT)
    status: str | None = "failed"


RUNS_ID = ("sqlite_autoindex_runs_1",)
HOT = [
    Hot("claim_due_jobs", ("jobs_due",)),
    Hot("next_due_at", ("jobs_due",)),
    Hot("update_jobs_runtime", ("sqlite_autoindex_jobs_1",), ("jobs_pkey",)),
    Hot("lock_jobs", ("sqlite_autoindex_jobs_1",), ("jobs_pkey",)),
    Hot("lock_runs", RUNS_ID, ("runs_id_key",)),
    Hot("runs_present", RUNS_ID, ("runs_id_key",)),
    Hot("finish_runs", RUNS_ID, ("runs_id_key",)),
    Hot("renew_leases", ("runs_leases",), ("runs_id_key|runs_leases",)),
    Hot("expired_runs", ("runs_leases",)),
    Hot("running_owners", ("runs_leases",)),
    Hot("occurrence_runs", ("runs_job",)),
    Hot("list_runs", ("runs_job",)),
    Hot("list_recent_runs", (), ("runs_pkey",), sqlite_rowid_scan=True, status=None),
    Hot("list_job_runs_with_status", ("runs_job",)),
    Hot("list_running_runs", ("runs_leases",)),
    Hot("get_run", RUNS_ID, ("runs_id_key",)),
    Hot("get_job_by_name", ("jobs_owner_name",)),
    Hot("find_jobs_by_name", ("jobs_owner_name",)),
    Hot("list_jobs_for_user", ("jobs_user",)),
    Hot("owner_job_counts", ("jobs_user",)),
    Hot("names_taken", ("jobs_owner_name",), ("jobs_owner_name",)),
    Hot("claim_deliveries", ("deliveries_open",)),
    Hot("next_delivery_at", ("deliveries_pending", "deliveries_sending")),
    Hot("list_deliveries", ("INTEGER PRIMARY KEY",), ("deliveries_pkey",)),
    Hot("sending_owners", ("deliveries_sending",)),
]


@dataclass
class Busy:
    url: str
    now_ms: int
    job_id: str
    run_id: str
    running_id: str


@pytest.fixture
async def busy(url: str, clock: ManualClock) -> AsyncIterator[Busy]:
    store = await CronStore.open(url, clock=clock)
    try:
        hourly = Schedule.interval(every_ms=3_600_000)
        await store.add_jobs([JobSpec(f"job-{i}", "p", hourly) for i in range(JOBS)])
        for user in USERS:
            await store.add_jobs(
                [JobSpec(f"mine-{i}", "p", hourly, user_id=user) for i in range(100)]
            )
        run_id = ""
        for _ in range(2):  # two hours of runs, all finished
            clock.advance(3600)
            claims = await store.claim_due("node-a", JOBS * 2, 60)
            done = [Completion(c.run_id, RunStatus.SUCCESS, summary="ok") for c in claims]
            await store.complete_runs(done, owner="node-a")
            run_id = claims[0].run_id
        soon = clock.now() + timedelta(seconds=30)
        await store.add_jobs(
            [JobSpec(f"once-{i}", "p", Schedule.one_shot(soon)) for i in range(20)]
        )
        clock.advance(30)
        running = await store.claim_due("node-a", 10, 60)  # a few in flight
        job_id = running[0].job_id
        await tamper(url, _deliveries())
    finally:
        await store.close()
    if url.startswith("postgres"):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
    yield Busy(url, clock.now_ms(), job_id, run_id, running[0].run_id)


def _deliveries() -> str:
    """20,000 deliveries of the past (delivered, published events, a few dead) and a few open
    ones, over 50 destinations."""
    total = 20_000
    return f"""
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {total})
    INSERT INTO deliveries (run_id, job_id, job_name, destination, payload, status, attempts,
                            next_attempt_at, created_at, lease_owner, lease_expires_at)
    SELECT 'run-' || i, 'job', 'name', 'tg:' || (i % 50), '{{}}',
           CASE WHEN i > {total - OPEN_DELIVERIES} THEN
                     CASE WHEN i % 3 = 0 THEN 'sending' ELSE 'pending' END
                WHEN i % 2 = 0 THEN 'published' WHEN i % 97 = 0 THEN 'dead'
                ELSE 'delivered' END,
           1, 0, 0, 'node-a', 0
    FROM n
    """


def _params(b: Busy, hot: Hot, postgres: bool) -> dict[str, Any]:
    def listed(*items: object) -> object:
        return list(items) if postgres else json.dumps(list(items))

    return {
        **dict.fromkeys(JOB_RUNTIME_COLUMNS),
        **dict.fromkeys(RUN_RESULT_COLUMNS),
        "id": b.job_id,
        "ids": listed(b.running_id),
        "job_id": b.job_id,
        "job_ids": listed(b.job_id),
        "until": b.now_ms,
        "now": b.now_ms,
        "limit": 256,
        "owner": "node-a",
        "owners": listed("alice", ""),
        "names": listed("mine-1", "job-7"),
        "user_id": "alice",
        "name": "mine-1",
        "dead": listed("node-gone"),
        "held": listed(b.running_id),
        "all": False,
        "first": 0,
        "last": b.now_ms,
        "status": hot.status,
        "any": True,
        "prefixes": listed(),
        "since": 19_000,
        "everywhere": True,
        "destinations": listed(),
        "prefix": None,
    }


def _sqlite_plan(b: Busy, hot: Hot) -> str:
    sql = load_queries("sqlite")[hot.query]
    assert sql is not None
    params = _params(b, hot, postgres=False)
    if hot.query == "finish_runs":
        params["id"] = b.running_id
    with sqlite3.connect(b.url) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(str(r[3]) for r in rows)


async def _pg_plan(b: Busy, hot: Hot) -> str:
    query = Q[hot.query]
    params = _params(b, hot, postgres=True)
    conn = await asyncpg.connect(b.url)
    try:
        if query.bulk:
            # a bulk statement (unnest of one array per column), typed as the driver types it
            driver = await PostgresDriver.connect(b.url, create=False)
            try:
                columns = {
                    "finish_runs": (*RUN_RESULT_COLUMNS, "id"),
                    "update_jobs_runtime": (*JOB_RUNTIME_COLUMNS, "id"),
                }[hot.query]
                sql = driver.bulk_sql(query, columns)
            finally:
                await driver.close()
            ids = b.running_id if hot.query == "finish_runs" else b.job_id
            args: list[object] = [[None] for _ in columns[:-1]] + [[ids]]
        else:
            assert query.sql is not None
            sql, args = query.sql, query.args(params)
        rows = await conn.fetch(f"EXPLAIN {sql}", *args)
    finally:
        await conn.close()
    return " | ".join(str(r[0]).strip() for r in rows)


_SQLITE_SCAN = re.compile(r"\bSCAN (\w++)(?! USING| VIRTUAL)")
_PG_SCAN = re.compile(r"Seq Scan on (\w+)")


@pytest.mark.parametrize("hot", HOT, ids=[h.query for h in HOT])
async def test_a_hot_query_reads_through_its_index_and_scans_no_table(
    busy: Busy, backend: str, hot: Hot
) -> None:
    postgres = backend == "postgres"
    plan = await _pg_plan(busy, hot) if postgres else _sqlite_plan(busy, hot)
    wanted = hot.pg_uses if postgres and hot.pg_uses is not None else hot.uses
    for index in wanted:
        either = index.split("|")
        assert any(i in plan for i in either), f"{hot.query} does not use {index}: {plan}"
    if postgres:
        assert not _PG_SCAN.search(plan), f"{hot.query} scans a table: {plan}"
        return
    scans = [
        m.group(1)
        for m in _SQLITE_SCAN.finditer(plan)
        if m.group(1) not in ("CONSTANT", "json_each", "p", "n", "newest")
    ]
    if hot.sqlite_rowid_scan:
        assert scans == ["runs"] and "TEMP B-TREE" not in plan, plan
    else:
        assert not scans, f"{hot.query} scans {scans}: {plan}"


async def test_no_index_is_left_that_no_query_uses(busy: Busy, backend: str) -> None:
    """Every index of the schema is named by the plan of some query (or is a key a write
    relies on: a primary or unique key, a unique constraint enforcing exactly once)."""
    postgres = backend == "postgres"
    if postgres:
        conn = await asyncpg.connect(busy.url)
        try:
            rows = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            )
        finally:
            await conn.close()
        indexes = {str(r[0]) for r in rows if "UNIQUE" not in str(r[1])}
    else:
        with sqlite3.connect(busy.url) as conn:
            rows = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            ).fetchall()
        indexes = {str(r[0]) for r in rows if "UNIQUE" not in str(r[1])}
    names = [name for name, sql in load_queries(backend).items() if sql]
    used: set[str] = set()
    for name in names:
        try:
            hot = Hot(name, ())
            plan = await _pg_plan(busy, hot) if postgres else _sqlite_plan(busy, hot)
        except (KeyError, sqlite3.Error, asyncpg.PostgresError, AssertionError):
            continue  # a statement without a plan of interest (DDL, bulk inserts, upserts)
        used |= {index for index in indexes if index in plan}
    cold = {"nodes_last_seen", "login_sessions_expires", "messages_session"}
    assert indexes - used - cold == set(), f"indexes no query uses: {indexes - used - cold}"
