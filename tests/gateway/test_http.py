"""The HTTP API, health checks and metrics of a real gateway (in this process, real sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from tests.conftest import eventually
from tests.gateway.conftest import config, running_gateway, tab_secret, ws_client

ALICE = {"Authorization": "Bearer alice-token-0123456789"}
BOB = {"Authorization": "Bearer bob-token-0123456789"}
ROOT = {"Authorization": "Bearer root-token-0123456789"}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with running_gateway(config(tmp_path), str(tmp_path / "http.db")) as gw:
        assert gw.http_port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}") as client:
            yield gw, client


async def test_users_cannot_read_or_change_each_others_jobs(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = http
    added = await client.post(
        "/api/jobs", json={"name": "plan", "prompt": "secret", "every": "1h"}, headers=ALICE
    )
    assert added.status_code == 200, added.text
    job_id = added.json()["job"]["id"]
    for method, path in [
        ("GET", "/api/jobs/plan"),
        ("GET", f"/api/jobs/{job_id}"),
        ("PATCH", "/api/jobs/plan"),
        ("DELETE", f"/api/jobs/{job_id}"),
        ("POST", "/api/jobs/plan/pause"),
        ("POST", f"/api/jobs/{job_id}/run"),
        ("GET", "/api/jobs/plan/runs"),
    ]:
        body = {"prompt": "mine now"} if method == "PATCH" else None
        answer = await client.request(method, path, json=body, headers=BOB)
        assert answer.status_code == 404, (method, path, answer.text)
        assert "secret" not in answer.text
    assert (await client.get("/api/jobs", headers=BOB)).json() == {"jobs": [], "total": 0}
    assert (await client.get("/api/runs", headers=BOB)).json() == {
        "runs": [],
        "total": 0,
        "next": None,
    }
    answer = await client.get("/api/deliveries", headers=BOB)  # only those of Bob's own jobs
    assert answer.status_code == 200 and answer.json()["deliveries"] == []
    mine = await client.get("/api/jobs/plan", headers=ALICE)
    assert mine.json()["job"]["prompt"] == "secret"  # untouched by Bob's attempts
    assert (await client.get("/api/jobs", headers=ROOT)).json()["total"] == 1  # admins see all


async def test_the_api_runs_pauses_and_answers_errors_with_the_clis_words(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = http
    bad = await client.post("/api/jobs", json={"prompt": "p", "cron": "61 * * * *"}, headers=ROOT)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"
    assert "minute" in bad.json()["error"]["message"]
    assert (await client.get("/api/jobs")).status_code == 401
    assert (
        await client.get("/api/jobs", headers={"Authorization": "Bearer nope"})
    ).status_code == 401
    await client.post("/api/jobs", json={"name": "d", "prompt": "hi", "every": "1h"}, headers=ROOT)
    run = (await client.post("/api/jobs/d/run", headers=ROOT)).json()["run"]
    assert (run["status"], run["result"]) == ("success", "done: hi")
    paused = (await client.post("/api/jobs/d/pause", headers=ROOT)).json()["job"]
    assert paused["enabled"] is False
    runs = (await client.get("/api/runs?status=success", headers=ROOT)).json()["runs"]
    assert [r["id"] for r in runs] == [run["id"]]
    preview = await client.post("/api/preview", json={"cron": "0 9 * * 1-5"}, headers=ROOT)
    assert len(preview.json()["next_runs"]) == 5 and "Monday through Friday" in preview.text
    assert (await client.get("/api/runs?limit=abc", headers=ROOT)).status_code == 400
    spec = (await client.get("/openapi.json")).json()
    assert "/api/jobs" in spec["paths"] and spec["openapi"].startswith("3.")


async def test_cookie_sessions_need_the_tab_secret_for_every_request(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    """The cookie reaches any program on another port of this host (browsers send it to every
    port): alone, or with the constant header older dashboards sent, it is refused (403); the
    tab secret handed over at log-in makes it work."""
    _, client = http
    refused = await client.post("/login", data={"token": "wrong"})
    assert refused.status_code == 303 and refused.headers["location"] == "login?error=1"
    assert "set-cookie" not in refused.headers
    login = await client.post("/login", data={"token": "alice-token-0123456789"})
    cookie = login.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert login.headers["cache-control"] == "no-store"
    secret = tab_secret(login.text)
    job = {"prompt": "p", "every": "1h"}
    wrong = secret[:-1] + ("1" if secret.endswith("0") else "0")
    for replayed in ({}, {"X-Starpod-CSRF": "1"}, {"X-Starpod-CSRF": wrong}):
        for answer in (
            await client.get("/api/jobs", headers=replayed),
            await client.get("/api/me", headers=replayed),
            await client.get("/metrics", headers=replayed),
            await client.post("/api/jobs", json=job, headers=replayed),
        ):
            assert answer.status_code == 403, (replayed, answer.text)
            assert answer.json()["error"]["code"] == "csrf"
    assert (await client.get("/api/jobs", headers={"X-Starpod-CSRF": secret})).json()["jobs"] == []
    made = await client.post("/api/jobs", json=job, headers={"X-Starpod-CSRF": secret})
    assert made.status_code == 200 and made.json()["job"]["user_id"] == "alice"
    bearer = await client.get(
        "/api/jobs", headers={"Authorization": "Bearer alice-token-0123456789"}
    )
    assert len(bearer.json()["jobs"]) == 1  # token clients need no secret


async def _ready(client: httpx.AsyncClient) -> httpx.Response | None:
    answer = await client.get("/readyz")
    return answer if answer.status_code == 200 else None


async def test_health_readiness_and_metrics(http: tuple[Gateway, httpx.AsyncClient]) -> None:
    gw, client = http
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    # ready once the scheduler finished its first pass (recovery included)
    ready = await eventually(lambda: _ready(client), timeout=10, what="/readyz 200")
    assert ready.json()["checks"]["store"] == "ok"
    assert (await client.get("/metrics")).status_code == 401  # tokens are configured
    await client.post("/api/jobs", json={"name": "m", "prompt": "x", "every": "1h"}, headers=ROOT)
    await client.post("/api/jobs/m/run", headers=ROOT)
    async with ws_client(gw, "alice-token-0123456789"):
        text = (await client.get("/metrics", headers=ROOT)).text
    assert 'starpod_cron_runs_total{status="success"} 1.0' in text
    assert "starpod_cron_run_lateness_seconds_bucket" in text
    assert "starpod_cron_executor_duration_seconds_count 1.0" in text
    assert "starpod_cron_websocket_clients 1.0" in text
    # the manual run's WebSocket events: run.started, its notification and run.finished
    assert 'starpod_cron_deliveries{status="published"} 3.0' in text
    assert "process_resident_memory_bytes" in text
    # the store gone: not ready (503), but alive
    assert gw.store is not None
    await gw.store.close()
    await asyncio.sleep(0)
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["status"] == "not ready"
    assert (await client.get("/healthz")).status_code == 200


async def test_plain_http_to_the_websocket_port_is_sent_to_the_dashboard(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, _ = http
    assert gw.ws is not None
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(f"http://127.0.0.1:{gw.ws.port}/healthz")
        assert answer.status_code == 307  # was: 426 Upgrade Required
        assert answer.headers["location"] == f"http://127.0.0.1:{gw.http_port}/healthz"
        followed = await browser.get(
            f"http://127.0.0.1:{gw.ws.port}/healthz", follow_redirects=True
        )
        assert followed.json() == {"status": "ok"}


async def test_a_schedule_in_words_over_http_and_websocket(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    """``when`` through POST /api/preview (saves nothing), POST /api/jobs and the WebSocket
    ``cron.add``: each answers what the phrase was understood as; a refusal is a 400 /
    ``invalid`` naming the forms it reads, and nothing is saved."""
    gw, client = http
    assert gw.store is not None
    body = {"when": "every weekday at 9:00", "timezone": "Europe/Rome"}
    preview = (await client.post("/api/preview", json=body, headers=ALICE)).json()
    assert preview["schedule"] == "cron 0 9 * * 1-5 (Europe/Rome)"
    assert len(preview["next_runs"]) == 5 and preview["in_words"].endswith("Monday through Friday")
    assert await gw.store.list_jobs() == []
    added = await client.post("/api/jobs", json={**body, "prompt": "p", "name": "w"}, headers=ALICE)
    assert added.status_code == 200, added.text
    assert added.json()["interpretation"]["next_runs"] == preview["next_runs"]
    assert added.json()["job"]["schedule"]["expression"] == "0 9 * * 1-5"
    refused = await client.post("/api/jobs", json={"prompt": "p", "when": "at 9"}, headers=ALICE)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid"
    assert "could mean today, tomorrow or every day" in refused.json()["error"]["message"]
    async with ws_client(gw, "alice-token-0123456789") as alice:
        answer = await alice.request("cron.add", name="soon", prompt="p", when="in 20 minutes")
        assert answer["ok"], answer
        assert answer["data"]["interpretation"]["delete_after_run"] is True
        bad = await alice.request("cron.add", prompt="p", when="every 9")
        assert bad["error"]["code"] == "invalid" and "every 9 minutes" in bad["error"]["message"]
    assert sorted(j.name for j in await gw.store.list_jobs()) == ["soon", "w"]


async def test_the_gateway_backfills_in_its_scheduler_and_refuses_above_the_limit(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = http
    await client.post(
        "/api/jobs", json={"name": "h", "prompt": "hourly", "cron": "0 * * * *"}, headers=ALICE
    )
    since = {"from": "2026-11-01 00:00", "to": "2026-11-01 02:30"}
    dry = await client.post("/api/jobs/h/backfill", json={**since, "dry_run": True}, headers=ALICE)
    assert dry.status_code == 200, dry.text
    assert [t[11:16] for t in dry.json()["occurrences"]] == ["00:00", "01:00", "02:00"]
    done = (await client.post("/api/jobs/h/backfill", json=since, headers=ALICE)).json()
    assert [(r["status"], r["trigger"], r["result"]) for r in done["runs"]] == [
        ("success", "backfill", "done: hourly")
    ] * 3
    again = (await client.post("/api/jobs/h/backfill", json=since, headers=ALICE)).json()
    assert again["runs"] == [] and again["occurrences"] == []
    wide = {"from": "2026-01-01 00:00", "to": "2026-11-01 00:00"}
    refused = await client.post("/api/jobs/h/backfill", json=wide, headers=ALICE)
    assert refused.status_code == 400 and "pass --max" in refused.json()["error"]["message"]
    over = await client.post("/api/jobs/h/backfill", json={**wide, "max": 9000}, headers=ALICE)
    assert over.status_code == 403 and over.json()["error"]["code"] == "limit"  # admins only
    assert len((await client.get("/api/jobs/h/runs", headers=ALICE)).json()["runs"]) == 3
    theirs = await client.post("/api/jobs/h/backfill", json=since, headers=BOB)
    assert theirs.status_code == 404
