"""Dashboard log-in sessions (issue 22, item 3): the cookie is a random 128-bit session id, not
the token; the store keeps only its hash, so every node on the store knows it; log-out (a
POST) ends it everywhere; it expires; removing the token from [gateway.tokens] ends it.

Real `starpod-cron serve` processes on one store (a SQLite file, and PostgreSQL), real
Chromium logging in through the form, real HTTP and WebSocket clients replaying the cookie."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from starpod_cron import ConfigError
from starpod_cron.config import GatewayConfig
from tests.backends import BACKENDS, query, store_url
from tests.gateway.conftest import TOKENS, config, running_gateway, tab_protocols, tab_secret
from tests.gateway.test_dashboard import CHROMIUM, FLAGS
from tests.processes import Serve, serve

pytestmark = pytest.mark.slow

COOKIE = "starpod_session"


def agent_toml(url: str, tokens: dict[str, str]) -> str:
    lines = "\n".join(f'"{t}" = {{ user_id = "{u}" }}' for t, u in tokens.items())
    return (
        f'[store]\nurl = "{url}"\n'
        '[executor]\nkind = "python"\ntarget = "tests.gateway.targets:run"\n'
        "[gateway]\nmin_interval_secs = 0\n"
        f"[gateway.tokens]\n{lines}\n"
    )


@dataclass
class Node:
    serve: Serve
    base: str  # the dashboard's origin, http://127.0.0.1:PORT

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.serve.port}/"


async def start(tmp_path: Path, name: str) -> Node:
    log = tmp_path / f"{name}.log"
    node = await serve(tmp_path, log=log)
    match = re.search(r"Dashboard and API on (http://[\d.]+:\d+)/", log.read_text())
    assert match, log.read_text()
    return Node(node, match.group(1))


async def stop(node: Node) -> None:
    if node.serve.proc.returncode is None:
        node.serve.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(node.serve.proc.wait(), 30) == 0


async def http_user(node: Node, session: str, secret: str) -> str | None:
    """Who the cookie (with its tab secret) logs in as on ``node``'s HTTP API (None: refused
    with 401)."""
    async with httpx.AsyncClient(base_url=node.base, cookies={COOKIE: session}) as client:
        answer = await client.get("/api/me", headers={"X-Starpod-CSRF": secret})
    if answer.status_code == 401:
        return None
    assert answer.status_code == 200, answer.text
    return str(answer.json()["user_id"])


async def ws_jobs(node: Node, session: str, secret: str) -> int | None:
    """The number of jobs the cookie lists over ``node``'s WebSocket, as the dashboard page of
    that node would (None: the handshake was refused with 401)."""
    try:
        async with connect(
            node.ws,
            origin=Origin(node.base),
            additional_headers={"Cookie": f"{COOKIE}={session}"},
            subprotocols=tab_protocols(secret),
        ) as conn:
            await conn.send('{"id": 1, "type": "cron.list"}')
            answer = json.loads(await asyncio.wait_for(conn.recv(), 10))
            assert answer["ok"] is True, answer
            return len(answer["data"]["jobs"])
    except InvalidStatus as exc:
        assert exc.response.status_code == 401
        return None


async def session_rows(url: str) -> list[tuple[object, ...]]:
    return await query(url, "SELECT id_hash, user_id, token_fingerprint FROM login_sessions")


@pytest.fixture(params=BACKENDS)
async def two_nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, list[Node]]]:
    """Two gateways on one store, as behind a load balancer (the test may restart them)."""
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(store_url(str(request.param), str(tmp_path)))
        tokens = {"alice-token-0123456789": "alice", "bob-token-0123456789": "bob"}
        (tmp_path / "agent.toml").write_text(agent_toml(url, tokens))
        nodes = [await start(tmp_path, "a"), await start(tmp_path, "b")]
        try:
            yield url, nodes
        finally:
            for node in nodes:
                await stop(node)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium")
@pytest.mark.timeout(150)
async def test_a_browser_session_is_a_random_id_every_node_knows_and_logout_ends_it(
    two_nodes: tuple[str, list[Node]], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    url, nodes = two_nodes
    a, b = nodes
    token = "alice-token-0123456789"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        context = await browser.new_context()
        page = await context.new_page()
        try:
            # log in on node A with the form (a normal submit)
            await page.goto(a.base + "/login")
            await page.locator("#token").fill(token)
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            await expect(page.locator("#live")).to_have_text("live")

            (cookie,) = await context.cookies()  # the one cookie the log-in set
            session = cookie["value"]
            secret = await page.evaluate("sessionStorage.getItem('starpod-csrf')")
            assert re.fullmatch(r"[0-9a-f]{64}", secret), secret
            assert token not in session and session != token
            assert cookie["name"] == COOKIE
            assert re.fullmatch(r"[A-Za-z0-9_-]{22}", session), session
            assert len(base64.urlsafe_b64decode(session + "==")) == 16  # 128 bits
            assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
            assert cookie["path"] == "/"
            assert cookie["expires"] - (await page.evaluate("Date.now()")) / 1000 > 6.9 * 86_400

            # the store holds the session's hash: neither the id nor the token
            rows = await session_rows(url)
            assert [(r[0], r[1]) for r in rows] == [
                (hashlib.sha256(session.encode()).hexdigest(), "alice")
            ]
            assert session not in repr(rows) and token not in repr(rows)

            # node B knows the session: its dashboard (HTTP and WebSocket) in the same browser
            # (behind a load balancer both nodes have one origin, so one sessionStorage: here
            # node B's origin is another, so the test hands it the tab's secret)
            await page.goto(b.base + "/login")
            await page.evaluate(f"sessionStorage.setItem('starpod-csrf', '{secret}')")
            await page.goto(b.base + "/")
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            await expect(page.locator("#live")).to_have_text("live")
            assert await http_user(b, session, secret) == "alice"
            assert await ws_jobs(b, session, secret) == 0

            # a GET to /logout (a link, an <img> on some page) does not log out
            await page.goto(a.base + "/logout")
            await page.goto(a.base + "/")
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            assert await http_user(a, session, secret) == "alice"

            # log out on node B (the dashboard's button: a POST): no node accepts it again
            await page.goto(b.base + "/")
            await page.get_by_role("button", name="Log out").click()
            await expect(page).to_have_url(b.base + "/login")
            assert [c for c in await context.cookies() if c["name"] == COOKIE] == []
            assert await session_rows(url) == []
            for node in (a, b):
                assert await http_user(node, session, secret) is None  # the cookie replayed
                assert await ws_jobs(node, session, secret) is None
            await page.goto(a.base + "/")
            await expect(page).to_have_url(a.base + "/login")

            # log in again, then remove the token from [gateway.tokens] and restart node A:
            # the session ends on every node, node B (not restarted) included
            await page.locator("#token").fill(token)
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            (cookie,) = [c for c in await context.cookies() if c["name"] == COOKIE]
            again = cookie["value"]
            secret = await page.evaluate("sessionStorage.getItem('starpod-csrf')")
            assert again != session and await http_user(b, again, secret) == "alice"
            (tmp_path / "agent.toml").write_text(agent_toml(url, {"bob-token-0123456789": "bob"}))
            await stop(a)
            nodes[0] = a = await start(tmp_path, "a2")
            assert await session_rows(url) == []
            for node in (a, b):
                assert await http_user(node, again, secret) is None
                assert await ws_jobs(node, again, secret) is None
        finally:
            await browser.close()


async def test_a_session_expires_after_session_ttl_secs(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg = replace(cfg, gateway=replace(cfg.gateway, session_ttl_secs=2))
    async with running_gateway(cfg, str(tmp_path / "ttl.db")) as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        async with httpx.AsyncClient(base_url=base) as client:
            login = await client.post("/login", data={"token": "alice-token-0123456789"})
            assert login.status_code == 200
            tab = {"X-Starpod-CSRF": tab_secret(login.text)}
            assert "max-age=2" in login.headers["set-cookie"].lower()
            session = client.cookies[COOKIE]
            assert session not in TOKENS
            assert (await client.get("/api/me", headers=tab)).json()["user_id"] == "alice"
            await asyncio.sleep(2.2)
            client.cookies.set(COOKIE, session)  # a client that ignores Max-Age
            assert (await client.get("/api/me", headers=tab)).status_code == 401
            page = await client.get("/")
            assert page.status_code == 303 and page.headers["location"] == "login"


async def test_a_bad_token_or_a_forged_cookie_logs_nobody_in(tmp_path: Path) -> None:
    async with running_gateway(config(tmp_path), str(tmp_path / "bad.db")) as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        async with httpx.AsyncClient(base_url=base) as client:
            refused = await client.post("/login", data={"token": "alice-token-0123456789 "})
            assert refused.headers["location"] == "login?error=1"
            assert "set-cookie" not in refused.headers
            # the raw token no longer works
            for forged in ("alice-token-0123456789", "A" * 22, "x" * 4000):
                client.cookies.set(COOKIE, forged)
                assert (await client.get("/api/me")).status_code == 401
                client.cookies.set("starpod_token", forged)
                assert (await client.get("/api/me")).status_code == 401
        assert gw.store is not None
        assert await gw.store.prune_login_sessions() == 0


def test_session_ttl_secs_is_bounded() -> None:
    assert GatewayConfig().session_ttl_secs == 7 * 86_400
    for bad in (0, 0.5, 367 * 86_400, float("inf")):
        with pytest.raises(ConfigError, match="session_ttl_secs"):
            GatewayConfig(session_ttl_secs=bad)


async def test_logging_in_again_replaces_the_browsers_session(tmp_path: Path) -> None:
    async with running_gateway(config(tmp_path), str(tmp_path / "again.db")) as gw:
        assert gw.store is not None
        base = f"http://127.0.0.1:{gw.http_port}"
        async with httpx.AsyncClient(base_url=base) as client:
            await client.post("/login", data={"token": "alice-token-0123456789"})
            first = client.cookies[COOKIE]
            login = await client.post("/login", data={"token": "bob-token-0123456789"})
            second = client.cookies[COOKIE]
            assert second != first
            tab = {"X-Starpod-CSRF": tab_secret(login.text)}
            assert (await client.get("/api/me", headers=tab)).json()["user_id"] == "bob"
            assert await gw.store.get_login_session(first) is None
            found = await gw.store.get_login_session(second)
            assert found is not None and found.user_id == "bob"
