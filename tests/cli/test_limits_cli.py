"""The CLI of jobs that limit themselves: --start-at/--end-at as people type times (read in the
job's zone), the limits on ``jobs show``, and the one-line reason of a job that paused itself
in ``jobs list``, ``status`` and ``jobs enable``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from starpod_cron import Completion, CronStore, ManualClock, RunStatus
from tests.cli.conftest import CLI, snapshot

ROME = ZoneInfo("Europe/Rome")


def test_start_and_end_are_read_in_the_jobs_zone_and_bound_its_next_fires(cli: CLI) -> None:
    day = (datetime.now(ROME) + timedelta(days=2)).date()
    start, end = f"{day} 09:00", f"{day + timedelta(days=2)} 09:00"
    added = cli(
        "jobs", "add", "brief", "say hi", "--cron", "0 9 * * *", "--tz", "Europe/Rome",
        "--start-at", start, "--end-at", end, "--max-runs", "5", "--stale-after", "1h",
        "--pause-after-failures", "3",
    )  # fmt: skip
    assert added.code == 0, added.err
    card = cli("--json", "jobs", "show", "brief").json["data"]
    offset = datetime.fromisoformat(f"{day}T09:00").replace(tzinfo=ROME).isoformat()[-6:]
    assert card["start_at"] == f"{day}T09:00:00{offset}"  # 09:00 in Rome, not in UTC
    assert len(card["next_runs"]) == 3  # the start, the day after, and the end itself
    assert card["next_runs"][0] == card["start_at"] and card["next_runs"][-1] == card["end_at"]
    assert (card["max_runs"], card["stale_after_secs"], card["pause_after_failures"]) == (
        5,
        3600.0,
        3,
    )
    shown = cli("jobs", "show", "brief").out
    assert f"window            from {day} 09:00:00" in shown
    assert "max runs          5 (0 made, 5 left)" in shown
    assert "pause after       3 failed runs in a row (0 so far)" in shown
    assert "stale after       1h (a run that would start later is skipped)" in shown

    tomorrow = cli("jobs", "edit", "brief", "--start-at", "tomorrow 9:00")
    assert tomorrow.code == 0, tomorrow.err
    card = cli("--json", "jobs", "show", "brief").json["data"]
    assert len(card["next_runs"]) == 4 and card["next_runs"][0].endswith(f"T09:00:00{offset}")


def test_a_window_that_cannot_fire_is_refused_and_nothing_is_written(cli: CLI, db: str) -> None:
    cli("jobs", "add", "keep", "p", "--every", "1h")
    before = snapshot(db)
    past = cli("jobs", "add", "late", "p", "--every", "1h", "--end-at", "2020-01-01 10:00")
    assert past.code == 2 and "no fire before end_at" in past.err and "later end_at" in past.err
    backwards = cli(
        "jobs", "add", "odd", "p", "--every", "1h",
        "--start-at", "2030-01-02 10:00", "--end-at", "2030-01-01 10:00",
    )  # fmt: skip
    assert backwards.code == 2 and "must be after start_at" in backwards.err
    edit = cli("jobs", "edit", "keep", "--start-at", "2030-01-02 10:00", "--end-at", "2030-01-01")
    assert edit.code == 2 and "must be after start_at" in edit.err
    typo = cli("jobs", "add", "typo", "p", "--every", "1h", "--end-at", "next friday")
    assert typo.code == 2 and "ISO 8601" in typo.err
    assert snapshot(db) == before


async def _fail_once(db: str, name: str) -> None:
    """One scheduled run of ``name`` that fails, claimed and finished as a scheduler would."""
    now = datetime.now(ROME)
    clock = ManualClock(now)
    async with CronStore.open(db, clock=clock) as store:
        job = await store.get_job_by_name(name)
        assert job is not None and job.next_run_at is not None
        clock.set(job.next_run_at)
        (claim,) = await store.claim_due("test", 10, 60)
        done = Completion(claim.run_id, RunStatus.FAILED, error="the model is down")
        assert await store.complete_runs([done], owner="test") == [True]


def test_a_paused_job_says_why_in_list_status_and_enable(cli: CLI, db: str) -> None:
    cli("jobs", "add", "flaky", "p", "--every", "1h", "--retries", "0")
    cli("jobs", "edit", "flaky", "--pause-after-failures", "1")
    asyncio.run(_fail_once(db, "flaky"))
    listed = cli("jobs", "list").out  # shown without --all: it paused by itself
    assert "no (paused after 1 failed runs in a row)" in listed
    status = cli("status").out
    assert "PAUSED (paused after 1 failed runs in a row)" in status
    assert cli("--json", "status").json["data"]["jobs"][0]["paused_reason"].startswith("paused")
    assert "has been enabled" in cli("jobs", "enable", "flaky").out
    card = cli("--json", "jobs", "show", "flaky").json["data"]
    assert card["enabled"] and card["paused_reason"] is None and card["consecutive_failures"] == 0

    cli("jobs", "add", "once", "p", "--every", "1h", "--max-runs", "1", "--retries", "0")
    asyncio.run(_fail_once(db, "once"))
    again = cli("jobs", "enable", "once")
    assert again.out.strip() == "Job 'once' stays disabled: max_runs reached (1 runs)"
    assert cli("jobs", "edit", "once", "--max-runs", "2").code == 0
    assert "has been enabled" in cli("jobs", "enable", "once").out


def test_a_declared_job_that_paused_itself_can_be_resumed_here(
    cli: CLI, db: str, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[[jobs]]\nname = "declared"\nprompt = "p"\nevery = "1h"\nmax_retries = 0\n'
        "pause_after_failures = 1\n"
    )
    assert cli("--config", str(config), "jobs", "sync").code == 0
    refused = cli("--config", str(config), "jobs", "disable", "declared")
    assert refused.code == 2 and "declared in" in refused.err  # still managed there
    asyncio.run(_fail_once(db, "declared"))
    resumed = cli("--config", str(config), "jobs", "enable", "declared")
    assert resumed.code == 0 and "has been enabled" in resumed.out, resumed.err
    assert cli("--config", str(config), "jobs", "enable", "declared").code == 2  # not paused
