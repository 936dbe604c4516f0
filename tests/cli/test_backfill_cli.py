"""``jobs backfill`` as users type it: a dry run lists, a run runs each past fire once (again:
nothing), the limit refuses with what to do and writes nothing; and the cron_backfill tool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from starpod_cron import CronStore, InvalidInput
from starpod_cron.tools import call_tool
from tests.cli.conftest import CLI, snapshot

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date()
FROM, TO = f"{YESTERDAY} 00:00", f"{YESTERDAY} 05:00"


def test_backfill_lists_runs_once_and_refuses_above_the_limit(cli: CLI, db: str) -> None:
    assert cli("jobs", "add", "hourly", "report", "--cron", "0 * * * *", "--tz", "UTC").code == 0
    before = snapshot(db)
    dry = cli("--json", "jobs", "backfill", "hourly", "--from", FROM, "--to", TO, "--dry-run")
    assert dry.code == 0
    assert dry.json["data"]["occurrences"] == [f"{YESTERDAY}T{h:02}:00:00+00:00" for h in range(6)]
    assert snapshot(db) == before  # a dry run writes nothing

    refused = cli("jobs", "backfill", "hourly", "--from", FROM, "--to", TO, "--max", "5")
    assert refused.code == 2
    assert (
        "the range holds 6 occurrences; the limit is 5: narrow --from/--to or pass --max 6"
        in refused.err
    )
    assert snapshot(db) == before

    done = cli("--json", "jobs", "backfill", "hourly", "--from", FROM, "--to", TO)
    assert done.code == 0, done.err
    runs = done.json["data"]["runs"]
    assert [(r["status"], r["trigger"]) for r in runs] == [("success", "backfill")] * 6
    again = cli("jobs", "backfill", "hourly", "--from", FROM, "--to", TO)
    assert again.code == 0 and "nothing to backfill" in again.out
    history = cli("--json", "jobs", "history", "--job", "hourly").json["data"]["entries"]
    assert sorted(r["scheduled_for"] for r in history) == [r["scheduled_for"] for r in runs]

    bad = cli("jobs", "backfill", "hourly", "--from", TO, "--to", FROM)
    assert bad.code == 2 and "before --from" in bad.err


async def test_the_tool_lists_and_needs_a_scheduler_to_run(db: str) -> None:
    async with CronStore.open(db) as store:
        await call_tool(store, "cron_add", {"name": "hourly", "prompt": "p", "cron": "0 * * * *"})
        args = {"name": "hourly", "from": FROM, "to": TO, "dry_run": True}
        answer = await call_tool(store, "cron_backfill", args)
        assert answer["dry_run"] is True and len(answer["occurrences"]) == 6
        with pytest.raises(InvalidInput, match="not available here"):
            await call_tool(store, "cron_backfill", {**args, "dry_run": False})
        with pytest.raises(InvalidInput, match=r"the limit is 1: .* --max 6"):
            await call_tool(store, "cron_backfill", {**args, "max": 1})
        assert await store.list_recent_runs(10) == []
