"""The dashboard lived in: live updates that touch only what changed (an open result, the
focus, the scroll position and a half-typed form survive 20 events), times to the second with
their zone, the add form in the browser's zone, every page at 375 px without horizontal scroll
and usable with the keyboard, Log out only for someone logged in, a favicon, dark mode.

Debian's Chromium driven by Playwright against a real `starpod-cron serve` on 127.0.0.1 (the
fixtures of test_dashboard.py)."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import Serve, serve

from .test_dashboard import CHROMIUM, FLAGS, SHOTS, dashboard

__all__ = ["dashboard"]  # the fixture, used by name

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]

ALICE = {"Authorization": "Bearer alice-token-0123456789"}
PHONE = {"width": 375, "height": 740}


@asynccontextmanager
async def browser_page(**context: Any) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = await (await browser.new_context(**context)).new_page()
            yield page
        finally:
            await browser.close()


async def log_in(page: Any, base: str, token: str = "alice-token-0123456789") -> None:
    from playwright.async_api import expect

    await page.goto(base + "/login")
    await page.get_by_label("Gateway token").fill(token)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#live")).to_have_text(re.compile("live|: "))


async def until(what: str, check: Callable[[], Awaitable[bool] | bool], secs: float) -> None:
    """Wait for ``check()`` to hold (AssertionError naming ``what`` after ``secs``)."""
    deadline = time.monotonic() + secs
    while True:
        found = check()
        if found if isinstance(found, bool) else await found:
            return
        assert time.monotonic() < deadline, f"not within {secs}s: {what}"
        await asyncio.sleep(0.1)


def count_events(page: Any) -> list[int]:
    """A list whose length is the number of run events the page's WebSocket received."""
    seen: list[int] = []

    def on_socket(ws: Any) -> None:
        ws.on(
            "framereceived",
            lambda frame: seen.append(1) if '"notification"' in str(frame) else None,
        )

    page.on("websocket", on_socket)
    return seen


@pytest.mark.timeout(150)
async def test_events_update_only_what_changed_and_keep_what_the_person_opened(
    dashboard: tuple[Serve, str],
) -> None:
    from playwright.async_api import expect

    _, base = dashboard
    async with httpx.AsyncClient(base_url=base, headers=ALICE) as api:
        for n in range(3):  # jobs that do not run: rows an event must not touch
            still = {"name": f"still-{n}", "prompt": "p", "cron": "0 9 * * 1"}
            assert (await api.post("/api/jobs", json=still)).status_code == 200
        added = await api.post(
            "/api/jobs", json={"name": "tick", "prompt": "Say tick", "every": "1s"}
        )
        assert added.status_code == 200, added.text
        job_id = added.json()["job"]["id"]
    async with browser_page(
        viewport={"width": 1000, "height": 300}, timezone_id="Asia/Tokyo"
    ) as page:
        events = count_events(page)
        await log_in(page, base)
        await page.get_by_role("link", name="Jobs", exact=True).click()

        # the jobs page: the rows of jobs that did not run stay the same nodes, with focus
        await expect(page.locator('tr[data-job="tick"]')).to_be_visible()
        await page.get_by_role("button", name="Run now still-1").focus()
        await page.evaluate(
            "window.kept = [...document.querySelectorAll('tr[data-job^=\"still-\"]')]"
            ".concat([document.querySelector('main h2'), document.querySelector('table')])"
        )
        start = len(events)
        await until("6 events", lambda: len(events) - start > 5, 40)
        runs = page.locator('tr[data-job="tick"] td[data-label="Runs"]')
        await expect(runs).not_to_have_text("0")
        assert await page.evaluate("window.kept.every((n) => n.isConnected)")
        focused = await page.evaluate("document.activeElement.getAttribute('aria-label')")
        assert focused == "Run now still-1"

        # a job's page: an open result, the focus and the scroll position survive 20 events
        await page.goto(f"{base}/#/job/{job_id}")
        rows = page.locator("tr[data-run]")
        await expect(rows).not_to_have_count(0)
        # enough runs below the open one that the page can keep it in place (not at the end)
        await until("12 runs shown", lambda: _more(rows, 11), 40)
        opened = rows.nth(3)
        await opened.locator("summary").click()  # opened and focused
        await expect(opened.locator("pre.result")).to_have_text("done: Say tick")
        run_id = await opened.get_attribute("data-run")
        opened = page.locator(f'tr[data-run="{run_id}"]')  # that run, wherever it goes
        await opened.evaluate("(n) => window.scrollBy(0, n.getBoundingClientRect().top - 100)")
        marks = """() => ({
            row: document.querySelector('tr[data-run="RUN"]'),
            details: document.querySelector('tr[data-run="RUN"] details'),
            heading: document.querySelector('main h2'),
            fields: document.querySelector('dl.card'),
            table: document.querySelector('table.runs'),
        })""".replace("RUN", str(run_id))
        await page.evaluate(f"window.marks = ({marks})()")
        top = await opened.evaluate("(n) => n.getBoundingClientRect().top")
        before = await rows.count()
        start = len(events)
        await until("20 events", lambda: len(events) - start > 19, 60)
        await until("new runs shown", lambda: _more(rows, before), 10)
        kept = await page.evaluate(
            f"""(() => {{
                const now = ({marks})();
                return {{
                    same: Object.keys(now).every((k) => now[k] === window.marks[k]),
                    open: window.marks.details.open,
                    focus: document.activeElement === window.marks.details.querySelector('summary'),
                }};
            }})()"""
        )
        assert kept == {"same": True, "open": True, "focus": True}, kept
        # what the person was reading stays where it was on screen (new runs come in above)
        moved = await opened.evaluate("(n) => n.getBoundingClientRect().top") - top
        assert abs(moved) < 2, f"the open result moved {moved}px"
        await expect(opened.locator("pre.result")).to_be_visible()

        # times to the second, with their zone (the job's: UTC by default)
        next_run = page.locator('dd[data-key="dd-Next run"]')
        await expect(next_run).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+"))
        started = opened.locator('td[data-label="Started"]')
        await expect(started).to_have_text(re.compile(r"\d\d:\d\d:\d\d GMT\+9"))  # the browser's

        # a half-filled add form, in the browser's zone by default, survives events too
        await page.get_by_role("link", name="Add a job").click()
        await expect(page.locator('#add-form [name="timezone"]')).to_have_value("Asia/Tokyo")
        await page.get_by_label("Name").fill("half")
        await page.get_by_label("Prompt", exact=True).fill("Half-typed prom")
        start = len(events)
        await until("5 events", lambda: len(events) - start > 4, 30)
        await expect(page.get_by_label("Prompt", exact=True)).to_have_value("Half-typed prom")
        await expect(page.get_by_label("Prompt", exact=True)).to_be_focused()
        async with httpx.AsyncClient(base_url=base, headers=ALICE) as api:
            await api.post(f"/api/jobs/{job_id}/pause")


async def _more(rows: Any, than: int) -> bool:
    return bool(await rows.count() > than)


@pytest.mark.timeout(150)
async def test_every_page_fits_a_phone_and_works_with_the_keyboard(
    dashboard: tuple[Serve, str],
) -> None:
    from playwright.async_api import expect

    _, base = dashboard
    long = "a-rather-long-job-name-that-does-not-wrap-" * 2
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": "Bearer root-token-0123456789"}
    ) as api:
        added = await api.post(
            "/api/jobs", json={"name": long[:60], "prompt": "x" * 300, "cron": "*/5 * * * *"}
        )
        assert added.status_code == 200, added.text
        job_id = added.json()["job"]["id"]
        for _ in range(2):
            assert (await api.post(f"/api/jobs/{job_id}/run")).status_code == 200
    SHOTS.mkdir(exist_ok=True)
    async with browser_page(viewport=PHONE) as page:
        await page.goto(base + "/login")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the login page is {width}px wide"
        await log_in(page, base, "root-token-0123456789")
        links = await page.locator("nav a:visible").evaluate_all(
            "(links) => links.map((a) => a.getAttribute('href'))"
        )
        assert "#/deliveries" in links  # an admin: every page the dashboard links to
        for where in [*links, f"#/job/{job_id}"]:
            await page.goto(f"{base}/{where}")
            await expect(page.locator("main h2")).to_be_visible()
            if where.startswith("#/job/"):
                await page.locator("tr[data-run] summary").first.click()  # a long result open
                await expect(page.locator("pre.result").first).to_be_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{where} is {width}px wide on a 375px screen"
            name = where.strip("#/").split("/")[0]
            await page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)

        # the keyboard alone: to the add form, fill it, submit it
        await page.goto(base + "/#/jobs")
        await expect(page.locator("main h2")).to_be_visible()
        for _ in range(15):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.textContent") == "Add a job":
                break
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Add a job")).to_be_focused()
        await page.keyboard.press("Tab")
        await expect(page.get_by_label("Name")).to_be_focused()
        await page.keyboard.type("typed")
        await page.keyboard.press("Tab")
        await page.keyboard.type("Typed with the keyboard")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Tab")
        await page.keyboard.type("0 9 * * 1-5")  # the kind stays cron
        await page.get_by_label("When").press("Enter")  # submits the form
        await expect(page.locator('tr[data-job="typed"]')).to_be_visible()


@pytest.mark.timeout(120)
async def test_log_out_only_for_someone_logged_in_favicon_and_dark_mode(
    dashboard: tuple[Serve, str], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    _, base = dashboard
    async with httpx.AsyncClient(base_url=base) as http:
        icon = await http.get("/static/favicon.svg")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert "<svg" in icon.text
    async with browser_page(color_scheme="dark") as page:
        await log_in(page, base)
        await expect(page.get_by_role("button", name="Log out")).to_be_visible()
        await expect(page.locator("#who")).to_have_text("Signed in as alice")
        assert await page.locator('link[rel="icon"]').get_attribute("href") == (
            "static/favicon.svg"
        )
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert sum(map(int, re.findall(r"\d+", background)[:3])) < 150, background  # dark
        await page.screenshot(path=str(SHOTS / "jobs-dark.png"))
    # without tokens nobody logs in, so there is nothing to log out of
    folder = tmp_path / "open"
    folder.mkdir()
    (folder / "agent.toml").write_text("[gateway]\nstandalone_ws = false\n")
    gateway = await serve(folder, log=folder / "serve.log")
    try:
        text = await gateway.read_until(b"Dashboard and API on")
        match = re.search(r"Dashboard and API on (http://[\d.]+:\d+)/", text)
        assert match, text
        async with browser_page(color_scheme="light") as page:
            await page.goto(match.group(1) + "/")
            await expect(page.locator("#live")).to_have_text("live")
            await expect(page.get_by_role("button", name="Log out")).to_be_hidden()
            background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert sum(map(int, re.findall(r"\d+", background)[:3])) > 600, background  # light
    finally:
        gateway.proc.send_signal(signal.SIGTERM)
        assert await gateway.proc.wait() == 0
