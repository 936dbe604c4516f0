"""A PostgreSQL connection reset never takes a node down (`pg_terminate_backend`, as a failover
or a pooler restart does it), a failure that does stop a node exits 1 (so systemd's
`Restart=on-failure` restarts it), and a `postgresql://` URL's query parameters reach the
server."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from starpod_cron import CronStore, JobSpec, Schedule
from tests.backends import needs_postgres, pg_dsn, pg_schema, query
from tests.pgfaults import healthy, http_port, named, terminate
from tests.processes import environment, run_cli, serve

pytestmark = pytest.mark.slow

ROUNDS = 25
JOBS = 150


def agent_toml(url: str) -> str:
    return f"""
[cron]
tick_secs = 1
lease_secs = 5
max_concurrent_runs = 200

[store]
url = "{url}"

[executor]
kind = "python"
target = "tests.gateway.targets:run"
"""


@needs_postgres
@pytest.mark.timeout(180)
async def test_serve_stays_up_through_25_connection_resets(tmp_path: Path) -> None:
    async with pg_schema() as dsn:
        url, app = named(dsn)
        async with CronStore.open(dsn) as store:
            every = Schedule.interval(every_ms=1000)
            await store.add_jobs([JobSpec(f"tick-{i:03}", "p", every) for i in range(JOBS)])
        (tmp_path / "agent.toml").write_text(agent_toml(url))
        node = await serve(tmp_path, log=tmp_path / "node.log")
        assert node.log is not None
        port = http_port(node.log)
        admin = await asyncpg.connect(pg_dsn())
        terminated = 0
        try:
            for _ in range(ROUNDS):  # was: the node exited 0 within a dozen rounds
                await asyncio.sleep(2)
                terminated += await terminate(admin, app)
                assert node.proc.returncode is None, node.log.read_text()[-3000:]
            last_round = time.time() * 1000
            assert await healthy(port), node.log.read_text()[-3000:]
            deadline = time.monotonic() + 10
            while True:  # a per-second job completes within 10 s of the last round
                (done,) = await query(
                    dsn,
                    "SELECT count(*) FROM runs WHERE status = 'success' "
                    f"AND completed_at > {last_round}",
                )
                if done[0]:
                    break
                assert time.monotonic() < deadline, node.log.read_text()[-3000:]
                await asyncio.sleep(0.2)
            recovered = time.time() * 1000 - last_round
            assert node.proc.returncode is None and await healthy(port)
        finally:
            await admin.close()
            if node.proc.returncode is None:
                node.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(node.proc.wait(), 40)
        log = node.log.read_text()
        assert code == 0, log[-3000:]  # stopped by SIGTERM: 0
        assert "stopping the node" not in log, log[-3000:]
        assert terminated >= ROUNDS  # every round hit at least one of its connections
        print(
            f"{ROUNDS} rounds of pg_terminate_backend ({terminated} connections): up, "
            f"a run completed {recovered / 1000:.1f}s after the last round"
        )


@needs_postgres
async def test_the_search_path_of_the_url_reaches_the_server(tmp_path: Path) -> None:
    async with pg_schema() as dsn:  # dsn is the server URL + ?search_path=<new schema>
        schema = dsn.rsplit("=", 1)[1]
        code, _, err = await run_cli(
            tmp_path, "--db", dsn, "jobs", "add", "x", "p", "--every", "1h"
        )
        assert code == 0, err
        tables = await query(
            pg_dsn(),
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = '{schema}' AND table_name IN ('jobs', 'runs')",
        )
        assert sorted(t for (t,) in tables) == ["jobs", "runs"]
        (named_jobs,) = await query(dsn, "SELECT count(*) FROM jobs WHERE name = 'x'")
        assert named_jobs == (1,)


# A critical task dies (the HTTP server's uvicorn task is cancelled from inside the process,
# as a failed listening socket would end it): the node stops and exits 1.
DYING_HTTP = """
import asyncio, sys
from gateway import app
from starpod_cron.cli.main import main

announce = app.Gateway._announce

async def and_then_kill_http(self, *args):
    await announce(self, *args)
    def kill():
        for task in asyncio.all_tasks():
            if task.get_name() == "gateway:http:uvicorn":
                task.cancel()
    asyncio.get_running_loop().call_later(1, kill)

app.Gateway._announce = and_then_kill_http
sys.exit(main(sys.argv[1:]))
"""


async def test_serve_exits_1_when_a_critical_task_fails(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DYING_HTTP,
        "serve",
        "--port",
        "0",
        "--http-port",
        "0",
        cwd=tmp_path,
        env=environment(),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    text = err.decode()
    assert proc.returncode == 1, text  # was: 0, and systemd never restarted it
    assert "gateway:http stopped; stopping the node" in text, text
    assert text.rstrip().splitlines()[-1].startswith("starpod-cron: error: the node stopped")
