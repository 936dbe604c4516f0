"""The store's SQL is kept as SQL, once: every query a script names exists in every dialect, a
query the same in both dialects lives only in common.sql, and no script holds SQL text."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from starpod_cron.store import sqlfile
from starpod_cron.store.dialects.sqlitefile import run_to_end
from starpod_cron.store.sqlfile import load_queries, parameter_names, parameters

OPS = Path(__file__).resolve().parents[2] / "starpod_cron" / "store" / "ops"
NAMED = re.compile(
    r"""(?:tx\.(?:rows|one|value|execute|execute_many)|_rows|_value|_jobs|_runs)\(\s*f?"(\w+)"""
)


def test_every_query_a_script_names_exists_in_both_dialects() -> None:
    sqlite, postgres = load_queries("sqlite"), load_queries("postgres")
    named = {m for p in OPS.glob("*.py") for m in NAMED.findall(p.read_text())}
    named = {n for n in named if not n.startswith(("count_", "delete_"))} | {
        f"{verb}_old_{what}"
        for verb in ("count", "delete")
        for what in ("runs", "messages", "deliveries")
    }
    assert len(named) > 60
    assert sorted(named - set(sqlite)) == [] and sorted(named - set(postgres)) == []


def test_a_query_the_same_in_both_dialects_is_written_once() -> None:
    sqlite, postgres = load_queries("sqlite"), load_queries("postgres")
    same = [n for n in set(sqlite) & set(postgres) if sqlite[n] == postgres[n]]
    common = set(sqlfile._blocks("common.sql"))
    assert sorted(n for n in same if n not in common) == []


def test_no_script_holds_sql_text() -> None:
    for path in OPS.glob("*.py"):
        text = path.read_text()
        assert not re.search(r'"\s*(SELECT|INSERT|UPDATE|DELETE|ANALYZE|PRAGMA)\b', text), path


def test_named_parameters_skip_literals_and_casts() -> None:
    sql = "SELECT ':no', x::text FROM t WHERE a = :a AND b = ANY(:b::text[]) AND c = :a"
    assert parameter_names(sql) == ["a", "b"]
    numbered = parameters(sql, lambda n: f"${parameter_names(sql).index(n) + 1}")
    assert (
        numbered == "SELECT ':no', x::text FROM t WHERE a = $1 AND b = ANY($2::text[]) AND c = $1"
    )


def test_a_sqlite_script_that_suspends_is_refused() -> None:
    async def script() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        run_to_end(script())


async def test_sqlite_checks_new_names_by_owner_and_name_not_by_scanning_an_owners_jobs(
    tmp_path: Path,
) -> None:
    """A batch add looks each new name up in the (name, owner) index. Left to the planner the
    query scanned every job of the owner per new name: 20,000 jobs added in one batch to a store
    holding 5,000 took over 10 minutes (bench `add`)."""
    import sqlite3

    from starpod_cron import CronStore, JobSpec, Schedule

    path = tmp_path / "plan.db"
    store = await CronStore.open(str(path))
    hourly = Schedule.interval(every_ms=3_600_000)
    await store.add_jobs([JobSpec(f"old-{i}", "p", hourly) for i in range(200)])
    await store.close()
    query = load_queries("sqlite")["names_taken"]
    with sqlite3.connect(path) as conn:
        plan = " | ".join(
            row[3]
            for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", {"owners": "[]", "names": "[]"})
        )
        owners, names = '["", "", ""]', '["new-1", "old-7", "new-2"]'
        found = conn.execute(query, {"owners": owners, "names": names}).fetchall()
    assert "jobs_owner_name (name=? AND <expr>=?)" in plan, plan
    assert found == [(None, "old-7")]
