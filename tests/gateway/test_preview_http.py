"""POST /api/jobs/preview (the dashboard's live preview): the cron_preview tool over HTTP, as
its caller; saves nothing; bad input is a 4xx, someone else's job a 404."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.gateway.conftest import config, running_gateway

ALICE = {"Authorization": "Bearer alice-token-0123456789"}
BOB = {"Authorization": "Bearer bob-token-0123456789"}


async def test_the_preview_endpoint_previews_new_jobs_and_changes_as_the_caller(
    tmp_path: Path,
) -> None:
    async with running_gateway(config(tmp_path), str(tmp_path / "p.db")) as gw:
        assert gw.http_port is not None and gw.store is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}") as http:
            new = await http.post(
                "/api/jobs/preview",
                json={"name": "plan", "prompt": "Plan the day", "every": "1h", "tools": []},
                headers=ALICE,
            )
            assert new.status_code == 200, new.text
            body = new.json()
            assert body["dry_run"] is True and body["destinations"] == ["ws:user:alice"]
            assert body["runs_per_month"] == 720 and "Per month: 720 runs" in body["message"]
            assert await gw.store.list_jobs() == []
            bad = await http.post(
                "/api/jobs/preview",
                json={"prompt": "x", "every": "1h", "tools": ["rm"]},
                headers=ALICE,
            )
            assert bad.status_code == 400 and "rm" in bad.text
            added = await http.post(
                "/api/jobs", json={"name": "plan", "prompt": "Plan", "every": "1h"}, headers=ALICE
            )
            assert added.status_code == 200, added.text
            change = {"job": "plan", "every": "30m"}
            mine = await http.post("/api/jobs/preview", json=change, headers=ALICE)
            assert mine.status_code == 200 and mine.json()["runs_per_month"] == 1440
            theirs = await http.post("/api/jobs/preview", json=change, headers=BOB)
            assert theirs.status_code == 404
