"""``--json`` shows a job and a run exactly as the views every other front end uses (WebSocket,
tools, MCP, HTTP: :mod:`starpod_cron.views`), on each backend: the CLI's output is compared
with the views of the rows the store holds right after the command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from starpod_cron import CronStore
from starpod_cron.cli.main import main
from starpod_cron.views import job_json, run_json


async def _cli(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> dict[str, Any]:
    code = await asyncio.to_thread(main, ["--db", url, "--json", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert set(doc) == {"data", "artifact_type", "title"}  # one document, as before
    data: dict[str, Any] = doc["data"]
    return data


async def _views(url: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The job called ``name`` and its runs (newest first), as the views show them, with times
    in the job's zone (as the CLI shows them without ``--tz``)."""
    async with CronStore.open(url) as store:
        (job,) = [j for j in await store.list_jobs() if j.name == name]
        runs = await store.list_runs(job.id, 100)
        return job_json(job, job.timezone), [run_json(r, job, job.timezone) for r in runs]


async def test_a_job_and_a_run_in_json_are_the_views_of_every_front_end(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./agent.toml: the echo executor runs the jobs
    added = await _cli(
        capsys, url, "jobs", "add", "morning", "Summarize", "--cron", "0 9 * * 1-5",
        "--tz", "Europe/Rome", "--jitter", "10m", "--overlap", "allow", "--max-instances", "2",
    )  # fmt: skip
    job, _ = await _views(url, "morning")
    assert added.pop("warning").endswith("fires only once one runs")  # no scheduler is up
    assert added == job | {"job_name": "morning", "message": added["message"]}

    ran = (await _cli(capsys, url, "jobs", "run", "morning"))["jobs_run"]
    job, runs = await _views(url, "morning")
    assert ran == runs and runs[0]["id"] and runs[0]["status"] == "success"
    assert ran[0]["run_id"] == ran[0]["id"]  # the old name, kept as an alias for one release
    assert ran[0]["started_at"].endswith(("+01:00", "+02:00"))  # in the job's zone

    history = (await _cli(capsys, url, "jobs", "history"))["entries"]
    assert history == runs

    listed = (await _cli(capsys, url, "jobs", "list", "--all"))["jobs"]
    assert listed == [job]

    shown = await _cli(capsys, url, "jobs", "show", "morning")
    assert {k: shown[k] for k in job} == job  # the view, plus what only the card adds:
    assert set(shown) - set(job) == {
        "next_runs",
        "last_run_result",
        "last_run_tokens",
        "history_tokens",
        "counts",
        "spent",
    }

    edited = await _cli(capsys, url, "jobs", "edit", "morning", "--every", "1h")
    job, _ = await _views(url, "morning")
    assert edited == job | {"job_name": "morning", "message": edited["message"]}

    status = await _cli(capsys, url, "status")
    (row,) = status["jobs"]
    assert {k: row[k] for k in job} == job and row["stats"]["runs"] == 1

    # --tz shows every time in that zone, in the same shapes
    async with CronStore.open(url) as store:
        (stored,) = await store.list_jobs()
        (run,) = await store.list_runs(stored.id, 1)
    tokyo = ["--tz", "Asia/Tokyo"]
    assert (await _cli(capsys, url, *tokyo, "jobs", "list"))["jobs"] == [
        job_json(stored, "Asia/Tokyo")
    ]
    assert (await _cli(capsys, url, *tokyo, "jobs", "history"))["entries"] == [
        run_json(run, stored, "Asia/Tokyo")
    ]
