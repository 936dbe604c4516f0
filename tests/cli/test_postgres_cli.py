"""The CLI and `serve` on PostgreSQL, chosen with --db or $STARPOD_DB, as users run them."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from starpod_cron.store.dialects.postgres import safe_dsn
from tests.backends import needs_postgres, pg_schema
from tests.processes import run_cli, serve

pytestmark = [needs_postgres, pytest.mark.slow]


async def test_cli_and_serve_share_one_postgres_database(tmp_path: Path) -> None:
    async with pg_schema() as dsn:
        code, out, err = await run_cli(tmp_path, "--db", dsn, "jobs", "list")
        assert code == 0 and "no starpod-cron tables" in out, err  # nothing created by a read
        env = {"STARPOD_DB": dsn}
        code, out, err = await run_cli(
            tmp_path, "jobs", "add", "standup", "Post it", "--every", "1h", env=env
        )
        assert code == 0 and "Job 'standup' added" in out, err
        code, out, err = await run_cli(tmp_path, "--db", dsn, "--json", "jobs", "run", "standup")
        assert code == 0 and json.loads(out)["data"]["jobs_run"][0]["status"] == "success", err
        gateway = await serve(tmp_path, env=env)
        try:
            async with connect(f"ws://127.0.0.1:{gateway.port}/") as ws:
                frames: list[dict[str, Any]] = []

                async def answer(request_id: int) -> dict[str, Any]:
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        frames.append(frame)
                        if frame.get("id") == request_id:
                            return frame

                await ws.send(json.dumps({"id": 1, "type": "cron.list"}))
                names = [j["name"] for j in (await answer(1))["data"]["jobs"]]
                assert names == ["standup"]  # the job the CLI added, in the same database
                add = {"id": 2, "type": "cron.add", "prompt": "hi", "every": "1s"}
                await ws.send(json.dumps(add))
                assert (await answer(2))["ok"]
                while not any(f.get("result_preview") == "hi" for f in frames):
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                # the CLI's manual run before the gateway started is there to replay...
                await ws.send(json.dumps({"id": 3, "type": "replay", "since": 0}))
                await answer(3)
                assert any(f.get("job_name") == "standup" for f in frames)
                # ...and one while it runs reaches this client live
                frames.clear()
                code, out, err = await run_cli(tmp_path, "jobs", "run", "standup", env=env)
                assert code == 0, err
                while not any(f.get("job_name") == "standup" for f in frames):
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        finally:
            gateway.proc.send_signal(signal.SIGTERM)
            code, text = await gateway.finish()
        assert code == 0 and f"store {dsn}" in text, text
        code, out, _ = await run_cli(tmp_path, "--db", dsn, "jobs", "history", "--job", "standup")
        assert "manual" in out and "success" in out


def test_passwords_never_leave_the_dsn() -> None:
    assert safe_dsn("postgresql://bob:s3cret@db:5432/jobs") == "postgresql://bob:***@db:5432/jobs"
    assert safe_dsn("postgresql://bob@db/jobs") == "postgresql://bob@db/jobs"
