"""The CLI knows held runs: ``jobs history --status held`` (table and JSON), the hold on
``jobs show`` and its JSON card."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from starpod_cron import Completion, CronStore, ManualClock, RunStatus
from tests.cli.conftest import CLI


async def _hold(db: str, name: str) -> datetime:
    """Claim the job's next fire and record it held for an hour; returns the hold's end."""
    async with CronStore.open(db) as store:
        job = await store.get_job_by_name(name)
        assert job is not None and job.next_run_at is not None
        clock = ManualClock(job.next_run_at)
    async with CronStore.open(db, clock=clock) as store:
        (claim,) = await store.claim_due("test", 10, 60)
        done = Completion(
            claim.run_id,
            RunStatus.HELD,
            error="provider quota: HTTP 402: billing",
            retry_after_secs=3600,
            count_attempt=False,
        )
        assert await store.complete_runs([done], owner="test") == [True]
        return clock.now() + timedelta(hours=1)


def test_held_runs_are_listed_and_the_hold_is_shown(cli: CLI, db: str) -> None:
    assert cli("jobs", "add", "digest", "p", "--every", "1h").code == 0
    until = asyncio.run(_hold(db, "digest"))
    table = cli("jobs", "history", "--status", "held")
    assert table.code == 0 and "held" in table.out and "provider quota" in table.out
    (run,) = cli("--json", "jobs", "history", "--status", "held").json["data"]["entries"]
    assert run["status"] == "held" and run["error"].startswith("held until ")
    assert cli("--json", "jobs", "history", "--status", "failed").json["data"]["entries"] == []
    card = cli("--json", "jobs", "show", "digest").json["data"]
    assert datetime.fromisoformat(card["held_until"]) == until
    assert card["last_status"] == "held" and card["retry_count"] == 0
    assert "held until" in cli("jobs", "show", "digest").out
