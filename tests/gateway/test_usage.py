"""Cost and usage through a real gateway: ``/api/usage`` with the ownership rules of every
route, ``/metrics``' token and cost counters, and an owner budget from ``[gateway.tokens]``
enforced on that owner's scheduled runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from starpod_cron import JobContext, JobResult
from starpod_cron.config import GatewayConfig, TokenConfig
from starpod_cron.models import ModelUsage
from starpod_cron.pricing import ModelPrice, PricingConfig
from tests.conftest import eventually
from tests.gateway.conftest import config, running_gateway

ALICE = {"Authorization": "Bearer alice-token-0123456789"}
BOB = {"Authorization": "Bearer bob-token-0123456789"}
ROOT = {"Authorization": "Bearer root-token-0123456789"}
TOKENS = {
    "alice-token-0123456789": TokenConfig("alice", budget_usd_per_month=0.003),
    "bob-token-0123456789": TokenConfig("bob"),
    "root-token-0123456789": TokenConfig("root", admin=True),
}


async def priced(ctx: JobContext) -> JobResult:
    """$0.002 of model "m" per run (1,000 prompt and 500 completion tokens)."""
    return JobResult(ctx.run_id, "ok", 1000, 500, "m", (ModelUsage("m", 1000, 500),))


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    base = config(tmp_path)
    cfg = replace(
        base,
        executor=replace(base.executor, target="tests.gateway.test_usage:priced"),
        gateway=replace(base.gateway, tokens=TOKENS),
        pricing=PricingConfig(models={"m": ModelPrice(input_per_mtok=1, output_per_mtok=2)}),
    )
    assert isinstance(cfg.gateway, GatewayConfig)
    async with running_gateway(cfg, str(tmp_path / "usage.db")) as gw:
        assert gw.http_port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}") as client:
            yield gw, client


async def add_and_run(client: httpx.AsyncClient, name: str, who: dict[str, str]) -> Any:
    body = {"name": name, "prompt": "p", "every": "1h"}
    assert (await client.post("/api/jobs", json=body, headers=who)).status_code == 200
    run = (await client.post(f"/api/jobs/{name}/run", headers=who)).json()["run"]
    assert run["cost_usd"] == 0.002
    return run


async def test_usage_is_shown_to_each_as_the_other_routes_show_jobs(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = http
    await add_and_run(client, "a", ALICE)
    await add_and_run(client, "b", BOB)
    await client.post("/api/jobs/b/run", headers=BOB)
    alice = (await client.get("/api/usage", headers=ALICE)).json()
    assert [j["job_name"] for j in alice["jobs"]] == ["a"]
    assert [o["owner"] for o in alice["owners"]] == ["alice"]
    assert alice["total"] is None  # everyone's spend is for admins
    assert alice["jobs"][0]["today"]["cost_usd"] == 0.002
    assert alice["models"] == {"m": alice["jobs"][0]["total"]}
    root = (await client.get("/api/usage", headers=ROOT)).json()
    assert sorted(j["job_name"] for j in root["jobs"]) == ["a", "b"]
    assert {o["owner"]: o["month"]["runs"] for o in root["owners"]} == {"alice": 1, "bob": 2}
    assert root["total"]["today"]["cost_usd"] == pytest.approx(0.006)
    assert root["total"]["total"]["tokens"] == 4500
    text = (await client.get("/metrics", headers=ROOT)).text
    assert 'starpod_cron_cost_usd_total{job="b",model="m",owner="bob"} 0.004' in text
    assert (
        'starpod_cron_tokens_total{job="a",kind="completion",model="m",owner="alice"} 500.0' in text
    )
    assert (await client.get("/api/usage")).status_code == 401


async def test_an_owner_budget_from_the_token_skips_that_owners_scheduled_runs(
    http: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = http
    await add_and_run(client, "a", ALICE)
    await client.post("/api/jobs/a/run", headers=ALICE)  # manual runs count, never blocked
    body = {"name": "tick", "prompt": "p", "every": "1s"}
    assert (await client.post("/api/jobs", json=body, headers=ALICE)).status_code == 200
    assert (await client.post("/api/jobs", json=body, headers=BOB)).status_code == 200

    async def skipped(who: dict[str, str]) -> list[dict[str, Any]]:
        runs = (await client.get("/api/jobs/tick/runs", headers=who)).json()["runs"]
        return [r for r in runs if r["status"] == "skipped"]

    found = await eventually(lambda: skipped(ALICE), timeout=15, what="a budget skip")
    assert found[0]["error"] == "budget: $0.004 of $0.003 this month for user 'alice'"
    bob = (await client.get("/api/jobs/tick/runs", headers=BOB)).json()["runs"]
    assert bob and all(r["status"] != "skipped" for r in bob)  # bob has no budget
