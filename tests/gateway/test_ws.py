"""The WebSocket server with real clients over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.app import Gateway
from gateway.ws import WsServer
from starpod_cron import ConfigError, JobSpec, Schedule
from starpod_cron.config import GatewayConfig
from tests.gateway.conftest import config, running_gateway, ws_client, ws_url
from tests.processes import free_port


async def test_bad_or_missing_token_is_refused_at_the_handshake(gateway: Gateway, via: str) -> None:
    url = ws_url(gateway, via)
    for kwargs in ({}, {"additional_headers": {"Authorization": "Bearer nope"}}):
        with pytest.raises(InvalidStatus) as err:
            async with connect(url, **kwargs):
                pass
        assert err.value.response.status_code == 401
        assert json.loads(err.value.response.body)["error"]["code"] == "unauthorized"
    # token in the query works too
    async with connect(url + "?token=alice-token-0123456789") as conn:
        await conn.send(json.dumps({"id": 1, "type": "cron.list"}))
        assert json.loads(await conn.recv()) == {
            "id": 1,
            "ok": True,
            "data": {"jobs": [], "total": 0},
        }


def test_tokens_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.ws import load_tokens
    from starpod_cron.access import Principal

    monkeypatch.setenv(
        "STARPOD_GATEWAY_TOKENS", '{"carol-token-0123456789": {"user_id": "carol", "admin": true}}'
    )
    assert load_tokens(GatewayConfig())["carol-token-0123456789"] == Principal("carol", admin=True)
    monkeypatch.setenv("STARPOD_GATEWAY_TOKENS", "not json")
    with pytest.raises(ConfigError, match="STARPOD_GATEWAY_TOKENS"):
        load_tokens(GatewayConfig())


def test_refuses_a_public_address_without_tokens() -> None:
    with pytest.raises(ConfigError, match="tokens"):
        WsServer(None, GatewayConfig(host="0.0.0.0"), {})  # type: ignore[arg-type]


async def test_commands(gateway: Gateway, via: str) -> None:
    async with ws_client(gateway, "alice-token-0123456789", via) as alice:
        added = await alice.request(
            "cron.add",
            name="standup",
            prompt="post the standup",
            cron="0 9 * * 1-5",
            timezone="Europe/Rome",
        )
        assert added["ok"], added
        job = added["data"]
        assert job["name"] == "standup" and job["user_id"] == "alice"
        assert job["schedule"] == {
            "kind": "cron",
            "expression": "0 9 * * 1-5",
            "text": "cron 0 9 * * 1-5",
            "in_words": "At 09:00, Monday through Friday",
        }
        assert job["next_run"].endswith("+00:00")
        listed = await alice.request("cron.list")
        assert [j["name"] for j in listed["data"]["jobs"]] == ["standup"]
        got = await alice.request("cron.get", name="standup")
        assert got["data"]["prompt"] == "post the standup"
        updated = await alice.request("cron.update", name="standup", prompt="new", every="2h")
        assert updated["data"]["prompt"] == "new"
        assert updated["data"]["schedule"]["kind"] == "interval"
        assert (await alice.request("cron.disable", name="standup"))["data"]["enabled"] is False
        assert (await alice.request("cron.enable", name="standup"))["data"]["enabled"] is True
        run = await alice.request("cron.run", name="standup")
        assert run["data"]["status"] == "success" and run["data"]["result"] == "done: new"
        runs = await alice.request("cron.runs", name="standup")
        assert [r["trigger"] for r in runs["data"]["runs"]] == ["manual"]
        (only,) = runs["data"]["runs"]
        assert (only["prompt_tokens"], only["completion_tokens"]) == (3, 7)  # token usage
        removed = await alice.request("cron.remove", name="standup")
        assert removed["ok"] and (await alice.request("cron.list"))["data"]["jobs"] == []


async def test_bad_requests_get_an_error_and_the_connection_survives(
    gateway: Gateway, via: str
) -> None:
    assert gateway.store is not None
    async with ws_client(gateway, "alice-token-0123456789", via) as alice:
        await alice.conn.send("{not json")
        assert (await alice.response(None))["error"]["code"] == "bad_json"
        await alice.conn.send(json.dumps({"id": "x", "type": "cron.explode"}))
        assert (await alice.response("x"))["error"]["code"] == "unknown_type"
        for fields, code in [
            ({"name": "a", "prompt": "p", "cron": "61 * * * *"}, "invalid"),
            ({"name": "a", "prompt": "p"}, "invalid"),
            ({"name": "a", "prompt": "p", "every": "1h", "color": "red"}, "invalid"),
            ({"name": "a", "prompt": "", "every": "1h"}, "invalid"),
            ({"name": "a", "prompt": "p", "every": "1h", "timezone": "Mars/Base"}, "invalid"),
        ]:
            answer = await alice.request("cron.add", **fields)
            assert not answer["ok"] and answer["error"]["code"] == code, (fields, answer)
            assert answer["error"]["message"]
        assert (await alice.request("cron.get", name="ghost"))["error"]["code"] == "not_found"
        assert await gateway.store.list_jobs() == []  # nothing changed
        assert (await alice.request("cron.list"))["ok"]  # still connected and served


async def test_users_touch_only_their_own_jobs(gateway: Gateway, via: str) -> None:
    async with (
        ws_client(gateway, "alice-token-0123456789", via) as alice,
        ws_client(gateway, "bob-token-0123456789", via) as bob,
        ws_client(gateway, "root-token-0123456789", via) as root,
    ):
        assert (await alice.request("cron.add", name="mine", prompt="p", every="1h"))["ok"]
        for kind in ("cron.get", "cron.remove", "cron.disable", "cron.run", "cron.runs"):
            answer = await bob.request(kind, name="mine")
            assert answer["error"]["code"] == "not_found", (kind, answer)
        assert (await bob.request("cron.list"))["data"]["jobs"] == []
        assert [j["name"] for j in (await root.request("cron.list"))["data"]["jobs"]] == ["mine"]
        assert (await root.request("cron.disable", name="mine"))["data"]["enabled"] is False


async def test_events_reach_their_audience_and_can_be_replayed(gateway: Gateway, via: str) -> None:
    async with (
        ws_client(gateway, "alice-token-0123456789", via) as alice,
        ws_client(gateway, "bob-token-0123456789", via) as bob,
        ws_client(gateway, "root-token-0123456789", via) as root,
    ):
        await alice.request("cron.add", name="tick", prompt="hello", every="1s")
        await alice.until(lambda: len(alice.events) >= 2)
        await root.until(lambda: len(root.events) >= 2)
        event = alice.events[0]
        assert event["type"] == "notification" and event["job_name"] == "tick"
        assert event["success"] is True and event["result_preview"] == "done: hello"
        assert event["status"] == "success" and event["session_id"].startswith("s-")
        assert {"event_id", "run_id", "job_id", "ts"} <= set(event)
        assert bob.events == []
        await alice.request("cron.disable", name="tick")
    async with ws_client(gateway, "alice-token-0123456789", via) as again:
        first = event["event_id"]
        replay = await again.request("replay", since=first)
        assert replay["ok"] and replay["data"]["replayed"] == len(again.events) >= 1
        assert all(e["event_id"] > first and e["job_name"] == "tick" for e in again.events)
        nothing = await again.request("replay", since=replay["data"]["last_event_id"])
        assert nothing["data"]["replayed"] == 0
    async with ws_client(gateway, "bob-token-0123456789", via) as bob_again:
        assert (await bob_again.request("replay", since=0))["data"]["replayed"] == 0


async def test_run_started_events_go_to_subscribers_before_the_run_finishes(
    gateway: Gateway, via: str
) -> None:
    async with (
        ws_client(gateway, "alice-token-0123456789", via) as alice,
        ws_client(gateway, "alice-token-0123456789", via) as plain,
        ws_client(gateway, "bob-token-0123456789", via) as bob,
    ):
        answer = await alice.request("subscribe", events=["run.started", "notification"])
        assert answer["data"] == {"events": ["notification", "run.started"]}
        assert (await bob.request("subscribe", events=["run.started"]))["ok"]
        bad = await alice.request("subscribe", events=["run.exploded"])
        assert bad["error"]["code"] == "invalid" and "run.started" in bad["error"]["message"]
        await alice.request("cron.add", name="tick", prompt="hello", every="1s")
        await alice.until(lambda: sum(e["type"] == "notification" for e in alice.events) >= 2)
        await alice.request("cron.pause", name="tick")
        kinds = [(e["type"], e["run_id"]) for e in alice.events]
        for run_id in {r for _, r in kinds}:
            mine = [k for k, r in kinds if r == run_id]
            assert mine in (["run.started", "notification"], ["run.started"]), mine
        started = next(e for e in alice.events if e["type"] == "run.started")
        assert started["job_name"] == "tick" and started["attempt"] == 1
        assert started["trigger"] == "schedule" and started["scheduled_for"] <= started["ts"]
        await plain.until(lambda: len(plain.events) >= 2)
        assert {e["type"] for e in plain.events} == {"notification"}  # did not ask for them
        assert bob.events == []  # alice's job: not bob's to see
        since = alice.events[0]["event_id"] - 1
    async with ws_client(gateway, "alice-token-0123456789", via) as later:
        replayed = await later.request("replay", since=since)
        assert {e["type"] for e in later.events} == {"notification"}
        assert replayed["data"]["replayed"] == len(later.events)
        later.events.clear()
        await later.request("subscribe", events=["run.started", "notification"])
        await later.request("replay", since=since)
        assert {e["type"] for e in later.events} == {"notification", "run.started"}


async def test_run_started_and_finished_events_can_be_turned_off(tmp_path: Path, via: str) -> None:
    cfg = config(tmp_path)
    off = replace(cfg.gateway, run_started_events=False, run_finished_events=False)
    cfg = replace(cfg, gateway=off)
    async with (
        running_gateway(cfg, str(tmp_path / "off.db")) as gw,
        ws_client(gw, "alice-token-0123456789", via) as alice,
    ):
        refused = await alice.request("subscribe", events=["run.started"])
        assert "run_started_events = false" in refused["error"]["message"]
        refused = await alice.request("subscribe", events=["notification", "run.finished"])
        assert "run_finished_events = false" in refused["error"]["message"]
        await alice.request("cron.add", name="tick", prompt="hello", every="1s")
        await alice.until(lambda: len(alice.events) >= 1)
        assert gw.ws is not None
        rows = await gw.ws.ops.store.list_deliveries(0, None, 100)
        assert rows and all(d.payload["type"] == "notification" for d in rows)


async def test_a_client_that_stops_reading_is_dropped_while_50_others_get_every_event(
    tmp_path: Path, via: str
) -> None:
    base = config(tmp_path)
    cfg = replace(base, gateway=replace(base.gateway, tokens={}, client_queue_size=50))
    async with running_gateway(cfg, str(tmp_path / "burst.db")) as gateway:
        assert gateway.store is not None and gateway.ws is not None
        readers = [await _open(gateway, via) for _ in range(50)]
        stuck = await _stuck_client(gateway, via)
        at = datetime.now(UTC) + timedelta(seconds=1)
        await gateway.store.add_jobs(
            [JobSpec(f"burst-{i:03}", "p" * 600, Schedule.one_shot(at)) for i in range(500)]
        )
        for client in readers:
            await client.until(lambda c=client: len(c.events) >= 500, timeout=60)
        for client in readers:
            names = sorted(e["job_name"] for e in client.events)
            assert names == [f"burst-{i:03}" for i in range(500)]
            await client.close()
        assert gateway.ws.dropped_slow == 1
        assert len(gateway.ws.clients) == 0  # the stuck one is gone too
        stuck.close()


async def _stuck_client(gateway: Gateway, via: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    assert gateway.ws is not None and gateway.http_port is not None
    port, path = (gateway.http_port, b"/ws") if via == "http" else (gateway.ws.port, b"/")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(
        sock,
        (
            b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def _open(gateway: Gateway, via: str):  # type: ignore[no-untyped-def]
    from tests.gateway.conftest import WsClient

    conn = await connect(ws_url(gateway, via))
    return WsClient(conn)


async def test_serve_syncs_declared_jobs_at_start_and_refuses_their_edits(
    tmp_path: Path, via: str
) -> None:
    declared = ({"name": "standup", "prompt": "Post it", "cron": "0 9 * * 1-5"},)
    cfg = replace(config(tmp_path), jobs=declared)
    async with (
        running_gateway(cfg, str(tmp_path / "d.db")) as gw,
        ws_client(gw, "root-token-0123456789", via) as root,
    ):
        got = await root.request("cron.get", name="standup")
        assert got["data"]["prompt"] == "Post it"
        refused = await root.request("cron.update", name="standup", prompt="changed")
        assert refused["error"]["code"] == "invalid"
        assert "[[jobs]] standup; change it there" in refused["error"]["message"]


async def test_the_standalone_port_can_be_turned_off_and_ws_on_the_http_port_stays(
    tmp_path: Path,
) -> None:
    port = free_port()
    cfg = config(tmp_path)
    cfg = replace(cfg, gateway=replace(cfg.gateway, port=port, standalone_ws=False))
    async with running_gateway(cfg, str(tmp_path / "one.db")) as gw:
        assert gw.ws is not None and not gw.ws.listening
        with pytest.raises(OSError):  # nothing listens on [gateway] port
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
        async with ws_client(gw, "alice-token-0123456789", "http") as alice:
            added = await alice.request("cron.add", name="tick", prompt="hi", every="1s")
            assert added["ok"], added
            await alice.until(lambda: len(alice.events) >= 1)  # events come over /ws too
            assert alice.events[0]["job_name"] == "tick"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}") as http:
            me = await http.get(
                "/api/me", headers={"Authorization": "Bearer alice-token-0123456789"}
            )
        assert me.json() == {"user_id": "alice", "admin": False, "ws_port": None}
