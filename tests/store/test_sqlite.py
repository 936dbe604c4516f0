"""SQLite-specific behaviour: the schema version, migrations and the file."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from starpod_cron import CronStore, Overlap, Schedule, SchemaVersionError
from starpod_cron.store.dialects.sqlitefile import statements
from starpod_cron.store.sqlfile import load_migrations
from tests.backends import assert_keeps_user_data


def test_migrations_never_delete_user_data() -> None:
    """No migration deletes rows or columns; a table is dropped only after every row was
    copied into its rebuilt successor (SQLite cannot drop a column constraint in place). A
    generated column (derived data) may be dropped to be re-added with a new formula, and an
    UPDATE may only fill a column added in the same script."""
    for _, script in load_migrations("sqlite"):
        assert_keeps_user_data(script)
        upper = script.upper()
        for table in re.findall(r"DROP TABLE (\w+)", upper):
            copy = re.search(
                rf"INSERT INTO {table}_V\d+ \(.*?\)\s*SELECT\s.*?\sFROM {table};", upper, re.S
            )
            assert copy is not None, f"{table} is dropped without being copied first"
            assert copy.start() < upper.index(f"DROP TABLE {table}")
            assert f"ALTER TABLE {table}_V" in upper


def _database_at(path: str, version: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    for number, script in load_migrations("sqlite"):
        if number > version:
            break
        for statement in statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.commit()
    return conn


async def test_upgrading_a_full_version_4_database_keeps_every_row(tmp_path: Path) -> None:
    path = str(tmp_path / "v4.db")
    conn = _database_at(path, 4)
    conn.execute(
        "INSERT INTO jobs (id, name, prompt, schedule_kind, schedule_expr, enabled, "
        "delete_after_run, timezone, created_at, updated_at, next_run_at, max_retries, "
        "timeout_ms, session_mode, user_id, misfire_policy, origin, run_count) VALUES "
        "('a', 'same-name', 'p1', 'cron', '0 9 * * *', 1, 0, 'Europe/Rome', 1, 2, 3, 3, "
        "7200000, 'isolated', NULL, 'run_once', '{\"telegram_chat_id\":1}', 5), "
        "('b', 'other', 'p2', 'interval', '60000', 0, 1, 'UTC', 1, 2, NULL, 0, 1000, 'main', "
        "'alice', 'skip', NULL, 0)"
    )
    conn.execute(
        "INSERT INTO runs (id, job_id, job_name, trigger, scheduled_for, attempt, started_at, "
        "status, result_summary, prompt_tokens) VALUES "
        "('r1', 'a', 'same-name', 'schedule', 3, 1, 3, 'success', 'done', 12)"
    )
    conn.execute(
        "INSERT INTO deliveries (run_id, job_id, job_name, destination, payload, status, "
        "next_attempt_at, created_at) "
        "VALUES ('r1', 'a', 'same-name', 'tg:1', '{}', 'pending', 3, 3)"
    )
    conn.execute("INSERT INTO sessions VALUES ('s1', 'agent', 1, 1)")
    conn.execute(
        "INSERT INTO messages (session_id, role, content, created_at) "
        "VALUES ('s1', 'user', 'hi', 1)"
    )
    conn.execute("INSERT INTO user_prefs VALUES ('alice', 'Asia/Tokyo', 1)")
    conn.commit()
    tables = ("jobs", "runs", "deliveries", "sessions", "messages", "user_prefs")
    columns = {
        t: [c[1] for c in conn.execute(f"PRAGMA table_info({t})") if c[1] != "due_at"]
        for t in tables
    }
    before = {
        t: conn.execute(f"SELECT {', '.join(columns[t])} FROM {t} ORDER BY 1").fetchall()
        for t in tables
    }
    conn.close()
    async with CronStore.open(path) as store:
        assert {j.name for j in await store.list_jobs()} == {"same-name", "other"}
        # names are now per owner: alice may have a job called like an agent-level one
        await store.add_job_full("same-name", "mine", Schedule.cron("0 9 * * *"), user_id="alice")
    with sqlite3.connect(path) as conn:
        for table, rows in before.items():
            listed = ", ".join(columns[table])
            after = conn.execute(f"SELECT {listed} FROM {table} ORDER BY 1").fetchall()
            assert [row for row in after if row[0] in {r[0] for r in rows}] == rows, table


async def test_upgrading_to_version_7_keeps_a_running_job_running(tmp_path: Path) -> None:
    path = str(tmp_path / "v6.db")
    conn = _database_at(path, 6)
    conn.execute(
        "INSERT INTO jobs (id, name, prompt, schedule_kind, schedule_expr, enabled, "
        "delete_after_run, timezone, created_at, updated_at, next_run_at, max_retries, "
        "timeout_ms, session_mode, misfire_policy, run_count, running_run_id) VALUES "
        "('busy', 'busy', 'p', 'interval', '60000', 1, 0, 'UTC', 1, 1, 5, 3, 1000, 'isolated', "
        "'run_once', 1, 'r1'), "
        "('idle', 'idle', 'p', 'interval', '60000', 1, 0, 'UTC', 1, 1, 5, 3, 1000, 'isolated', "
        "'run_once', 0, NULL)"
    )
    conn.execute(
        "INSERT INTO runs (id, job_id, job_name, trigger, scheduled_for, attempt, started_at, "
        "status, lease_owner, lease_expires_at) VALUES "
        "('r1', 'busy', 'busy', 'schedule', 5, 1, 5, 'running', 'someone', 9999999999999)"
    )
    conn.execute(
        "INSERT INTO deliveries (run_id, job_id, job_name, destination, payload, status, "
        "next_attempt_at, created_at) VALUES ('r0', 'busy', 'busy', 'tg:1', '{}', 'pending', 3, 3)"
    )
    conn.commit()
    conn.close()
    async with CronStore.open(path) as store:
        busy, idle = await store.get_job("busy"), await store.get_job("idle")
        assert busy is not None and busy.running_count == 1 and busy.running_run_id == "r1"
        assert idle is not None and idle.running_count == 0
        assert (busy.overlap, busy.max_instances, busy.jitter_secs) == (Overlap.SKIP, 1, 0)
        assert [c.job_id for c in await store.claim_due("me", 10, 30)] == ["idle"]
        (kept,) = await store.list_deliveries(0, None, 10)
        assert (kept.run_id, kept.destination) == ("r0", "tg:1")


async def test_reopening_keeps_data_and_schema_version(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.db")
    async with CronStore.open(path) as store:
        await store.add_job("keep-me", "p", Schedule.cron("0 9 * * *"))
    store = await CronStore.open(path)  # the awaitable form
    assert [j.name for j in await store.list_jobs()] == ["keep-me"]
    await store.close()
    await store.close()  # idempotent
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert version == load_migrations("sqlite")[-1][0] and mode == "wal"


async def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = str(tmp_path / "future.db")
    async with CronStore.open(path) as store:
        await store.add_job("j", "p", Schedule.cron("0 9 * * *"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaVersionError, match=r"newer starpod-cron.*99"):
        await CronStore.open(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM jobs").fetchall() == [("j",)]
        assert conn.execute("PRAGMA user_version").fetchone() == (99,)


async def test_sqlite_url_form(tmp_path: Path) -> None:
    async with CronStore.open(f"sqlite:///{tmp_path / 'url.db'}") as store:
        await store.add_job("j", "p", Schedule.cron("0 9 * * *"))
    assert (tmp_path / "url.db").exists()
