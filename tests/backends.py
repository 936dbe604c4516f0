"""The store backends the tests run on: SQLite files and PostgreSQL, always both. The server is
the one STARPOD_PG_DSN names (CI sets it), else the suite's own (tests/pgserver.py sets
STARPOD_PG_DSN at the start of the session). Each PostgreSQL test gets a schema of its own,
dropped afterwards."""

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

BACKENDS = ["sqlite", "postgres"]
needs_postgres = pytest.mark.postgres
"""Marks a test that only applies to PostgreSQL (never a skip: the session has a server)."""


def pg_dsn() -> str:
    """The server's URL (the admin connection of the tests; a test's store gets a schema)."""
    dsn = os.environ.get("STARPOD_PG_DSN")
    if not dsn:
        raise RuntimeError("STARPOD_PG_DSN is unset: tests/pgserver.py did not run")
    return dsn


def __getattr__(name: str) -> str:
    """``PG_DSN``, read when a test module imports it (after the session set it)."""
    if name == "PG_DSN":
        return pg_dsn()
    raise AttributeError(name)


def with_search_path(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


@asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A DSN whose search_path is a new, empty schema; the schema is dropped on exit."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_dsn())
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await admin.close()
    try:
        yield with_search_path(pg_dsn(), name)
    finally:
        admin = await asyncpg.connect(pg_dsn())
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
