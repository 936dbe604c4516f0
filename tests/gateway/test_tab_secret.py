"""The login cookie is not enough on its own (gateway/login.py): browsers send it to every port
of the host, so any program listening on another local port could replay it. Each log-in also
hands the page a per-tab secret; a cookie without it gets 403 on HTTP and no WebSocket. An open
WebSocket's session is re-checked, so a log-out (on any node) ends it. No page may frame the
dashboard. The WebSocket port's redirect never carries the query.

Real gateways on 127.0.0.1, the real websockets client, real Chromium."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from gateway.app import Gateway

from .conftest import config, running_gateway, tab_protocols, tab_secret
from .test_dashboard import CHROMIUM
from .test_origin_browser import chromium, gateway, stranger_page

pytestmark = pytest.mark.slow

COOKIE = "starpod_session"
JOB = {"name": "planted", "prompt": "p", "every": "1h"}
ALICE = {"Authorization": "Bearer alice-token-0123456789"}


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(config(tmp_path), str(tmp_path / "gw.db")) as running:
        yield running


def base(gw: Gateway) -> str:
    return f"http://127.0.0.1:{gw.http_port}"


async def log_in(gw: Gateway, token: str = "alice-token-0123456789") -> tuple[str, str]:
    """(session cookie, tab secret) of a fresh log-in through the form."""
    async with httpx.AsyncClient(base_url=base(gw)) as client:
        login = await client.post("/login", data={"token": token})
        assert login.status_code == 200, login.text
        return client.cookies[COOKIE], tab_secret(login.text)


def dashboard_socket(
    gw: Gateway, session: str, protocols: list[Subprotocol] | None, via: str = "port"
) -> connect:
    assert gw.ws is not None
    port = gw.http_port if via == "http" else gw.ws.port
    return connect(
        f"ws://127.0.0.1:{port}/ws",
        origin=Origin(base(gw)),
        additional_headers={"Cookie": f"{COOKIE}={session}"},
        subprotocols=protocols,
    )


async def ask(conn: ClientConnection, request_id: int, kind: str, **fields: object) -> object:
    await conn.send(json.dumps({"id": request_id, "type": kind, **fields}))
    return json.loads(await asyncio.wait_for(conn.recv(), 10))


async def jobs(gw: Gateway) -> list[str]:
    async with httpx.AsyncClient(base_url=base(gw)) as api:
        return [j["name"] for j in (await api.get("/api/jobs", headers=ALICE)).json()["jobs"]]


async def test_logging_out_ends_the_open_websockets_of_the_session(gw: Gateway, via: str) -> None:
    assert gw.ws is not None
    gw.ws.recheck_secs = 0.3  # the cache of a positive session check (5 s by default)
    session, secret = await log_in(gw)
    async with (
        dashboard_socket(gw, session, tab_protocols(secret), via) as asking,
        dashboard_socket(gw, session, tab_protocols(secret), via) as listening,
    ):
        assert asking.subprotocol == "starpod"
        answer = await ask(asking, 1, "cron.list")
        assert answer == {"id": 1, "ok": True, "data": {"jobs": [], "total": 0}}
        async with httpx.AsyncClient(base_url=base(gw), cookies={COOKIE: session}) as client:
            assert (await client.post("/logout")).status_code == 303
        await asyncio.sleep(0.4)  # past the cache: the next request asks the store again
        await asking.send(json.dumps({"id": 2, "type": "cron.add", **JOB}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(asking.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "log in again" in closed.value.rcvd.reason
        # a socket that only listens for events is closed too (within the re-check period)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(listening.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert await jobs(gw) == []
    async with connect(f"ws://127.0.0.1:{gw.ws.port}/", additional_headers=ALICE) as token:
        gw.ws.recheck_secs = 0.0  # a bearer token's socket has no session to lose
        assert (await ask(token, 1, "cron.list"))["ok"] is True  # type: ignore[index]


async def test_a_replayed_cookie_without_the_tab_secret_opens_no_websocket(
    gw: Gateway, via: str
) -> None:
    session, secret = await log_in(gw)
    wrong = secret[:-1] + ("1" if secret.endswith("0") else "0")
    for protocols in (
        None,  # the cookie alone
        [Subprotocol("starpod")],
        [Subprotocol("starpod"), Subprotocol("starpod.csrf.1")],
        tab_protocols(wrong),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with dashboard_socket(gw, session, protocols, via):
                pass
        assert refused.value.response.status_code == 403, protocols
    async with dashboard_socket(gw, session, tab_protocols(secret), via) as conn:
        assert (await ask(conn, 1, "cron.add", **JOB))["ok"] is True  # type: ignore[index]
    assert await jobs(gw) == ["planted"]


async def test_every_answer_refuses_framing(gw: Gateway) -> None:
    session, secret = await log_in(gw)
    async with httpx.AsyncClient(base_url=base(gw), cookies={COOKIE: session}) as client:
        for path, headers in (
            ("/", {}),
            ("/login", {}),
            ("/api/jobs", {"X-Starpod-CSRF": secret}),
            ("/api/jobs", {}),  # a refusal (403) too
            ("/static/app.js", {}),
        ):
            answer = await client.get(path, headers=headers)
            assert answer.headers["x-frame-options"] == "DENY", path
            assert answer.headers["content-security-policy"] == "frame-ancestors 'none'", path
            assert answer.headers["x-content-type-options"] == "nosniff", path
        rebound = await client.get("/", headers={"Host": "evil.example"})  # the rule's own 421
        assert rebound.status_code == 421 and rebound.headers["x-frame-options"] == "DENY"


async def test_the_websocket_ports_redirect_drops_the_query(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    assert gw.ws is not None
    async with httpx.AsyncClient() as client:
        moved = await client.get(
            f"http://127.0.0.1:{gw.ws.port}/ws?token=alice-token-0123456789&x=1"
        )
    assert moved.status_code == 307
    assert moved.headers["location"] == f"http://127.0.0.1:{gw.http_port}/ws"
    assert "alice-token-0123456789" not in moved.text
    # ?token= on the handshake still works (documented before), with one warning
    caplog.set_level(logging.WARNING, "gateway.ws")
    for _ in range(2):
        async with connect(f"ws://127.0.0.1:{gw.ws.port}/?token=alice-token-0123456789") as conn:
            assert (await ask(conn, 1, "cron.list"))["ok"] is True  # type: ignore[index]
    warned = [r for r in caplog.records if "?token=" in r.getMessage()]
    assert len(warned) == 1 and "alice-token-0123456789" not in warned[0].getMessage()


STEAL = """async ([dashboard, ws]) => {
  const seen = {storage: sessionStorage.getItem("starpod-csrf")};
  try {
    const answer = await fetch(dashboard + "/api/jobs", {credentials: "include"});
    seen.fetch = answer.status;
  } catch (error) { seen.fetch = "failed"; }
  seen.socket = await new Promise((resolve) => {
    const socket = new WebSocket(ws, ["starpod", "starpod.csrf.1"]);
    socket.onopen = () => resolve("open");
    socket.onerror = () => resolve("refused");
  });
  return seen;
}"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium")
@pytest.mark.timeout(90)
async def test_a_page_on_another_port_gets_nothing_usable(tmp_path: Path) -> None:
    """Chromium logs in and the dashboard works; a page on another port of 127.0.0.1, in the
    same browser, sees no tab secret, reads nothing, opens no socket and cannot frame the
    dashboard to click on it."""
    from playwright.async_api import expect

    toml = '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
    async with (
        gateway(tmp_path, toml) as (dashboard, ws_port),
        stranger_page() as port,
        chromium() as browser,
    ):
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(dashboard + "/login")
        await page.locator("#token").fill("alice-token-0123456789")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        await expect(page.locator("#live")).to_have_text("live")
        assert await page.evaluate("sessionStorage.getItem('starpod-csrf')")

        other = await context.new_page()
        await other.goto(f"http://127.0.0.1:{port}/")
        seen = await other.evaluate(STEAL, [dashboard, f"ws://127.0.0.1:{ws_port}/ws"])
        assert seen == {"storage": None, "fetch": "failed", "socket": "refused"}, seen
        await other.set_content(f'<iframe id="f" src="{dashboard}/"></iframe>')
        await asyncio.sleep(1)
        (framed,) = other.main_frame.child_frames
        assert framed.url.startswith("chrome-error:"), framed.url  # blocked, not shown
        # a new tab (the cookie, but not the secret: sessionStorage is per tab) must log in
        fresh = await context.new_page()
        await fresh.goto(dashboard + "/")
        await expect(fresh).to_have_url(dashboard + "/login")
