"""The dashboard behind a reverse proxy under a path prefix (``[gateway] public_url =
"http://127.0.0.1:<proxy>/cron/"``): a tiny proxy on 127.0.0.1 serves ``/cron/`` from the
gateway's HTTP port (the prefix stripped, as nginx's ``proxy_pass http://gateway/;`` does), and
Chromium logs in, follows links and gets live events over ``/cron/ws`` through it; the
cookie is for ``/cron`` only."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, serve

from .test_dashboard import CHROMIUM
from .test_dashboard_live import browser_page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]

PREFIX = b"/cron"


@contextlib.asynccontextmanager
async def prefix_proxy(port: int, upstream: int) -> AsyncIterator[list[str]]:
    """Serve ``/cron/...`` on ``port`` from ``upstream`` (``/...``), HTTP and WebSocket
    alike: each connection's request line is rewritten and the bytes piped both ways (one
    request per connection: ``Connection: close``, except for an upgrade). Yields the paths
    seen upstream."""
    seen: list[str] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # the other side went away: close this one too
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        line, _, rest = head.partition(b"\r\n")
        method, path, version = line.split(b" ")
        if path != PREFIX and not path.startswith(PREFIX + b"/"):
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            writer.close()
            return
        path = path[len(PREFIX) :] or b"/"
        seen.append(path.decode())
        headers = [h for h in rest.split(b"\r\n") if h]
        if not any(h.lower().startswith(b"upgrade:") for h in headers):
            headers = [h for h in headers if not h.lower().startswith(b"connection:")]
            headers.append(b"Connection: close")
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        up_writer.write(b" ".join([method, path, version]) + b"\r\n")
        up_writer.write(b"\r\n".join(headers) + b"\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield seen
    finally:
        server.close()


@pytest.mark.timeout(120)
async def test_the_dashboard_works_under_a_path_prefix_behind_a_proxy(tmp_path: Path) -> None:
    from playwright.async_api import expect

    proxy_port = free_port()
    public = f"http://127.0.0.1:{proxy_port}/cron/"
    (tmp_path / "agent.toml").write_text(
        '[executor]\nkind = "python"\ntarget = "tests.gateway.targets:run"\n'
        f'[gateway]\nmin_interval_secs = 0\nstandalone_ws = false\npublic_url = "{public}"\n'
        '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
    )
    gateway = await serve(tmp_path, log=tmp_path / "serve.log")
    try:
        text = await gateway.read_until(b"Dashboard and API on")
        match = re.search(r"Dashboard and API on http://[\d.]+:(\d+)/", text)
        assert match, text
        upstream = int(match.group(1))
        async with prefix_proxy(proxy_port, upstream) as seen:
            async with httpx.AsyncClient(
                base_url=public, headers={"Authorization": "Bearer alice-token-0123456789"}
            ) as api:
                added = await api.post(
                    "api/jobs", json={"name": "tick", "prompt": "p", "every": "1h"}
                )
                assert added.status_code == 200, added.text
            async with browser_page() as page:
                sockets: list[str] = []
                page.on("websocket", lambda ws: sockets.append(ws.url))
                await page.goto(public)
                await expect(page).to_have_url(public + "login")  # the redirect keeps the prefix
                await page.get_by_label("Gateway token").fill("alice-token-0123456789")
                await page.get_by_role("button", name="Log in").click()
                await expect(page).to_have_url(public)
                await expect(page.locator("#live")).to_have_text("live")
                assert sockets == [f"ws://127.0.0.1:{proxy_port}/cron/ws"], sockets
                (cookie,) = await page.context.cookies()
                assert (cookie["name"], cookie["path"]) == ("starpod_session", "/cron")
                # links, the API and live events, all through the proxy
                await page.get_by_role("link", name="Jobs", exact=True).click()
                await page.get_by_role("link", name="tick").click()
                await expect(page.get_by_role("heading", name="tick")).to_be_visible()
                await page.get_by_role("button", name="Run now tick").click()
                await expect(page.locator("tr[data-run] .status-success")).to_have_count(1)
                await page.get_by_role("link", name="Add a job").click()
                await expect(page.locator("#add-form")).to_be_visible()  # openapi.json read
                await page.get_by_role("button", name="Log out").click()
                await expect(page).to_have_url(public + "login")
            assert "/ws" in seen and "/static/app.js" in seen and "/openapi.json" in seen
    finally:
        gateway.proc.send_signal(signal.SIGTERM)
        assert await gateway.proc.wait() == 0
