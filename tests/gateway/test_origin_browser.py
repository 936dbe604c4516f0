"""The browser rule in a real browser: Debian's Chromium driven by Playwright, a real
`starpod-cron serve` on 127.0.0.1, and an attacker's page served by a tiny HTTP server on
another port. The page tries what the issue found possible: a no-cors ``text/plain`` POST that
creates a job, and a WebSocket that reads every job (with the login cookie, from another port
of the dashboard's host), and the DNS-rebinding case (``evil.example`` mapped to 127.0.0.1)."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import serve

from .test_dashboard import CHROMIUM, FLAGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]

SECRET = {"name": "secret", "prompt": "the secret prompt", "every": "1h"}
PLANTED = {"name": "planted", "prompt": "run by a stranger", "every": "1h"}
REBINDING = "--host-resolver-rules=MAP evil.example 127.0.0.1"

POST_NO_CORS = """async ([url, job]) => {
  try {
    await fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
                      body: JSON.stringify(job)});
    return "sent";
  } catch (error) { return "failed: " + error; }
}"""
READ_OVER_WEBSOCKET = """async (url) => await new Promise((resolve) => {
  const socket = new WebSocket(url);
  const timer = setTimeout(() => resolve("timeout"), 8000);
  socket.onopen = () => socket.send(JSON.stringify({id: 1, type: "cron.list"}));
  socket.onmessage = (message) => { clearTimeout(timer); socket.close(); resolve(message.data); };
  socket.onerror = () => { clearTimeout(timer); resolve("refused"); };
})"""


@asynccontextmanager
async def gateway(tmp_path: Path, toml: str) -> AsyncIterator[tuple[str, int]]:
    """`starpod-cron serve`: (dashboard base URL on 127.0.0.1, WebSocket port)."""
    (tmp_path / "agent.toml").write_text(
        '[executor]\nkind = "python"\ntarget = "tests.gateway.targets:run"\n'
        "[gateway]\nmin_interval_secs = 0\n" + toml
    )
    running = await serve(tmp_path, log=tmp_path / "serve.log")
    text = await running.read_until(b"Dashboard and API on")
    match = re.search(r"Dashboard and API on (http://[\d.]+:\d+)/", text)
    assert match, text
    try:
        yield match.group(1), running.port
    finally:
        running.proc.send_signal(signal.SIGTERM)
        assert await running.proc.wait() == 0


@asynccontextmanager
async def stranger_page() -> AsyncIterator[int]:
    """Another origin: an empty HTML page on 127.0.0.1, any path; yields its port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            body = b"<!doctype html><title>someone else's page</title>"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def chromium(*extra: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=[*FLAGS, *extra])
        try:
            yield browser
        finally:
            await browser.close()


async def job_names(base: str, headers: dict[str, str] | None = None) -> list[str]:
    async with httpx.AsyncClient(base_url=base) as api:  # not a browser: no Origin
        answer = await api.get("/api/jobs", headers=headers)
        assert answer.status_code == 200, answer.text
        return sorted(j["name"] for j in answer.json()["jobs"])


async def settle(check: Callable[[], Awaitable[list[str]]], expected: list[str]) -> None:
    """The no-cors POST cannot be awaited for its effect: give it time to land, then check."""
    await asyncio.sleep(0.5)
    assert await check() == expected


@pytest.mark.timeout(90)
@pytest.mark.parametrize("page_host", ["127.0.0.1", "localhost"])  # same-site, cross-site
async def test_a_page_of_another_origin_cannot_drive_the_tokenless_gateway(
    tmp_path: Path, page_host: str
) -> None:
    async with gateway(tmp_path, "") as (base, ws_port), stranger_page() as other:
        async with httpx.AsyncClient(base_url=base) as api:  # a local script: still works
            assert (await api.post("/api/jobs", json=SECRET)).status_code == 200
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"http://{page_host}:{other}/")
            sent = await page.evaluate(POST_NO_CORS, [f"{base}/api/jobs", PLANTED])
            assert sent == "sent"  # the browser sent it; the gateway must refuse it
            read = await page.evaluate(READ_OVER_WEBSOCKET, f"ws://127.0.0.1:{ws_port}/ws")
            assert read == "refused", read
        await settle(lambda: job_names(base), ["secret"])


@pytest.mark.timeout(90)
async def test_the_login_cookie_opens_no_websocket_for_another_port_of_the_host(
    tmp_path: Path,
) -> None:
    """Logged in on http://localhost:<http_port>, the cookie goes to every port of
    localhost; a page on localhost:<another port> still gets neither the jobs nor a job in."""
    tokens = '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
    bearer = {"Authorization": "Bearer alice-token-0123456789"}
    async with gateway(tmp_path, tokens) as (base, ws_port), stranger_page() as other:
        dashboard = base.replace("127.0.0.1", "localhost")
        async with httpx.AsyncClient(base_url=base, headers=bearer) as api:  # an SDK
            assert (await api.post("/api/jobs", json=SECRET)).status_code == 200
        async with chromium() as browser:
            from playwright.async_api import expect

            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(dashboard + "/login")
            await page.get_by_label("Gateway token").fill("alice-token-0123456789")
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            await page.get_by_role("link", name="Jobs", exact=True).click()
            await expect(page.get_by_role("heading", name="Jobs (1)")).to_be_visible()
            await expect(page.locator("#live")).to_have_text("live")  # its own WebSocket: fine

            stranger = await context.new_page()
            await stranger.goto(f"http://localhost:{other}/")
            read = await stranger.evaluate(READ_OVER_WEBSOCKET, f"ws://localhost:{ws_port}/ws")
            assert read == "refused", read
            sent = await stranger.evaluate(POST_NO_CORS, [f"{dashboard}/api/jobs", PLANTED])
            assert sent == "sent"
        await settle(lambda: job_names(base, bearer), ["secret"])


@pytest.mark.timeout(90)
async def test_a_rebound_dns_name_reaches_nothing(tmp_path: Path) -> None:
    """A page of evil.example whose name now resolves to 127.0.0.1 is "same-origin" with the
    gateway's ports as far as the browser knows: the Host rule is what refuses it."""
    async with gateway(tmp_path, "") as (base, ws_port):
        port = int(base.rsplit(":", 1)[1])
        async with chromium(REBINDING) as browser:
            page = await browser.new_page()
            shown = await page.goto(f"http://evil.example:{port}/")
            assert shown is not None and shown.status == 421
            assert "misdirected" in await page.content()  # the error, not the dashboard
            answers = await page.evaluate(
                """async (job) => {
                  const add = await fetch("/api/jobs", {method: "POST", body: JSON.stringify(job),
                                          headers: {"Content-Type": "application/json"}});
                  const list = await fetch("/api/jobs");
                  return [add.status, list.status, await list.text()];
                }""",
                PLANTED,
            )
            assert answers[:2] == [421, 421], answers
            assert "secret" not in answers[2]
            read = await page.evaluate(READ_OVER_WEBSOCKET, f"ws://evil.example:{ws_port}/ws")
            assert read == "refused", read
            redirect = await page.goto(f"http://evil.example:{ws_port}/")
            assert redirect is not None and redirect.status == 421
            assert redirect.url == f"http://evil.example:{ws_port}/"  # not sent on anywhere
        assert await job_names(base) == []
