"""`jobs add` warns when no scheduler is up; `status` flags jobs that should have fired, as
users run them (subprocesses over a real store, on every backend)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from starpod_cron import CronStore, JobSpec, ManualClock, Schedule
from starpod_cron.executors.echo import EchoExecutor
from starpod_cron.scheduler import CronScheduler
from starpod_cron.timeutil import from_ms
from tests.cli.conftest import CLI
from tests.conftest import eventually
from tests.processes import run_cli

pytestmark = pytest.mark.slow
WARNING = "warning: no scheduler is running on this store"


def test_jobs_add_with_no_scheduler_warns_on_stderr_and_saves(cli: CLI) -> None:
    added = cli("jobs", "add", "standup", "Post it", "--every", "1h")
    assert added.code == 0 and "Job 'standup' added" in added.out
    assert added.err.count("\n") == 1 and added.err.startswith(WARNING)
    assert "fires only once one runs" in added.err and WARNING not in added.out
    as_json = cli("--json", "jobs", "add", "retro", "Retro", "--every", "1d")
    assert as_json.code == 0 and "fires only once" in as_json.json["data"]["warning"]
    listed = cli("--json", "jobs", "list")
    assert [j["name"] for j in listed.json["data"]["jobs"]] == ["retro", "standup"]


async def test_jobs_add_while_a_library_scheduler_runs_has_no_warning(
    url: str, tmp_path: Path
) -> None:
    store = await CronStore.open(url)
    scheduler = CronScheduler(store, EchoExecutor(store), tick_secs=1)
    scheduler.start()
    try:
        await eventually(store.schedulers_up, what="the scheduler's heartbeat")
        code, out, err = await run_cli(
            tmp_path, "--db", url, "jobs", "add", "a", "hi", "--every", "1h"
        )
        assert code == 0 and "Job 'a' added" in out and "warning" not in err, err
    finally:
        await scheduler.stop()
        await store.close()
    code, out, err = await run_cli(tmp_path, "--db", url, "jobs", "add", "b", "hi", "--every", "1h")
    assert code == 0 and err.startswith(WARNING), err  # stopped: not up any more


async def test_status_flags_an_enabled_job_that_should_have_fired(url: str, tmp_path: Path) -> None:
    two_hours_ago = from_ms(round(time.time() * 1000)) - timedelta(hours=2)
    store = await CronStore.open(url, clock=ManualClock(two_hours_ago))
    try:  # added two hours ago, with no scheduler since
        await store.add_jobs(
            [
                JobSpec(name="late", prompt="p", schedule=Schedule.interval(60_000)),
                JobSpec(name="daily", prompt="p", schedule=Schedule.interval(86_400_000)),
                JobSpec(name="off", prompt="p", schedule=Schedule.interval(60_000), enabled=False),
            ]
        )
    finally:
        await store.close()
    code, out, err = await run_cli(tmp_path, "--db", url, "status")
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if x.startswith("Overdue:")]
    assert line.startswith("Overdue: late should have fired") and "more than 120s" in line
    code, out, err = await run_cli(tmp_path, "--db", url, "--json", "status")
    overdue = json.loads(out)["data"]["overdue"]
    assert [o["job"] for o in overdue] == ["late"]  # not the daily one, nor the disabled one
    assert 7000 < overdue[0]["overdue_secs"] < 7300
