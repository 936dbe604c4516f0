"""`starpod-cron serve` as users run it: a real process, signals, and SIGKILL recovery."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from starpod_cron import CronStore, JobSpec, Schedule
from tests.gateway.botapi import TOKEN, running_botapi
from tests.gateway.test_telegram import until
from tests.processes import free_port, run_cli, serve

pytestmark = pytest.mark.slow


async def test_serve_runs_on_the_embedded_default_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    gateway = await serve(tmp_path, port=port)
    assert f"ws://127.0.0.1:{port}" in gateway.seen.decode()
    try:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(
                json.dumps(
                    {
                        "id": 1,
                        "type": "cron.add",
                        "name": "hello",
                        "prompt": "hello from the quickstart",
                        "every": "1s",
                    }
                )
            )
            assert json.loads(await ws.recv())["ok"] is True
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert event["type"] == "notification" and event["job_name"] == "hello"
            assert event["result_preview"] == "hello from the quickstart"  # the echo executor
    finally:
        gateway.proc.send_signal(signal.SIGTERM)
        code, said = await gateway.finish()
    assert code == 0
    assert (tmp_path / "starpod-cron.db").exists()
    assert "stopped" in said


async def test_a_gateway_killed_with_deliveries_pending_delivers_each_once_after_restart(
    tmp_path: Path,
) -> None:
    port = free_port()
    db = str(tmp_path / "starpod-cron.db")
    async with running_botapi() as api:
        (tmp_path / "agent.toml").write_text(
            "[gateway]\ndelivery_backoff_secs = [0.3]\ndelivery_lease_secs = 2\n"
            "delivery_max_attempts = 100\n"
            f'[telegram]\nallowed_user_ids = [42]\nbase_url = "{api.base_url}"\n'
            'token_env = "STARPOD_TEST_TG_TOKEN"\npoll_timeout_secs = 1\n'
        )
        async with CronStore.open(db) as store:
            at = datetime.now(UTC) + timedelta(seconds=2)
            await store.add_jobs(
                [
                    JobSpec(
                        f"report-{i}",
                        f"report number {i}",
                        Schedule.one_shot(at),
                        origin={"telegram_chat_id": 42},
                    )
                    for i in range(5)
                ]
            )
        env = {"STARPOD_TEST_TG_TOKEN": TOKEN}
        api.fail_all_with = 502  # Telegram is down: every delivery fails and waits to retry
        first = await serve(tmp_path, env=env, port=port)
        await until(lambda: api.send_attempts >= 10, timeout=30, what="delivery attempts")
        first.proc.kill()  # SIGKILL: no clean shutdown
        await first.proc.wait()
        with sqlite3.connect(db) as conn:
            states = Counter(
                s
                for (s,) in conn.execute(
                    "SELECT status FROM deliveries WHERE destination = 'tg:42'"
                )
            )
        assert sum(states.values()) == 5 and states["delivered"] == 0, states

        api.fail_all_with = None  # Telegram is back
        second = await serve(tmp_path, env=env, port=port)
        try:
            await until(lambda: len(api.texts(42)) >= 5, timeout=30, what="5 deliveries")
            await asyncio.sleep(3)  # longer than a lease: any duplicate would show up now
        finally:
            second.proc.send_signal(signal.SIGTERM)
            _, said = await second.finish()
        assert TOKEN not in said  # the bot token is never logged
        texts = api.texts(42)
        assert sorted(texts) == sorted(f"[report-{i}] done\n\nreport number {i}" for i in range(5))
        with sqlite3.connect(db) as conn:
            assert {
                s
                for (s,) in conn.execute(
                    "SELECT status FROM deliveries WHERE destination = 'tg:42'"
                )
            } == {"delivered"}


async def test_a_cli_run_while_serve_runs_reaches_the_chat_and_websocket_clients(
    tmp_path: Path,
) -> None:
    """`jobs run` in another process records its deliveries like a scheduled run: the running
    gateway sends the result to the job's chat and shows the event to its clients."""
    async with running_botapi() as api:
        (tmp_path / "agent.toml").write_text(
            "[gateway]\ndelivery_backoff_secs = [0.3]\n"
            f'[telegram]\nallowed_user_ids = [42]\nbase_url = "{api.base_url}"\n'
            'token_env = "STARPOD_TEST_TG_TOKEN"\npoll_timeout_secs = 1\n'
        )
        async with CronStore.open(str(tmp_path / "starpod-cron.db")) as store:
            await store.add_jobs(
                [
                    JobSpec(
                        "digest",
                        "the digest",
                        Schedule.cron("0 9 * * *"),
                        origin={"telegram_chat_id": 42},
                    )
                ]
            )
        gateway = await serve(tmp_path, env={"STARPOD_TEST_TG_TOKEN": TOKEN})
        try:
            async with connect(f"ws://127.0.0.1:{gateway.port}/") as ws:
                code, _, err = await run_cli(tmp_path, "jobs", "run", "digest")
                assert code == 0, err
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert (event["job_name"], event["result_preview"]) == ("digest", "the digest")
                await until(lambda: api.texts(42), timeout=10, what="the chat message")
                await asyncio.sleep(1)
                assert api.texts(42) == ["[digest] done\n\nthe digest"]
        finally:
            gateway.proc.send_signal(signal.SIGTERM)
            code, _ = await gateway.finish()
        assert code == 0
