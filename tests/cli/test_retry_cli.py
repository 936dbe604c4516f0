"""``starpod-cron jobs retry RUN_ID``: a thin adapter over JobOperations.retry (the job's
retry fields set; the scheduler's claim runs it), its refusals exit 2 with one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.cli.conftest import CLI


def test_jobs_retry_sets_the_failed_runs_next_attempt_and_refuses_twice(
    cli: CLI, db: str, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[executor]\nkind = "python"\ntarget = "tests.cli.targets:run"\n')
    cli("jobs", "add", "bad", "please fail", "--every", "1h", "--retries", "0")
    cli("jobs", "add", "good", "ok", "--every", "1h")
    assert cli("--config", str(config), "jobs", "run", "bad", "good").code == 1
    entries = cli("--json", "jobs", "history").json["data"]["entries"]
    failed = next(e for e in entries if e["status"] == "failed")
    ok = next(e for e in entries if e["status"] == "success")

    done = cli("--json", "jobs", "retry", failed["id"])
    assert done.code == 0, done.err
    data = done.json["data"]
    assert data["job_name"] == "bad"
    assert data["retry"] == {
        "run_id": failed["id"],
        "occurrence": failed["scheduled_for"],
        "attempt": 2,
    }
    with sqlite3.connect(db) as conn:  # due now, for the scheduler's claim
        (row,) = conn.execute("SELECT retry_attempt, retry_at FROM jobs WHERE name = 'bad'")
    assert row[0] == 2 and row[1] is not None
    human = cli("jobs", "retry", failed["id"])  # asked again before the claim: the same retry
    assert human.code == 0 and "runs again now, as attempt 2" in human.out

    refused = cli("jobs", "retry", ok["id"])
    assert refused.code == 2 and "succeeded" in refused.err and len(refused.err.splitlines()) == 1
    missing = cli("jobs", "retry", "nope")
    assert missing.code == 2 and "no run 'nope'" in missing.err
