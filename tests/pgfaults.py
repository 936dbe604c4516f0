"""Connection resets for the tests that run `serve` on PostgreSQL: each gateway connects with
an ``application_name`` of its own (a query parameter of its store URL), so a test terminates
exactly that gateway's backends (``pg_terminate_backend``), never another test's."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx


def named(dsn: str, prefix: str = "spc") -> tuple[str, str]:
    """``(dsn with a new application_name, that name)``."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    query.append(("application_name", name))
    return urlunsplit(parts._replace(query=urlencode(query))), name


async def terminate(admin: asyncpg.Connection[asyncpg.Record], application_name: str) -> int:
    """Terminate every backend connected as ``application_name``; how many there were."""
    count = await admin.fetchval(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = $1 AND pid <> pg_backend_pid()",
        application_name,
    )
    return int(count)


def http_port(log: Path) -> int:
    """The dashboard port a `serve` printed in its log."""
    match = re.search(r"Dashboard and API on http://[^:]+:(\d+)/", log.read_text())
    assert match, log.read_text()
    return int(match.group(1))


async def healthy(port: int) -> bool:
    """True if the node's ``/healthz`` answers 200 within 2 s."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            answer = await client.get(f"http://127.0.0.1:{port}/healthz")
    except httpx.HTTPError:
        return False
    return answer.status_code == 200
