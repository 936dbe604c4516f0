"""Screenshots of every dashboard page at desktop (1280 px) and phone (375 px) width, into
docs/screenshots/ (what the README shows): a real `starpod-cron serve` in a temporary folder,
the tour's data (dashboard_kit.seed), Debian's Chromium.

    python -m tests.gateway.screenshots [OUT_DIR]
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import tempfile
from pathlib import Path

import httpx

from tests.processes import ROOT, serve

from .dashboard_kit import CONFIG, PHONE_WIDTH, seed

TOKEN = "alice-token-0123456789"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


async def shoot(out: Path) -> list[Path]:
    from playwright.async_api import async_playwright, expect

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        (cwd / "agent.toml").write_text(CONFIG)
        gateway = await serve(cwd, log=cwd / "serve.log")
        try:
            text = await gateway.read_until(b"Dashboard and API on")
            match = re.search(r"Dashboard and API on (http://[\d.]+:\d+)/", text)
            assert match, text
            base = match.group(1)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as api:
                ids = await seed(api)
            pages = {
                "overview": "#/",
                "jobs": "#/jobs",
                "job": f"#/job/{ids['watched']}",
                "add": "#/add",
                "runs": "#/runs?job=bulk",
                "timeline": "#/timeline",
                "usage": "#/usage",
            }
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                for width, suffix in ((1280, "desktop"), (PHONE_WIDTH, "phone")):
                    height = 800 if width > PHONE_WIDTH else 740
                    page = await browser.new_page(viewport={"width": width, "height": height})
                    await page.goto(base + "/login")
                    path = out / f"login-{suffix}.png"
                    await page.screenshot(path=str(path))
                    written.append(path)
                    await page.get_by_label("Gateway token").fill(TOKEN)
                    await page.get_by_role("button", name="Log in").click()
                    await expect(page.locator("#live")).to_have_text(re.compile("live|: "))
                    for name, where in pages.items():
                        await page.goto(f"{base}/{where}")
                        await expect(page.locator("main h2")).to_be_visible()
                        await page.wait_for_timeout(500)  # the charts drawn
                        path = out / f"{name}-{suffix}.png"
                        await page.screenshot(path=str(path))
                        written.append(path)
                    await page.close()
                await browser.close()
        finally:
            gateway.proc.send_signal(signal.SIGTERM)
            await gateway.proc.wait()
    return written


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    for path in asyncio.run(shoot(out)):
        print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
