"""``jobs snooze NAME --for 1h``: the next fire moves once, the schedule stays; refusals write
nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.cli.conftest import CLI, snapshot


def test_snooze_moves_the_next_run_and_keeps_the_schedule(cli: CLI, db: str) -> None:
    assert cli("jobs", "add", "brief", "say hi", "--cron", "0 9 * * *", "--tz", "UTC").code == 0
    before = cli("--json", "jobs", "show", "brief").json["data"]
    snoozed = cli("jobs", "snooze", "brief", "--for", "1h30m")
    assert snoozed.code == 0, snoozed.err
    assert "Job 'brief' snoozed; next run" in snoozed.out and "then as scheduled" in snoozed.out
    after = cli("--json", "jobs", "show", "brief").json["data"]
    moved = datetime.fromisoformat(before["next_run"]) + timedelta(minutes=90)
    assert datetime.fromisoformat(after["next_run"]) == moved
    assert after["schedule"] == before["schedule"]

    cli("jobs", "disable", "brief")
    unchanged = snapshot(db)
    paused = cli("jobs", "snooze", "brief", "--for", "1h")
    assert paused.code == 2 and "is paused: resume it instead" in paused.err
    bad = cli("jobs", "snooze", "brief", "--for", "a while")
    assert bad.code == 2 and "invalid duration 'a while'" in bad.err
    missing = cli("jobs", "snooze", "ghost", "--for", "1h")
    assert missing.code != 0 and "no job named 'ghost'" in missing.err
    assert snapshot(db) == unchanged
