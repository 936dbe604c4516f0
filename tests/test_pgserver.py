"""tests/pgserver.py: with STARPOD_PG_DSN unset, a pytest session (4 xdist workers) starts ONE
PostgreSQL of its own, every worker uses it, and it is stopped and removed at the end; with
STARPOD_PG_DSN set, the session uses that server and starts none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from starpod_cron.devpg import LocalPostgres

pytestmark = pytest.mark.slow
PLUGINS = ("-p", "tests.pgserver", "-p", "no:cacheprovider")
ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import asyncio, json, os
import asyncpg, pytest

@pytest.mark.parametrize("i", range(8))
def test_probe(i, worker_id):
    dsn = os.environ["STARPOD_PG_DSN"]

    async def started():
        conn = await asyncpg.connect(dsn)
        try:
            return str(await conn.fetchval("SELECT pg_postmaster_start_time()"))
        finally:
            await conn.close()

    with open(os.environ["PROBE_OUT"], "a") as out:
        out.write(json.dumps([worker_id, dsn, asyncio.run(started())]) + "\\n")
"""


def session(tmp_path: Path, env: dict[str, str]) -> list[list[str]]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    out = tmp_path / "probe.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "4", *PLUGINS, "test_probe.py"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT), "PROBE_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.timeout(300)
def test_a_session_without_a_server_starts_one_for_every_worker_and_stops_it(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STARPOD_PG_DSN"}
    rows = session(tmp_path, env)
    assert len(rows) == 8 and len({worker for worker, _, _ in rows}) > 1
    assert len({(dsn, started) for _, dsn, started in rows}) == 1  # one server, all workers
    data_dir = Path(unquote(urlsplit(rows[0][1]).hostname or ""))
    assert data_dir.name == "data" and data_dir.parent.name.startswith("starpod-pg-")
    assert not data_dir.parent.exists()  # stopped and removed at the end of the session


@pytest.mark.timeout(300)
def test_a_session_given_a_server_uses_it(tmp_path: Path) -> None:
    # not under tmp_path: every pytest session resets /tmp/pytest-of-USER to 0700, which the
    # server's own user could then not pass
    with tempfile.TemporaryDirectory(prefix="given-pg-") as where:
        given = LocalPostgres(Path(where) / "data")
        try:
            url = given.start()
            rows = session(tmp_path, {**os.environ, "STARPOD_PG_DSN": url})
        finally:
            given.stop()
    assert {dsn for _, dsn, _ in rows} == {url}
