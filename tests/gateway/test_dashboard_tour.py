"""The dashboard's "done when", end to end: Debian's Chromium driven by Playwright against a real
`starpod-cron serve` (one port: the HTTP port serves /ws too). It logs in; adds a job through
the form; watches runs appear while a result stays expanded and a half-typed edit keeps its
text (the same DOM nodes survive 20 events); edits the job; retries a failed run (a double
click makes one run); filters runs and pages through 500 of them (each run once); reads how
many fires the timeline shows out of 2,000 in 24 h; sees charts drawn with data; and, on every
page, checks there is no horizontal scroll at 375 px and no serious or critical axe-core
violation. The path-prefix proxy is tests/gateway/test_dashboard_proxy.py's."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from starpod_cron.fields import option_fields
from tests.processes import serve

from .dashboard_kit import CONFIG, PHONE_WIDTH, axe_violations, drawn_pixels, scroll_width, seed
from .test_dashboard import CHROMIUM, SHOTS
from .test_dashboard_live import ALICE, browser_page, count_events, log_in, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[str]:
    """A real `starpod-cron serve` (dashboard_kit.CONFIG); its HTTP address."""
    (tmp_path / "agent.toml").write_text(CONFIG)
    gateway = await serve(tmp_path, log=tmp_path / "serve.log")
    text = await gateway.read_until(b"Dashboard and API on")
    match = re.search(r"Dashboard and API on (http://[\d.]+:\d+)/", text)
    assert match, text
    try:
        yield match.group(1)
    finally:
        gateway.proc.send_signal(signal.SIGTERM)
        assert await gateway.proc.wait() == 0


@pytest.mark.timeout(420)
async def test_the_dashboard_tour(base: str) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=base, headers=ALICE, timeout=30) as api:
        ids = await seed(api)
        async with browser_page(viewport={"width": 1280, "height": 800}) as page:
            sockets: list[str] = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            events = count_events(page)
            await log_in(page, base)
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            # one WebSocket, through the HTTP port's /ws
            assert sockets == [base.replace("http://", "ws://") + "/ws"], sockets
            await expect(page.locator("#who")).to_have_text("Signed in as alice")

            # the overview: counts, and the chart of runs per hour drawn with its data
            await expect(page.locator(".count-failing strong")).to_have_text("1")
            await expect(page.locator(".count-jobs strong")).to_have_text("4")
            hours = page.locator("#hours-total")
            await expect(hours).to_contain_text(re.compile(r"[5-9]\d\d runs"))
            await until(
                "the HOURLY chart drawn",
                lambda: _drawn(page, '[data-chart="overview-hours"]'),
                10,
            )
            await expect(page.locator("ul.job-list").first).to_contain_text("flaky")

            # add a job through the form
            await page.get_by_role("link", name="Add a job").click()
            form = page.locator("#add-form")
            await form.get_by_label("Name").fill("tour")
            await form.get_by_label("Prompt", exact=True).fill("Take the tour")
            await form.get_by_label("When").fill("0 7 * * *")
            await form.get_by_label("Timeout", exact=True).fill("90m")
            await form.get_by_label("Notify").select_option("on_failure")
            await expect(page.locator("#preview-list li")).to_have_count(5)
            await form.get_by_role("button", name="Add job").click()
            await expect(page.locator('tr[data-job="tour"]')).to_be_visible()
            tour = (await api.get("/api/jobs/tour")).json()["job"]
            assert (tour["timeout_secs"], tour["notify"]) == (5400, "on_failure")

            # the jobs page's search and filters, in place
            await page.get_by_label("Search", exact=True).fill("bulk")
            await expect(page.locator("tr[data-job]:visible")).to_have_count(1)
            await expect(page.get_by_role("heading", name="Jobs (1 of 5)")).to_be_visible()
            await page.get_by_label("Search", exact=True).fill("")
            await page.get_by_label("State").select_option("failing")
            await expect(page.locator("tr[data-job]:visible")).to_have_text([re.compile("flaky")])
            await page.get_by_label("State").select_option("paused")
            await expect(page.locator("tr[data-job]:visible")).to_have_text([re.compile("bulk")])
            await page.get_by_label("State").select_option("")
            await page.get_by_label("Schedule kind").select_option("interval")
            await expect(page.locator("tr[data-job]:visible")).to_have_text([re.compile("often")])

            # the watched job's page: an open result and a half-typed edit survive 20 events
            await page.goto(f"{base}/#/job/{ids['watched']}")
            rows = page.locator("tr[data-run]")
            await expect(rows).to_have_count(3)
            opened = rows.nth(1)
            await opened.locator("summary").click()
            await expect(opened.locator("pre.result")).to_have_text("done: Say watched")
            run_id = await opened.get_attribute("data-run")
            await page.get_by_text("Edit", exact=True).click()
            edit = page.locator("#edit-form")
            for field in option_fields():  # every declared field, as in the add form
                shown = 0 if field.name == "user_id" else 1  # admins only
                await expect(edit.locator(f'[name="{field.name}"]')).to_have_count(shown)
            await expect(edit.locator('[name="timeout_secs"]')).to_have_value("2h")  # as the CLI
            prompt = edit.get_by_label("Prompt", exact=True)
            await prompt.fill("Say watched, half-ty")
            await page.evaluate(
                f"""window.marks = [
                    document.querySelector('tr[data-run="{run_id}"]'),
                    document.querySelector('tr[data-run="{run_id}"] details'),
                    document.querySelector('#edit-form'),
                    document.querySelector('#edit-form textarea'),
                    document.querySelector('[data-chart="job-runs"] canvas'),
                ]"""
            )
            start = len(events)
            for _ in range(20):
                assert (await api.post("/api/jobs/watched/run")).status_code == 200
            await until("20 events", lambda: len(events) - start >= 20, 60)
            await expect(rows).to_have_count(23)
            kept = await page.evaluate(
                """window.marks.every((n) => n && n.isConnected)
                && window.marks[1].open && document.activeElement === window.marks[3]"""
            )
            assert kept, "an update replaced the open result, the edit form or its focus"
            await expect(prompt).to_have_value("Say watched, half-ty")
            assert await _drawn(page, '[data-chart="job-runs"]')

            # edit the job: only what changed is sent
            await prompt.fill("Say watched, edited")
            await edit.get_by_label("Timeout", exact=True).fill("1h30m")
            await expect(page.locator("#edit-job-preview")).to_contain_text("Say watched, edited")
            await edit.get_by_role("button", name="Save changes").click()
            await expect(page.locator('dd[data-key="dd-Timeout"]')).to_have_text("1h30m")
            await expect(page.locator('dd[data-key="dd-Prompt"]')).to_have_text(
                "Say watched, edited"
            )
            watched = (await api.get("/api/jobs/watched")).json()["job"]
            assert (watched["prompt"], watched["timeout_secs"]) == ("Say watched, edited", 5400)

            # retry the failed run: a double click makes one new run, attempt 2, trigger retry
            await page.goto(f"{base}/#/job/{ids['flaky']}")
            retry = page.get_by_role("button", name=re.compile("^Retry the failed run of flaky"))
            await retry.dblclick()
            await expect(page.locator("tr[data-run]")).to_have_count(2)
            await asyncio.sleep(1)  # a second run, if the double click made one, would be here
            runs = (await api.get("/api/jobs/flaky/runs")).json()["runs"]
            assert sorted((r["attempt"], r["trigger"]) for r in runs) == [
                (1, "manual"),
                (2, "retry"),
            ], runs

            # the runs page: filter by job and status, page through every run once
            await page.get_by_role("link", name="Runs", exact=True).click()
            await page.get_by_label("Job (name or id)").fill("bulk")
            await page.get_by_label("Job (name or id)").press("Enter")
            total = ids["bulk_runs"]
            count = page.locator(".pager-count")
            await expect(count).to_have_text(f"Runs 1–50 of {total:,}")
            seen: list[str] = []
            while True:
                await expect(page.locator("tr[data-run]").first).to_be_visible()
                seen += await page.locator("tr[data-run]").evaluate_all(
                    "(rows) => rows.map((r) => r.dataset.run)"
                )
                older = page.get_by_role("button", name="Older")
                if await older.is_disabled():
                    break
                before = await count.text_content()
                await older.click()
                await expect(count).not_to_have_text(before or "")
            assert len(seen) == total and len(set(seen)) == total, (len(seen), len(set(seen)))
            await expect(count).to_have_text(re.compile(rf"of {total:,}$"))
            last_start = (total - 1) // 50 * 50 + 1
            await page.get_by_role("button", name="Newer").click()  # the page before the last
            before_last = f"Runs {last_start - 50:,}–{last_start - 1:,} of {total:,}"
            await expect(count).to_have_text(before_last)
            await page.get_by_label("Status").select_option("failed")
            await expect(page.get_by_text("No runs match these filters.")).to_be_visible()

            # the timeline: 2,000 fires in 24 h, and it says how many it shows
            await page.get_by_role("link", name="Timeline").click()
            timeline = (await api.get("/api/timeline?hours=24")).json()
            assert timeline["total"] >= 1999 and timeline["truncated"], timeline["total"]
            shown = len(timeline["fires"])
            await expect(page.locator("#timeline-count")).to_contain_text(
                f"Showing {shown:,} of {timeline['total']:,} fires"
            )
            await until("the timeline drawn", lambda: _drawn(page, '[data-chart="timeline"]'), 10)
            await page.get_by_role("link", name="Next 7 days").click()
            await expect(page.get_by_role("heading", name="Next 7 days")).to_be_visible()

            # every page: no serious or critical axe violation; at 375 px no horizontal scroll
            pages = ["#/", "#/jobs", "#/add", f"#/job/{ids['flaky']}", "#/runs", "#/timeline"]
            pages += ["#/usage", "#/deliveries"]
            SHOTS.mkdir(exist_ok=True)
            for width in (1280, PHONE_WIDTH):
                await page.set_viewport_size({"width": width, "height": 800})
                for where in pages:
                    await page.goto(f"{base}/{where}")
                    await expect(page.locator("main h2")).to_be_visible()
                    if where == "#/":  # the chart fills the width of a phone too
                        await until("chart", lambda: _drawn(page, HOURLY), 10)
                        box = await page.locator(HOURLY).bounding_box()
                        canvas = await page.locator(f"{HOURLY} canvas").bounding_box()
                        assert box and canvas and canvas["width"] >= box["width"] - 2, (box, canvas)
                    assert await axe_violations(page) == [], where
                    if width == PHONE_WIDTH:
                        wide = await scroll_width(page)
                        assert wide <= PHONE_WIDTH, f"{where} is {wide}px wide on a phone"
            await page.context.clear_cookies()
            await page.goto(f"{base}/login")
            assert await axe_violations(page) == [], "login"
            assert await scroll_width(page) <= PHONE_WIDTH


@pytest.mark.timeout(120)
async def test_the_overview_shows_what_runs_now_and_its_elapsed_time_ticks(base: str) -> None:
    from playwright.async_api import expect

    async with httpx.AsyncClient(base_url=base, headers=ALICE, timeout=60) as api:
        added = await api.post(
            "/api/jobs", json={"name": "slow", "prompt": "sleep:40", "every": "1h"}
        )
        assert added.status_code == 200, added.text
        running = asyncio.ensure_future(api.post("/api/jobs/slow/run"))
        async with browser_page(viewport={"width": PHONE_WIDTH, "height": 740}) as page:
            await log_in(page, base)
            row = page.locator("table.running tr[data-run]")
            await expect(row).to_contain_text("slow")
            await expect(page.locator(".count-running strong")).to_have_text("1")
            elapsed = row.locator(".elapsed")
            await page.evaluate("window.ticking = document.querySelector('.elapsed')")
            first = await elapsed.text_content()
            await expect(elapsed).not_to_have_text(first or "")  # it ticks, in place
            assert await page.evaluate("window.ticking === document.querySelector('.elapsed')")
            assert re.fullmatch(r"\d+s|\d+m \d\ds", await elapsed.text_content() or ""), first
            assert await scroll_width(page) <= PHONE_WIDTH
        running.cancel()


HOURLY = '[data-chart="overview-hours"]'


async def _drawn(page: Any, selector: str) -> bool:
    return await drawn_pixels(page, selector) > 20
