"""The browser rule of gateway/origin.py, seen by clients that set the headers by hand (httpx,
websockets, raw sockets) against a real gateway on 127.0.0.1: what a browser would send on
another page's behalf is refused on both ports; clients that are not browsers keep working.
The same cases in Chromium are in test_origin_browser.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.app import Gateway
from gateway.origin import browser_policy, check_bind
from gateway.ws import WsServer
from starpod_cron.config import GatewayConfig, TokenConfig, parse_config
from starpod_cron.errors import ConfigError
from tests.processes import CLI, environment, free_port, mcp_http

from .conftest import config, running_gateway, tab_protocols, tab_secret

JOB = {"name": "secret", "prompt": "the secret prompt", "every": "1h"}


@pytest.fixture
async def open_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """The default gateway: no tokens, every local client is an admin."""
    cfg = config(tmp_path)
    cfg = replace(cfg, gateway=replace(cfg.gateway, tokens={}))
    async with running_gateway(cfg, str(tmp_path / "open.db")) as gw:
        yield gw


def _http(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}")


async def _raw(port: int, head: str) -> bytes:
    """Send one raw HTTP request head to ``port``; the answer's head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode())
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()


def _upgrade(host: str, origin: str | None = None) -> str:
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return "\r\n".join(lines) + "\r\n\r\n"


async def test_a_rebound_host_name_gets_421_on_every_port(open_gateway: Gateway) -> None:
    gw = open_gateway
    assert gw.ws is not None and gw.http_port is not None
    evil = {"Host": f"evil.example:{gw.http_port}"}
    async with _http(gw) as http:
        for method, path in [("GET", "/"), ("GET", "/api/jobs"), ("GET", "/healthz")]:
            answer = await http.request(method, path, headers=evil)
            assert answer.status_code == 421, (path, answer.text)
            assert answer.json()["error"]["code"] == "misdirected"
        planted = await http.post("/api/jobs", json=JOB, headers=evil)
        assert planted.status_code == 421
        for host in ("127.0.0.1", "localhost", "[::1]", "LOCALHOST."):
            ok = await http.get("/api/jobs", headers={"Host": f"{host}:{gw.http_port}"})
            assert ok.status_code == 200 and ok.json()["jobs"] == [], host
    head = await _raw(gw.ws.port, _upgrade(f"evil.example:{gw.ws.port}"))
    assert head.startswith(b"HTTP/1.1 421"), head
    head = await _raw(gw.ws.port, _upgrade(f"127.0.0.1:{gw.ws.port}"))
    assert head.startswith(b"HTTP/1.1 101"), head
    # /ws on the HTTP port: the same answers
    head = await _raw(gw.http_port, _upgrade(f"evil.example:{gw.http_port}"))
    assert head.startswith(b"HTTP/1.1 421"), head
    head = await _raw(gw.http_port, _upgrade(f"127.0.0.1:{gw.http_port}"))
    assert head.startswith(b"HTTP/1.1 101"), head


async def test_the_307_from_the_websocket_port_goes_only_to_a_served_host(
    open_gateway: Gateway,
) -> None:
    gw = open_gateway
    assert gw.ws is not None
    port, http_port = gw.ws.port, gw.http_port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        foreign = await http.get("/jobs", headers={"Host": f"evil.example:{port}"})
        assert foreign.status_code == 421 and "location" not in foreign.headers
        for host, shown in [("localhost", "localhost"), ("[::1]", "[::1]")]:
            sent = await http.get("/jobs", headers={"Host": f"{host}:{port}"})
            assert sent.status_code == 307
            assert sent.headers["location"] == f"http://{shown}:{http_port}/jobs"


async def test_a_page_of_another_origin_is_refused_with_or_without_the_cookie(
    open_gateway: Gateway,
) -> None:
    """What Chromium sends from a page on 127.0.0.1:<other port> (same-site) or on another
    host (cross-site): Origin and Sec-Fetch-Site."""
    gw = open_gateway
    assert gw.ws is not None
    other = f"http://127.0.0.1:{free_port()}"
    async with _http(gw) as http:
        for headers in [
            {"Origin": other, "Sec-Fetch-Site": "same-site"},
            {"Origin": "http://localhost:1234", "Sec-Fetch-Site": "cross-site"},
            {"Origin": other},  # an older browser: no Sec-Fetch-Site
            {"Origin": "null"},  # a sandboxed frame, a file:// page
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": f"https://127.0.0.1:{gw.http_port}.evil.example"},
        ]:
            text = {**headers, "Content-Type": "text/plain;charset=UTF-8"}
            sent = await http.post("/api/jobs", content=json.dumps(JOB), headers=text)
            assert sent.status_code == 403, (headers, sent.text)
            assert sent.json()["error"]["code"] == "forbidden"
            read = await http.get("/api/jobs", headers=headers)
            assert read.status_code == 403
            preflight = await http.options(
                "/api/jobs", headers={**headers, "Access-Control-Request-Method": "POST"}
            )
            assert preflight.status_code >= 400
            assert not any(h.startswith("access-control-") for h in preflight.headers)
        assert (await http.get("/api/jobs")).json()["jobs"] == []
    for port in (gw.ws.port, gw.http_port):  # the standalone port and /ws on the HTTP port
        for origin in (other, "http://localhost:1234", "null"):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{port}/ws", origin=origin):  # type: ignore[arg-type]
                    pass
            assert refused.value.response.status_code == 403
            assert json.loads(refused.value.response.body)["error"]["code"] == "forbidden"


async def test_the_dashboards_own_origins_and_non_browser_clients_keep_working(
    open_gateway: Gateway,
) -> None:
    gw = open_gateway
    assert gw.ws is not None
    port = gw.http_port
    async with _http(gw) as http:
        added = await http.post("/api/jobs", json=JOB)  # curl-like: JSON, no Origin
        assert added.status_code == 200, added.text
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            own = {"Origin": origin, "Sec-Fetch-Site": "same-origin", "X-Starpod-CSRF": "1"}
            paused = await http.post("/api/jobs/secret/pause", headers=own)  # no body
            assert paused.status_code == 200, paused.text
        typed = await http.get("/", headers={"Sec-Fetch-Site": "none"})  # typed in the bar
        assert typed.status_code == 200
        run = await http.post("/api/jobs/secret/run")  # bodyless POST, as `curl -X POST`
        assert run.status_code == 200, run.text
        # a body a page could send without a preflight is not JSON to this API
        plain = await http.post(
            "/api/jobs", content=json.dumps({**JOB, "name": "planted"}), headers={}
        )
        assert (
            plain.status_code == 415 and plain.json()["error"]["code"] == "unsupported_media_type"
        )
        text = await http.post(
            "/api/jobs", content=json.dumps(JOB), headers={"Content-Type": "text/plain"}
        )
        assert text.status_code == 415
        form = await http.post("/api/jobs", data={"name": "planted", "prompt": "p"})
        assert form.status_code == 415
        names = [j["name"] for j in (await http.get("/api/jobs")).json()["jobs"]]
        assert names == ["secret"]
    async with connect(f"ws://127.0.0.1:{gw.ws.port}/") as ws:  # a local script, no Origin
        await ws.send(json.dumps({"id": 1, "type": "cron.list"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert [j["name"] for j in answer["data"]["jobs"]] == ["secret"]


@pytest.mark.parametrize("via", ["port", "http"])
async def test_the_login_cookie_counts_only_with_the_dashboards_full_origin(
    tmp_path: Path, via: str
) -> None:
    """A cookie is sent to every port of its host: a page on another port of the dashboard's
    host must not get a WebSocket with it."""
    async with running_gateway(config(tmp_path), str(tmp_path / "gw.db")) as gw:
        assert gw.ws is not None
        async with _http(gw) as http:
            login = await http.post("/login", data={"token": "alice-token-0123456789"})
            assert login.status_code == 200, login.text
            secret = tab_secret(login.text)
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            assert cookie
            added = await http.post(
                "/api/jobs", json=JOB, headers={"Authorization": "Bearer alice-token-0123456789"}
            )
            assert added.status_code == 200
        url = f"ws://127.0.0.1:{gw.http_port if via == 'http' else gw.ws.port}/ws"
        headers = {"Cookie": cookie}
        own = f"http://127.0.0.1:{gw.http_port}"
        tab = tab_protocols(secret)
        async with connect(url, origin=own, additional_headers=headers, subprotocols=tab) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "starpod"
            await ws.send(json.dumps({"id": 1, "type": "cron.list"}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert [j["name"] for j in answer["data"]["jobs"]] == ["secret"]
        for origin in (
            f"http://127.0.0.1:{free_port()}",  # same host, another port
            f"https://127.0.0.1:{gw.ws.port}",  # another scheme and port
            f"http://127.0.0.1:{gw.ws.port}",  # the WebSocket port's own origin: not the dashboard
        ):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(
                    url, origin=origin, additional_headers=headers, subprotocols=tab
                ):  # type: ignore[arg-type]
                    pass
            assert refused.value.response.status_code == 403, origin
        with pytest.raises(InvalidStatus) as refused:  # a cookie without any Origin: no user
            async with connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        async with connect(
            url, additional_headers={"Authorization": "Bearer alice-token-0123456789"}
        ) as ws:
            await ws.send(json.dumps({"id": 1, "type": "cron.list"}))  # an SDK with its token
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["ok"] is True


async def test_a_public_url_and_allowed_origins_are_the_dashboards_too(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg = replace(
        cfg,
        gateway=replace(
            cfg.gateway,
            tokens={},
            public_url="https://cron.example.com/",
            allowed_origins=("https://ops.example.com:8443",),
            allowed_hosts=("127.0.0.1",),
        ),
    )
    async with running_gateway(cfg, str(tmp_path / "pub.db")) as gw, _http(gw) as http:
        for origin in ("https://cron.example.com", "https://ops.example.com:8443"):
            sent = await http.post("/api/jobs/none/pause", headers={"Origin": origin})
            assert sent.status_code == 404, (origin, sent.text)  # past the rule: no such job
        proxied = await http.get("/api/jobs", headers={"Host": "cron.example.com"})
        assert proxied.status_code == 200
        local = await http.get("/api/jobs", headers={"Host": f"localhost:{gw.http_port}"})
        assert local.status_code == 421  # allowed_hosts replaces the default list


def test_listening_on_every_address_needs_allowed_hosts() -> None:
    tokens = {"a-long-enough-token": TokenConfig("alice")}
    for host in ("0.0.0.0", "::", "0", "0.0", "0x0", "::ffff:0.0.0.0", "[::]"):
        with pytest.raises(ConfigError, match="allowed_hosts"):
            WsServer(None, GatewayConfig(host=host, tokens=tokens), {"t": None})  # type: ignore[arg-type, dict-item]
    check_bind(GatewayConfig(host="0.0.0.0", tokens=tokens, allowed_hosts=("cron.lan",)))
    for specific in ("127.0.0.1", "::1", "localhost", "10.0.0.1", "cron.lan", "0.0.0.1"):
        check_bind(GatewayConfig(host=specific, tokens=tokens))


@pytest.mark.parametrize("host", ["0.0.0.0", "0", "::ffff:0.0.0.0"])  # all mean every address
@pytest.mark.slow
async def test_serve_on_every_address_without_allowed_hosts_refuses_to_start(
    tmp_path: Path, host: str
) -> None:
    (tmp_path / "agent.toml").write_text(
        '[gateway.tokens]\n"alice-long-token" = { user_id = "alice" }\n'
    )
    proc = await asyncio.create_subprocess_exec(
        CLI,
        *("--db", str(tmp_path / "x.db"), "serve", "--host", host, "--port", "0"),
        cwd=tmp_path,
        env=environment(),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:  # it started: the defect; do not leave it listening
            proc.kill()
            await proc.wait()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2, lines
    assert len(lines) == 1 and "allowed_hosts" in lines[0], lines


@pytest.mark.timeout(60)
@pytest.mark.slow
async def test_mcp_over_http_serves_only_its_hosts(tmp_path: Path) -> None:
    """On an address the MCP SDK does not guard itself (127.0.0.2), the Host rule still holds;
    the MCP client (no Origin, its own Host) keeps working."""
    (tmp_path / "agent.toml").write_text(
        '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
    )
    async with mcp_http(tmp_path, str(tmp_path / "m.db"), "127.0.0.2") as served_mcp:
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        }
        headers = {
            "Authorization": "Bearer alice-token-0123456789",
            "Accept": "application/json, text/event-stream",
        }
        base = served_mcp.url.removesuffix("/mcp")
        async with httpx.AsyncClient(base_url=base, headers=headers) as mcp:
            rebound = await mcp.post("/mcp", json=initialize, headers={"Host": "evil.example"})
            assert rebound.status_code == 421, rebound.text
            foreign = await mcp.post("/mcp", json=initialize, headers={"Origin": "http://x.test"})
            assert foreign.status_code == 403, foreign.text
            served = await mcp.post("/mcp", json=initialize)
            assert served.status_code == 200, served.text


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('allowed_hosts = ["cron.example.com:8766"]', "allowed_hosts"),
        ('allowed_hosts = ["*"]', "allowed_hosts"),
        ('allowed_hosts = ["https://cron.example.com"]', "allowed_hosts"),
        ('allowed_hosts = "cron.example.com"', "allowed_hosts"),
        ('public_url = "cron.example.com"', "public_url"),
        ('allowed_origins = ["https://ops.example.com/app"]', "allowed_origins"),
        ('allowed_origins = ["ftp://ops.example.com"]', "allowed_origins"),
        ("allowed_origin = []", "allowed_origin"),  # unknown keys stay errors
    ],
)
def test_browser_keys_in_agent_toml_are_checked(line: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_config(f"[gateway]\n{line}\n")


def test_browser_keys_in_agent_toml_are_read() -> None:
    cfg = parse_config(
        "[gateway]\n"
        'host = "0.0.0.0"\n'
        'allowed_hosts = ["Cron.Example.com", "[::1]", "10.0.0.5"]\n'
        'public_url = "https://proxy.example.com/cron/"\n'
        'allowed_origins = ["https://ops.example.com:8443"]\n'
    ).gateway
    policy = browser_policy(cfg, 8766)
    assert policy.hosts == {"cron.example.com", "::1", "10.0.0.5", "proxy.example.com"}
    assert "http://cron.example.com:8766" in policy.origins
    assert "http://[::1]:8766" in policy.origins
    assert {"https://proxy.example.com", "https://ops.example.com:8443"} <= policy.origins
    assert policy.origin_allowed("HTTPS://PROXY.example.com:443")
    assert not policy.origin_allowed("https://proxy.example.com:8443")
    assert not policy.host_allowed("127.0.0.1:8766")  # allowed_hosts replaces the default
