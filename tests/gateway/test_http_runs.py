"""The dashboard's JSON API over a real gateway (real sockets, a real scheduler): runs pages
(filters, a cursor, totals, late_ms/duration_ms on every run), retry of a failed run (one run
for a double click, 409 for a success, 404 for another user's), the overview, the timeline's
totals, and the preview of an edit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from starpod_cron import RunStatus
from starpod_cron.settings import StoreSettings
from tests.conftest import eventually
from tests.gateway.conftest import config, running_gateway

ALICE = {"Authorization": "Bearer alice-token-0123456789"}
BOB = {"Authorization": "Bearer bob-token-0123456789"}
ROOT = {"Authorization": "Bearer root-token-0123456789"}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    settings = StoreSettings(retry_backoff_secs=(0.2,), runs_keep_per_job=1000)
    cfg = config(tmp_path, store_settings=settings)
    async with running_gateway(cfg, str(tmp_path / "runs.db")) as gw:
        assert gw.http_port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}") as client:
            yield gw, client


async def _add(client: httpx.AsyncClient, who: dict[str, str], **job: Any) -> dict[str, Any]:
    answer = await client.post("/api/jobs", json=job, headers=who)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["job"])


async def _runs(gw: Gateway, job_id: str, n: int) -> None:
    """``n`` finished manual runs of the job, straight through the gateway's store (every
    fourth failed)."""
    assert gw.store is not None
    for i in range(n):
        run_id = await gw.store.record_run_start(job_id)
        status = RunStatus.FAILED if i % 4 == 0 else RunStatus.SUCCESS
        await gw.store.record_run_complete(run_id, status, "ok")


async def test_paging_through_500_runs_gives_each_once_with_filters_and_totals(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, client = http
    mine = await _add(client, ALICE, name="mine", prompt="p", every="1h")
    theirs = await _add(client, BOB, name="theirs", prompt="p", every="1h")
    await _runs(gw, mine["id"], 500)
    await _runs(gw, theirs["id"], 20)

    seen: list[str] = []
    extra = 0
    url = "/api/runs?limit=45"
    while True:
        page = (await client.get(url, headers=ALICE)).json()
        assert set(page) == {"runs", "total", "next"}
        seen += [r["id"] for r in page["runs"]]
        for run in page["runs"]:
            assert run["job_id"] == mine["id"]  # never bob's
            assert isinstance(run["duration_ms"], int) and isinstance(run["late_ms"], int)
        await _runs(gw, mine["id"], 1)  # new runs (failed ones) keep arriving while paging
        extra += 1
        if page["next"] is None:
            break
        url = f"/api/runs?limit=45&before={page['next']}"
    assert len(seen) == len(set(seen)) == 500  # each run exactly once, none of the new ones

    failed = (await client.get("/api/runs?status=failed&limit=10", headers=ALICE)).json()
    assert failed["total"] == 125 + extra and len(failed["runs"]) == 10
    assert {r["status"] for r in failed["runs"]} == {"failed"}
    one = (await client.get(f"/api/runs?job={theirs['id']}&limit=200", headers=ROOT)).json()
    assert one["total"] == 20 and one["next"] is None and len(one["runs"]) == 20
    manual = (await client.get("/api/runs?trigger=manual&limit=1", headers=BOB)).json()
    assert manual["total"] == 20
    none = (await client.get("/api/runs?trigger=retry", headers=BOB)).json()
    assert none == {"runs": [], "total": 0, "next": None}
    assert (await client.get("/api/runs?job=mine", headers=BOB)).status_code == 404

    # a job's own runs: the same shape, the same cursor
    first = (await client.get("/api/jobs/theirs/runs?limit=15", headers=BOB)).json()
    assert first["total"] == 20 and len(first["runs"]) == 15 and first["next"]
    rest = await client.get(f"/api/jobs/theirs/runs?before={first['next']}", headers=BOB)
    assert len(rest.json()["runs"]) == 5 and rest.json()["next"] is None
    failures = await client.get("/api/jobs/theirs/runs?status=failed&limit=200", headers=BOB)
    assert failures.json()["total"] == 5

    for bad in ["limit=0", "limit=201", "status=nope", "trigger=cron", "before=abc", "before=%00"]:
        answer = await client.get(f"/api/runs?{bad}", headers=ALICE)
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error"]["code"] == "invalid"
    wrong = await client.get("/api/jobs/mine/runs?before=bm90LWEtY3Vyc29y", headers=ALICE)
    assert wrong.status_code == 400 and "next" in wrong.json()["error"]["message"]


async def _retry_runs(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    page = (await client.get(f"/api/jobs/{name}/runs?limit=50", headers=ALICE)).json()
    return [r for r in page["runs"] if r["trigger"] == "retry"]


async def test_retry_of_a_failed_run_makes_one_run_however_often_it_is_clicked(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = http
    await _add(client, ALICE, name="flaky", prompt="fail now", every="1h", max_retries=0)
    failed = (await client.post("/api/jobs/flaky/run", headers=ALICE)).json()["run"]
    assert failed["status"] == "failed"

    clicks = await asyncio.gather(
        *(client.post(f"/api/runs/{failed['id']}/retry", headers=ALICE) for _ in range(4))
    )
    done = [c for c in clicks if c.status_code == 200]
    assert done and all(c.status_code in (200, 409) for c in clicks), [c.text for c in clicks]
    answer = done[0].json()
    assert answer["job"]["name"] == "flaky"
    assert answer["retry"] == {
        "run_id": failed["id"],
        "occurrence": failed["scheduled_for"],
        "attempt": 2,
    }

    async def retried() -> list[dict[str, Any]]:
        found = await _retry_runs(client, "flaky")
        return found if found and found[0]["status"] != "running" else []

    [retry] = await eventually(retried)  # the scheduler claimed and ran it: one run
    assert (retry["attempt"], retry["scheduled_for"]) == (2, failed["scheduled_for"])
    assert retry["status"] == "failed"  # the prompt fails every time
    again = await client.post(f"/api/runs/{failed['id']}/retry", headers=ALICE)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert "retried already" in again.json()["error"]["message"]
    await asyncio.sleep(1.5)  # a tick or more: still one retry run
    assert len(await _retry_runs(client, "flaky")) == 1

    await _add(client, ALICE, name="fine", prompt="hello", every="1h")
    ok = (await client.post("/api/jobs/fine/run", headers=ALICE)).json()["run"]
    refused = await client.post(f"/api/runs/{ok['id']}/retry", headers=ALICE)
    assert refused.status_code == 409 and "succeeded" in refused.json()["error"]["message"]
    stranger = await client.post(f"/api/runs/{failed['id']}/retry", headers=BOB)
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "not_found"
    missing = await client.post("/api/runs/nope/retry", headers=ALICE)
    assert missing.status_code == 404


async def test_the_overview_counts_hours_running_failing_and_paused(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, client = http
    await _add(client, ALICE, name="bad", prompt="fail", every="1h", max_retries=0)
    await _add(client, ALICE, name="good", prompt="hi", every="1h")
    await _add(client, ALICE, name="idle", prompt="hi", every="1h")
    await _add(client, BOB, name="bobs", prompt="fail", every="1h")
    await client.post("/api/jobs/bad/run", headers=ALICE)
    await client.post("/api/jobs/good/run", headers=ALICE)
    await client.post("/api/jobs/bobs/run", headers=BOB)
    await client.post("/api/jobs/idle/pause", headers=ALICE)
    assert gw.store is not None
    good = next(j for j in await gw.store.list_jobs() if j.name == "good")
    running = await gw.store.record_run_start(good.id)  # in flight now

    view = (await client.get("/api/overview", headers=ALICE)).json()
    assert view["counts"] == {
        "jobs": 3,
        "enabled": 2,
        "paused": 1,
        "failing": 1,
        "running": 1,
        "dead_deliveries": 0,
    }
    hours = view["hours"]
    assert len(hours) == 24 and [h["start"] for h in hours] == sorted(h["start"] for h in hours)
    now = datetime.now().astimezone()
    last = datetime.fromisoformat(hours[-1]["start"])
    assert last <= now and (now - last).total_seconds() < 3600 and last.minute == 0
    assert sum(h["runs"] for h in hours) == 3 and sum(h["failures"] for h in hours) == 1
    [run] = view["running"]
    assert run["id"] == running and run["elapsed_ms"] >= 0 and run["late_ms"] >= 0
    assert [j["name"] for j in view["failing"]] == ["bad"]
    assert [j["name"] for j in view["paused"]] == ["idle"]
    admin = (await client.get("/api/overview", headers=ROOT)).json()
    assert admin["counts"]["jobs"] == 4 and sum(h["failures"] for h in admin["hours"]) == 2
    await gw.store.record_run_complete(running, RunStatus.SUCCESS, "ok")


async def test_the_timeline_counts_every_fire_even_those_not_listed(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = http
    await _add(client, ROOT, name="often", prompt="p", every="30s")  # 2,880 a day
    await _add(client, ROOT, name="daily", prompt="p", cron="0 9 * * *")
    day = (await client.get("/api/timeline?hours=24", headers=ROOT)).json()
    assert len(day["fires"]) == 500 and day["truncated"] is True
    assert day["total"] in (2880 + 1, 2880)  # the daily fire, and the 30 s grid's count
    assert day["total_is_lower_bound"] is False
    assert [f["at"] for f in day["fires"]] == sorted(f["at"] for f in day["fires"])
    week = (await client.get("/api/timeline?hours=168&limit=5000", headers=ROOT)).json()
    assert len(week["fires"]) == 5000 and week["total"] >= 7 * 2880

    await _add(client, ROOT, name="secondly", prompt="p", cron="* * * * * *")
    busy = (await client.get("/api/timeline?hours=168&limit=10", headers=ROOT)).json()
    assert busy["total"] >= 50_000 and busy["total_is_lower_bound"] is True
    assert len(busy["fires"]) == 10 and busy["truncated"] is True
    quiet = (await client.get("/api/timeline?hours=1", headers=ALICE)).json()
    assert (quiet["fires"], quiet["total"], quiet["truncated"]) == ([], 0, False)
    for bad in ["hours=0", "hours=169", "limit=0", "limit=5001"]:
        assert (await client.get(f"/api/timeline?{bad}", headers=ROOT)).status_code == 400


async def test_the_preview_of_an_edit_shows_the_change_over_the_saved_job(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = http
    before = await _add(client, ALICE, name="digest", prompt="summarise", cron="0 9 * * *")
    url = "/api/jobs/digest/preview"
    answer = await client.post(url, json={"cron": "0 18 * * *"}, headers=ALICE)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert len(preview["next_runs"]) == 5 and preview["job_name"] == "digest"
    assert all("T18:00:00" in t for t in preview["next_runs"]), preview
    assert "summarise" in answer.text  # the saved prompt, under the changed schedule
    renamed = (await client.post(url, json={"name": "evening"}, headers=ALICE)).json()
    assert renamed["job_name"] == "evening"
    assert all("T09:00:00" in t for t in renamed["next_runs"])  # the saved schedule
    saved = (await client.get("/api/jobs/digest", headers=ALICE)).json()["job"]
    assert saved == before  # nothing saved
    assert (await client.post(url, json={}, headers=BOB)).status_code == 404
    bad = await client.post(url, json={"cron": "61 * * * *"}, headers=ALICE)
    assert bad.status_code == 400 and "minute" in bad.json()["error"]["message"]
