"""What the dashboard's browser tests check on every page: axe-core (vendored from npm under
tests/gateway/vendor/, injected into the page) finds no serious or critical violation, the page
has no horizontal scroll at a phone's width, and a chart's canvas has drawn pixels; and the
data the tour and the screenshots (tests/gateway/screenshots.py) show."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

# the tour's and the screenshots' gateway: one port; history enough for 500 runs of one job
CONFIG = (
    "[cron]\nruns_keep_per_job = 1000\n"
    '[executor]\nkind = "python"\ntarget = "tests.gateway.targets:run"\n'
    "[gateway]\nmin_interval_secs = 0\nstandalone_ws = false\n"
    '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
)
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PHONE_WIDTH = 375


async def axe_violations(page: Any) -> list[str]:
    """The serious and critical axe-core violations of the page shown, one line each."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    found = await page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}: `
                    + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ") + ")");
        }"""
    )
    return list(found)


async def scroll_width(page: Any) -> int:
    return int(await page.evaluate("document.documentElement.scrollWidth"))


async def drawn_pixels(page: Any, selector: str, variable: str = "--accent") -> int:
    """How many pixels of the canvas under ``selector`` are drawn in the colour of a series
    (the CSS ``variable``; the grid and axes are other colours, so an empty chart has none)."""
    return int(
        await page.evaluate(
            """([selector, variable]) => {
                const canvas = document.querySelector(selector + " canvas");
                if (!canvas || !canvas.width) return 0;
                const root = getComputedStyle(document.documentElement);
                const hex = root.getPropertyValue(variable).trim();
                const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
                const { width, height } = canvas;
                const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
                let drawn = 0;
                for (let i = 0; i < data.length; i += 4) {
                    const near = want.every((c, k) => Math.abs(data[i + k] - c) < 24);
                    if (near && data[i + 3] > 200) drawn += 1;
                }
                return drawn;
            }""",
            [selector, variable],
        )
    )


async def seed(api: httpx.AsyncClient) -> dict[str, Any]:
    """A failed run to retry; 500-odd runs of one job (a backfill) to page through; a job
    firing 2,000 times in the next 24 h; a job to watch."""
    ids: dict[str, Any] = {}
    for body in (
        {"name": "flaky", "prompt": "fail once", "cron": "0 9 * * 1", "max_retries": 0},
        {"name": "bulk", "prompt": "bulk work", "cron": "* * * * *"},
        {"name": "often", "prompt": "often", "every": "43200ms"},  # 86,400 s / 43.2 s = 2,000
        {"name": "watched", "prompt": "Say watched", "cron": "0 9 * * 1"},
    ):
        added = await api.post("/api/jobs", json=body)
        assert added.status_code == 200, added.text
        ids[body["name"]] = added.json()["job"]["id"]
    assert (await api.post("/api/jobs/flaky/run")).status_code == 200
    assert (await api.post("/api/jobs/bulk/pause")).status_code == 200  # no fire of its own
    start = (datetime.now(UTC) - timedelta(minutes=500)).replace(second=30, microsecond=0)
    backfill = await api.post(
        "/api/jobs/bulk/backfill",
        json={"from": start.isoformat(), "to": "now", "max": 1000},
        timeout=120,
    )
    assert backfill.status_code == 200, backfill.text
    ids["bulk_runs"] = len(backfill.json()["occurrences"])
    assert ids["bulk_runs"] >= 500
    for _ in range(600):  # the backfill's last runs finish
        listed = (await api.get("/api/runs", params={"job": "bulk", "limit": 1})).json()
        if listed["total"] == ids["bulk_runs"] and listed["runs"][0]["status"] != "running":
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"the backfill's runs did not finish: {listed}")
    for _ in range(3):  # results to open on the watched job's page
        assert (await api.post("/api/jobs/watched/run")).status_code == 200
    return ids
