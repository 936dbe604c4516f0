"""The store backends the tests run on: SQLite files, and PostgreSQL when STARPOD_PG_DSN names a
server (CI sets it). Each PostgreSQL test gets a schema of its own, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

PG_DSN = os.environ.get("STARPOD_PG_DSN", "")
needs_postgres = pytest.mark.skipif(
    not PG_DSN,
    reason="PostgreSQL tests need STARPOD_PG_DSN=postgresql://user@host/db (CI sets it)",
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=needs_postgres)]


def with_search_path(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


@asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A DSN whose search_path is a new, empty schema; the schema is dropped on exit."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await admin.close()
    try:
        yield with_search_path(PG_DSN, name)
    finally:
        admin = await asyncpg.connect(PG_DSN)
        try:
            await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
        finally:
            await admin.close()


@asynccontextmanager
async def store_url(backend: str, directory: str) -> AsyncIterator[str]:
    """Where a test's store lives on ``backend``."""
    if backend == "sqlite":
        yield os.path.join(directory, "jobs.db")
        return
    async with pg_schema() as dsn:
        yield dsn


async def tamper(url: str, sql: str) -> None:
    """Run ``sql`` on the store at ``url`` behind its back: damage as an older, buggier writer
    or a hand edit might have left it."""
    if not url.startswith("postgres"):

        def edit() -> None:
            with sqlite3.connect(url) as conn:
                conn.execute(sql)

        await asyncio.to_thread(edit)
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def query(url: str, sql: str) -> list[tuple[object, ...]]:
    """Read rows from the store at ``url`` behind its back (what the public API does not
    show, such as which process ran a run)."""
    if not url.startswith("postgres"):

        def read() -> list[tuple[object, ...]]:
            with sqlite3.connect(url) as conn:
                return list(conn.execute(sql))

        return await asyncio.to_thread(read)
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def assert_keeps_user_data(script: str) -> None:
    """A migration deletes no rows and no stored columns: a generated column (derived data)
    may be dropped to be re-added with a new formula, and an UPDATE may only fill a column
    the same script adds."""
    upper = script.upper()
    for forbidden in ("DELETE ", "TRUNCATE"):
        assert forbidden not in upper, forbidden
    for column in re.findall(r"DROP COLUMN (\w+)", upper):
        assert re.search(rf"ADD COLUMN {column} \w+ GENERATED ALWAYS AS", upper), column
    added = set(re.findall(r"ADD COLUMN (\w+)", upper))
    for assignment in re.findall(r"\bUPDATE \w+ SET (\w+)", upper):
        assert assignment in added, f"an UPDATE changes existing data ({assignment})"
