"""A run claimed ahead of its fire time shows as "due in ...", and, when its scheduler stops
first, as "handed back", not as an interrupted run (the README's library example, twice)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import CronScheduler, CronStore, JobContext, JobResult, RunStatus, Schedule
from starpod_cron.cli.main import main
from starpod_cron.settings import SchedulerSettings


async def _executor(ctx: JobContext) -> JobResult:
    return JobResult(session_id=ctx.run_id, summary="ran")


async def test_claimed_ahead_is_due_and_a_stop_hands_it_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "jobs.db")

    def history(*args: str) -> str:
        assert main(["--db", db, *args, "jobs", "history"]) == 0
        return capsys.readouterr().out

    async with CronStore.open(db) as store:
        at = datetime.now(UTC) + timedelta(seconds=30)
        await store.add_job("later", "p", Schedule.one_shot(at))
        settings = SchedulerSettings(tick_secs=0.2, lease_secs=120, claim_ahead_secs=60)
        scheduler = CronScheduler(store, _executor, settings)
        scheduler.start()
        try:
            for _ in range(200):
                running = await store.list_recent_runs(5, status=RunStatus.RUNNING)
                if running:
                    break
                await asyncio.sleep(0.05)
            assert running, "the run was not claimed ahead"
            assert running[0].claimed_ahead(datetime.now(UTC))
            shown = await asyncio.to_thread(history)  # the CLI runs its own event loop
            assert "due in " in shown and "running" not in shown, shown
        finally:
            await scheduler.stop()
        (run,) = await store.list_recent_runs(5)
        assert run.status is RunStatus.INTERRUPTED and run.handed_back
    shown = await asyncio.to_thread(history)
    assert "handed back" in shown and "interrupted  " not in shown, shown
    (row,) = json.loads(await asyncio.to_thread(history, "--json"))["data"]["entries"]
    assert row["status"] == "interrupted" and row["handed_back"] is True
