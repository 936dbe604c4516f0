"""One rule set for "who is asking" (gateway/principals.py): the same credentials get the same
principal, or the same refusal, on every front end that takes them: the HTTP API, the
WebSocket handshake and MCP over HTTP. A real gateway and a real `starpod-cron mcp --http`
process on one SQLite store, real clients (httpx, websockets, the official MCP client).

Each front end gets the credentials the way its clients send them: a bearer token in
``Authorization``; the login cookie in ``Cookie`` with the tab secret in ``X-Starpod-CSRF``
(HTTP, MCP) or as the subprotocol ``starpod.csrf.<secret>`` beside the dashboard's
``Origin`` (the WebSocket handshake, as the dashboard's page opens it)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from gateway.app import Gateway
from tests.processes import mcp_http

from .conftest import config, running_gateway, tab_protocols, tab_secret

COOKIE = "starpod_session"
ALICE, BOB, ROOT = "alice-token-0123456789", "bob-token-0123456789", "root-token-0123456789"
TOML = (
    "[gateway.tokens]\n"
    f'"{ALICE}" = {{ user_id = "alice" }}\n'
    f'"{BOB}" = {{ user_id = "bob" }}\n'
    f'"{ROOT}" = {{ user_id = "root", admin = true }}\n'
)


@dataclass(frozen=True)
class Offered:
    token: str = ""
    session: str = ""
    secret: str = ""


Seen = tuple[str, ...] | int
"""What a front end answered: the names of the jobs the principal sees (its identity: alice,
bob and root each see a different set), or the status it was refused with."""


async def over_http(base: str, offered: Offered) -> tuple[Seen, str]:
    headers = {"Authorization": f"Bearer {offered.token}"} if offered.token else {}
    if offered.secret:
        headers["X-Starpod-CSRF"] = offered.secret
    cookies = {COOKIE: offered.session} if offered.session else {}
    async with httpx.AsyncClient(base_url=base, cookies=cookies) as client:
        answer = await client.get("/api/jobs", headers=headers)
    if answer.status_code != 200:
        return answer.status_code, _code(answer.content)
    return tuple(sorted(j["name"] for j in answer.json()["jobs"])), ""


async def over_ws(gw: Gateway, base: str, offered: Offered) -> tuple[Seen, str]:
    assert gw.ws is not None
    headers = {"Authorization": f"Bearer {offered.token}"} if offered.token else {}
    if offered.session:
        headers["Cookie"] = f"{COOKIE}={offered.session}"
    try:
        async with connect(
            f"ws://127.0.0.1:{gw.ws.port}/ws",
            origin=Origin(base),  # the dashboard's page; a token client sends none, alike
            additional_headers=headers,
            subprotocols=tab_protocols(offered.secret) if offered.secret else None,
        ) as conn:
            await conn.send(json.dumps({"id": 1, "type": "cron.list"}))
            answer = json.loads(await asyncio.wait_for(conn.recv(), 10))
    except InvalidStatus as exc:
        return exc.response.status_code, _code(exc.response.body)
    return tuple(sorted(j["name"] for j in answer["data"]["jobs"])), ""


async def over_mcp(url: str, offered: Offered) -> tuple[Seen, str]:
    headers = {"Authorization": f"Bearer {offered.token}"} if offered.token else {}
    if offered.session:
        headers["Cookie"] = f"{COOKIE}={offered.session}"
    if offered.secret:
        headers["X-Starpod-CSRF"] = offered.secret
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as probe:
        answer = await probe.post(url, json=ping, headers={**headers, **accept})
    if answer.status_code in (401, 403, 503):
        return answer.status_code, _code(answer.content)
    http = httpx2.AsyncClient(headers=headers)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        listed = await client.call_tool("cron_list", {})
    assert not listed.is_error, listed.content
    assert listed.structured_content is not None
    return tuple(sorted(j["name"] for j in listed.structured_content["jobs"])), ""


def _code(body: bytes | None) -> str:
    """The JSON error code of a refusal (every port answers the same JSON error)."""
    try:
        return str(json.loads(body or b"")["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"not the JSON error: {body!r}"


async def log_in(base: str, token: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=base) as client:
        login = await client.post("/login", data={"token": token})
        assert login.status_code == 200, login.text
        return client.cookies[COOKIE], tab_secret(login.text)


@pytest.mark.timeout(120)
async def test_http_websocket_and_mcp_resolve_the_same_credentials_alike(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(TOML)
    db = str(tmp_path / "gw.db")
    async with running_gateway(config(tmp_path), db) as gw, mcp_http(tmp_path, db) as mcp:
        base = f"http://127.0.0.1:{gw.http_port}"
        async with httpx.AsyncClient(base_url=base) as api:
            for token, name in ((ALICE, "a-plan"), (BOB, "b-plan")):
                job = {"name": name, "prompt": "p", "every": "1h"}
                made = await api.post(
                    "/api/jobs", json=job, headers={"Authorization": f"Bearer {token}"}
                )
                assert made.status_code == 200, made.text
        alice, alice_secret = await log_in(base, ALICE)
        bob, bob_secret = await log_in(base, BOB)
        gone, gone_secret = await log_in(base, BOB)
        async with httpx.AsyncClient(base_url=base, cookies={COOKIE: gone}) as client:
            assert (await client.post("/logout")).status_code == 303
        wrong = alice_secret[:-1] + ("1" if alice_secret.endswith("0") else "0")
        both, mine, bobs = ("a-plan", "b-plan"), ("a-plan",), ("b-plan",)
        cases: list[tuple[str, Offered, Seen, str]] = [
            ("nothing", Offered(), 401, "unauthorized"),
            ("alice's token", Offered(ALICE), mine, ""),
            ("bob's token", Offered(BOB), bobs, ""),
            ("an admin's token", Offered(ROOT), both, ""),
            ("an unknown token", Offered("nope-nope-nope-nope"), 401, "unauthorized"),
            (
                "an unknown token beside a good cookie: the token decides",
                Offered("nope-nope-nope-nope", alice, alice_secret),
                401,
                "unauthorized",
            ),
            ("bob's token beside alice's cookie", Offered(BOB, alice, alice_secret), bobs, ""),
            ("the cookie with its tab secret", Offered("", alice, alice_secret), mine, ""),
            ("the cookie alone (replayed)", Offered("", alice), 403, "csrf"),
            ("the cookie with a wrong secret", Offered("", alice, wrong), 403, "csrf"),
            (
                "the cookie with another session's secret",
                Offered("", alice, bob_secret),
                403,
                "csrf",
            ),
            ("a logged-out session", Offered("", gone, gone_secret), 401, "unauthorized"),
            ("a forged cookie", Offered("", "f" * 32, alice_secret), 401, "unauthorized"),
            ("bob's cookie with its secret", Offered("", bob, bob_secret), bobs, ""),
        ]
        disagree = []
        for what, offered, seen, code in cases:
            answers = {
                "http": await over_http(base, offered),
                "ws": await over_ws(gw, base, offered),
                "mcp": await over_mcp(mcp.url, offered),
            }
            if set(answers.values()) != {(seen, code)}:
                disagree.append((what, (seen, code), answers))
        assert not disagree, "\n".join(map(str, disagree))
        # rule 4: the store gone, a session cannot be proven: 503 on both of this node's ports
        assert gw.store is not None
        await gw.store.close()
        offered = Offered("", alice, alice_secret)
        assert await over_http(base, offered) == (503, "unavailable")
        assert await over_ws(gw, base, offered) == (503, "unavailable")
