"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
`starpod-cron serve` on 127.0.0.1. Screenshots of each page go to tests/artifacts/."""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from starpod_cron.fields import option_fields
from tests.processes import Serve, serve

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parent.parent / "artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]


@pytest.fixture
async def dashboard(tmp_path: Path) -> AsyncIterator[tuple[Serve, str]]:
    (tmp_path / "agent.toml").write_text(
        '[executor]\nkind = "python"\ntarget = "tests.gateway.targets:run"\n'
        # one port: the dashboard must need nothing but the HTTP port (its WebSocket is /ws)
        "[gateway]\nmin_interval_secs = 0\nstandalone_ws = false\n"
        '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
        '"root-token-0123456789" = { user_id = "root", admin = true }\n'
    )
    gateway = await serve(tmp_path, log=tmp_path / "serve.log")
    text = await gateway.read_until(b"Dashboard and API on")
    match = re.search(r"Dashboard and API on (http://[\d.]+:\d+)/", text)
    assert match, text
    try:
        yield gateway, match.group(1)
    finally:
        gateway.proc.send_signal(signal.SIGTERM)
        assert await gateway.proc.wait() == 0


@pytest.mark.timeout(120)
async def test_log_in_add_run_live_pause_and_read_the_result(
    dashboard: tuple[Serve, str],
) -> None:
    from playwright.async_api import async_playwright, expect

    _, base = dashboard
    SHOTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = await browser.new_page(viewport={"width": 1100, "height": 800})
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        try:
            # a wrong token is refused
            await page.goto(base + "/")
            await expect(page).to_have_url(base + "/login")
            await page.get_by_label("Gateway token").fill("not-a-token")
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
            await page.screenshot(path=str(SHOTS / "login.png"))

            await page.get_by_label("Gateway token").fill("alice-token-0123456789")
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            await page.get_by_role("link", name="Jobs", exact=True).click()
            await expect(page.get_by_role("heading", name="Jobs (0)")).to_be_visible()
            await expect(page.locator("#live")).to_have_text("live")
            # exactly one WebSocket, to /ws of the page's own address (no second port)
            assert sockets == [base.replace("http://", "ws://") + "/ws"], sockets
            await expect(page.get_by_role("button", name="Log out")).to_be_visible()

            # add a job through the form, with the live preview of its next fires
            await page.get_by_role("link", name="Add a job").click()
            # every declared field of a new job has its input (user_id: admins only)
            for field in option_fields():
                shown = 0 if field.name == "user_id" else 1
                await expect(page.locator(f'#add-form [name="{field.name}"]')).to_have_count(shown)
            await page.get_by_label("Name").fill("stretch")
            await page.get_by_label("Prompt", exact=True).fill("Remind me to stretch")
            await page.get_by_label("Schedule kind").select_option("cron")
            await page.get_by_label("When").fill("0 9 * * 1-5")
            await page.get_by_label("Jitter", exact=True).fill("10m")  # as the CLI writes it
            await page.get_by_label("Overlap").select_option("allow")
            await page.get_by_label("Max instances").fill("2")
            await expect(page.locator("#preview-list li")).to_have_count(5)
            await expect(page.locator("#preview")).to_contain_text("Monday through Friday")
            await page.screenshot(path=str(SHOTS / "add.png"))
            await page.get_by_role("button", name="Add job").click()
            row = page.locator('tr[data-job="stretch"]')
            await expect(row).to_be_visible()
            await expect(row.locator(".next-run")).to_contain_text(re.compile(r"in \d+[mhd]"))
            await expect(row).to_contain_text("At 09:00, Monday through Friday")
            await page.screenshot(path=str(SHOTS / "jobs.png"))

            # the job page; a run made elsewhere (the API) appears live, without a reload
            await row.get_by_role("link", name="stretch").click()
            await expect(page.get_by_role("heading", name="stretch")).to_be_visible()
            await expect(page.get_by_text("No runs yet.")).to_be_visible()
            await expect(page.get_by_text("up to 10m (next run includes it)")).to_be_visible()
            await expect(page.get_by_text("allow, up to 2 at once")).to_be_visible()
            # the view's other fields, as they are (a new declared field shows unedited)
            card = page.locator("#all-fields")
            await expect(card).to_contain_text("Misfire policyrun_once")
            await expect(card).to_contain_text("Delete after runno")
            async with httpx.AsyncClient(base_url=base) as api:
                ran = await api.post(
                    "/api/jobs/stretch/run",
                    headers={"Authorization": "Bearer alice-token-0123456789"},
                )
                assert ran.status_code == 200, ran.text
            await expect(page.locator("tr[data-run] .status-success")).to_have_count(1)

            # run it now from the page too, then open a result
            await page.get_by_role("button", name="Run now stretch").click()
            await expect(page.locator("tr[data-run] .status-success")).to_have_count(2)
            await page.locator("tr[data-run] summary").first.click()
            await expect(page.locator("pre.result").first).to_have_text(
                "done: Remind me to stretch"
            )
            await page.screenshot(path=str(SHOTS / "job.png"))

            # pause it
            await page.get_by_role("button", name="Pause stretch").click()
            await expect(page.get_by_role("button", name="Resume stretch")).to_be_visible()
            await expect(page.get_by_text("no (paused)")).to_be_visible()
            await page.get_by_role("link", name="Jobs", exact=True).click()
            row = page.locator('tr[data-job="stretch"]')
            await expect(row).to_contain_text("paused")
            await expect(row.locator('td[data-label="Runs"]')).to_have_text("2")

            for name in ("timeline", "runs", "usage"):
                await page.goto(f"{base}/#/{name}")
                await expect(page.locator("main h2")).to_be_visible()
                await page.screenshot(path=str(SHOTS / f"{name}.png"))
            # the usage tables, per job and per owner: its two runs (tokens without a model:
            # cost unknown), and no total for a user who is not an admin
            usage = page.locator('table.usage tr[data-key] td[data-label="In total"]')
            both = re.compile(r"tok · 2 runs \(2 unknown\)$")
            await expect(usage).to_have_text([both, both])
            await expect(page.get_by_text("Everyone")).to_have_count(0)

            # a phone: the jobs table folds into labelled rows
            await page.set_viewport_size({"width": 375, "height": 740})
            await page.goto(base + "/#/jobs")
            await expect(page.locator('tr[data-job="stretch"]')).to_be_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"the page is {width}px wide on a 375px screen"
            await page.screenshot(path=str(SHOTS / "jobs-phone.png"))
        finally:
            await browser.close()


@pytest.mark.timeout(120)
async def test_add_a_job_in_words_and_see_what_it_was_understood_as(
    dashboard: tuple[Serve, str],
) -> None:
    from playwright.async_api import async_playwright, expect

    _, base = dashboard
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = await browser.new_page(viewport={"width": 1100, "height": 800})
        try:
            await page.goto(base + "/login")
            await page.get_by_label("Gateway token").fill("alice-token-0123456789")
            await page.get_by_role("button", name="Log in").click()
            await page.get_by_role("link", name="Add a job").click()
            await page.get_by_label("Prompt", exact=True).fill("Send the digest")
            await page.get_by_label("Schedule kind").select_option("when")
            await expect(page.get_by_label("When")).to_have_attribute(
                "placeholder", "every weekday at 9:00"
            )
            await page.locator('#add-form [name="timezone"]').fill("Europe/Rome")
            # an ambiguous phrase: the preview says why, with the forms it reads
            await page.get_by_label("When").fill("every 9")
            await expect(page.locator("#preview .error")).to_contain_text("every 9 minutes")
            await page.get_by_label("When").fill("every weekday at 9:00")
            await expect(page.locator("#preview-schedule")).to_have_text(
                "cron 0 9 * * 1-5 (Europe/Rome)"
            )
            await expect(page.locator("#preview-list li")).to_have_count(5)
            await page.get_by_role("button", name="Add job").click()
            card = page.locator("#understood")
            await expect(card).to_contain_text(
                "“every weekday at 9:00” was understood as: At 09:00, Monday through Friday"
            )
            await expect(card.locator("li")).to_have_count(5)
            row = page.locator('tr[data-job^="send-the-digest-"]')
            await expect(row).to_contain_text("every weekday at 9:00")  # its description
            await expect(row).to_contain_text("cron 0 9 * * 1-5 · Europe/Rome")
            await page.screenshot(path=str(SHOTS / "add-when.png"))
            await page.get_by_role("link", name="Add a job").click()
            await expect(page.locator("#understood")).to_have_count(0)  # gone once elsewhere
        finally:
            await browser.close()


@pytest.mark.timeout(120)
async def test_every_job_is_linked_by_its_id(dashboard: tuple[Serve, str], tmp_path: Path) -> None:
    """A name stored by an older version with a '/' in it ('a/runs', which /api/jobs/a%2Fruns
    would read as job a's runs) opens, and is paused, from the dashboard: links and actions
    name jobs by id."""
    import sqlite3

    from playwright.async_api import async_playwright, expect

    _, base = dashboard
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": "Bearer alice-token-0123456789"}
    ) as api:
        ids = {}
        for name, prompt in (("a", "plain a"), ("legacy", "the old one")):
            added = await api.post(
                "/api/jobs", json={"name": name, "prompt": prompt, "every": "1h"}
            )
            assert added.status_code == 200, added.text
            ids[name] = added.json()["job"]["id"]
        with sqlite3.connect(tmp_path / "starpod-cron.db") as db:
            db.execute("UPDATE jobs SET name = 'a/runs' WHERE id = ?", (ids["legacy"],))
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = await browser.new_page()
            try:
                await page.goto(base + "/login")
                await page.get_by_label("Gateway token").fill("alice-token-0123456789")
                await page.get_by_role("button", name="Log in").click()
                await page.get_by_role("link", name="Jobs", exact=True).click()
                row = page.locator('tr[data-job="a/runs"]')
                link = row.get_by_role("link", name="a/runs")
                await expect(link).to_have_attribute("href", f"#/job/{ids['legacy']}")
                await link.click()
                await expect(page.get_by_role("heading", name="a/runs")).to_be_visible()
                await expect(page.locator("dl.card").get_by_text("the old one")).to_be_visible()
                await expect(page.get_by_text("No runs yet.")).to_be_visible()
                await page.get_by_role("button", name="Pause a/runs").click()
                await expect(page.get_by_role("button", name="Resume a/runs")).to_be_visible()
            finally:
                await browser.close()
        legacy = (await api.get(f"/api/jobs/{ids['legacy']}")).json()["job"]
        plain = (await api.get(f"/api/jobs/{ids['a']}")).json()["job"]
        assert (legacy["name"], legacy["enabled"], plain["enabled"]) == ("a/runs", False, True)


@pytest.mark.timeout(120)
async def test_silent_and_undelivered_runs_show_as_such_and_arrive_live(
    dashboard: tuple[Serve, str],
) -> None:
    from playwright.async_api import async_playwright, expect

    _, base = dashboard
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": "Bearer alice-token-0123456789"}
    ) as api:
        for body in (
            {"name": "beat", "prompt": "silent beat", "every": "1s"},
            {"name": "same", "prompt": "unchanged", "every": "1s", "notify": "on_change"},
        ):
            added = await api.post("/api/jobs", json=body)
            assert added.status_code == 200, added.text
        beat_id = (await api.get("/api/jobs/beat")).json()["job"]["id"]
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = await browser.new_page(viewport={"width": 1100, "height": 800})
            try:
                await page.goto(base + "/login")
                await page.get_by_label("Gateway token").fill("alice-token-0123456789")
                await page.get_by_role("button", name="Log in").click()
                await expect(page.locator("#live")).to_have_text(re.compile("live|beat|same"))
                await page.get_by_role("link", name="Jobs", exact=True).click()
                # silent runs notify nobody: the page redraws on their run.finished events
                runs = page.locator('tr[data-job="beat"] td[data-label="Runs"] .quiet')
                await expect(runs).to_contain_text(re.compile(r"[2-9]\d* silent"), timeout=15_000)
                same = page.locator('tr[data-job="same"] td[data-label="Runs"] .quiet')
                await expect(same).to_contain_text("not delivered", timeout=15_000)
                await page.goto(f"{base}/#/job/{beat_id}")
                await expect(page.locator("tr[data-run] .quiet").first).to_have_text("silent")
                await page.goto(f"{base}/#/runs")
                note = page.locator("tr[data-run] .quiet", has_text="not delivered")
                await expect(note.first).to_have_text("not delivered: unchanged (notify=on_change)")
                await page.screenshot(path=str(SHOTS / "quiet-runs.png"))
            finally:
                await browser.close()
