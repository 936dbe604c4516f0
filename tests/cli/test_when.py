"""``jobs add --when``: a schedule in words, saved at once with what it was understood as;
``--dry-run`` prints the same and saves nothing; refusals write nothing (exit 2)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import CLI, snapshot


def test_add_when_saves_and_prints_what_it_understood(cli: CLI, db: str) -> None:
    added = cli("jobs", "add", "digest", "Send the digest", "--when", "every weekday at 9:00",
                "--tz", "Europe/Rome")  # fmt: skip
    assert added.code == 0, added.err
    lines = added.out.splitlines()
    assert lines[:3] == [
        "Job 'digest' added.",
        "Understood 'every weekday at 9:00' as: At 09:00, Monday through Friday",
        "Schedule: cron 0 9 * * 1-5 (Europe/Rome)",
    ]
    assert lines[3] == "Next runs:" and len(lines) == 9
    assert all(line.endswith(" 09:00:00 +01:00") for line in lines[4:])
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT schedule_kind, schedule_expr, timezone, description FROM jobs"
        ).fetchone()
    assert row == ("cron", "0 9 * * 1-5", "Europe/Rome", "every weekday at 9:00")


def test_add_when_json_has_the_interpretation(cli: CLI) -> None:
    added = cli("--json", "jobs", "add", "remind", "Stretch", "--when", "in 20 minutes",
                "--description", "legs")  # fmt: skip
    assert added.code == 0, added.err
    data = added.json["data"]
    understood = data["interpretation"]
    assert (understood["kind"], understood["value"], understood["delete_after_run"]) == (
        "in", "20m", True
    )  # fmt: skip
    assert understood["next_runs"] == [data["next_run"]]
    assert data["delete_after_run"] is True and data["description"] == "legs"


def test_dry_run_prints_the_same_and_saves_nothing(cli: CLI, db: str) -> None:
    dry = cli("jobs", "add", "close", "Close the books", "--when",
              "on the last day of every month at 17:00", "--dry-run")  # fmt: skip
    assert dry.code == 0, dry.err
    assert dry.out.splitlines()[:3] == [
        "Dry run: job 'close' not saved.",
        "Understood 'on the last day of every month at 17:00' as: "
        "At 17:00, on the last day of the month",
        "Schedule: cron 0 17 L * * (UTC)",
    ]
    assert not Path(db).exists()  # the store was not even opened
    as_json = cli("--json", "jobs", "add", "close", "p", "--when", "every 2 hours", "--dry-run")
    assert as_json.json["data"]["dry_run"] is True
    assert as_json.json["data"]["interpretation"]["schedule"] == "every 2h"
    other = cli("jobs", "add", "x", "p", "--cron", "0 9 * * *", "--dry-run")
    assert other.code == 0 and "Schedule: At 09:00" in other.out
    assert not Path(db).exists()


def test_ambiguous_phrases_are_refused_and_nothing_is_written(cli: CLI, db: str) -> None:
    assert cli("jobs", "add", "keep", "p", "--every", "1h").code == 0
    before = snapshot(db)
    for phrase, said in [
        ("every 9", "say 'every day at 9' or 'every 9 minutes'"),
        ("at 25:00", "is not a time of day"),
        ("every blursday at 9", "did you mean 'thursday'?"),
        ("every weekday", "needs a time"),
    ]:
        for extra in ((), ("--dry-run",)):
            refused = cli("jobs", "add", "bad", "p", "--when", phrase, *extra)
            assert refused.code == 2 and said in refused.err, (phrase, refused.err)
            assert refused.err.count("\n") == 1  # one line
    both = cli("jobs", "add", "bad", "p", "--when", "every day", "--every", "1h")
    assert both.code == 2 and "not allowed with argument --when" in both.err
    assert snapshot(db) == before


def test_edit_when_changes_the_schedule_and_a_worded_description(cli: CLI, db: str) -> None:
    assert cli("jobs", "add", "a", "p", "--when", "every day at 9").code == 0
    assert (
        cli("jobs", "add", "b", "p", "--when", "every day at 9", "--description", "mine").code == 0
    )
    for name in ("a", "b"):
        assert cli("jobs", "edit", name, "--when", "every hour at :30").code == 0
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, schedule_expr, description FROM jobs ORDER BY name")
        assert rows.fetchall() == [
            ("a", "30 * * * *", "every hour at :30"),
            ("b", "30 * * * *", "mine"),
        ]


def test_the_installed_command_takes_when(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("starpod-cron")
    done = subprocess.run(
        [str(exe), "--db", str(tmp_path / "x.db"), "jobs", "add", "t", "Ping", "--when",
         "every hour at :15", "--dry-run"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Schedule: cron 15 * * * * (UTC)" in done.stdout
