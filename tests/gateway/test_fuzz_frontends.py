"""Arbitrary Unicode through every front end of one real gateway node (real sockets, a real
SQLite store): the HTTP API, the WebSocket commands, the MCP tools and the Telegram commands
(the real python-telegram-bot client against the Bot API stand-in). Lone surrogates, NUL, RTL
marks and overrides, Unicode digits, strings at each limit and one past it, in every argument
of every tool: the answer is a result or an error with a message, never a 5xx or `internal`;
nothing is logged as failed; a refused change writes nothing.

Bounded for CI: a fixed seed (derandomize), 25 examples per operation and front end.
``bench/fuzz_frontends.py`` runs the same strategies for longer."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mcp import Client
from websockets.sync.client import ClientConnection, connect

from gateway import protocol
from gateway.app import Gateway
from gateway.mcp_server import build_server
from starpod_cron.access import Principal
from starpod_cron.jobfields import JobFields
from starpod_cron.schedules import OneShot
from starpod_cron.tools import TOOLS
from tests.gateway.botapi import TOKEN, BotApi, running_botapi
from tests.gateway.conftest import config, telegram_gateway
from tests.gateway.fuzzing import LoopThread, arguments, fuzz_text, json_text, short_text

OWNER = 42
ALICE = Principal("alice")
EXAMPLES = int(os.environ.get("STARPOD_FUZZ_EXAMPLES", "25"))  # bench/fuzz_frontends.py: more
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not os.environ.get("STARPOD_FUZZ_RANDOM"),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
MUTATING = {name for name, tool in TOOLS.items() if tool.changes}


@dataclass
class Node:
    loop: LoopThread
    gateway: Gateway
    api: BotApi
    mcp: Client
    http: httpx.Client
    ws: ClientConnection

    def snapshot(self) -> tuple[frozenset[tuple[Any, ...]], int]:
        """The recurring jobs as stored, and how many one-shots (which the scheduler may
        run and delete meanwhile: they can only become fewer)."""

        async def read() -> tuple[frozenset[tuple[Any, ...]], int]:
            assert self.gateway.store is not None
            jobs = await self.gateway.store.list_jobs()
            recurring = frozenset(
                (j.id, j.name, j.prompt, j.user_id, j.enabled, j.schedule, j.description)
                for j in jobs
                if not isinstance(j.schedule, OneShot)
            )
            return recurring, sum(isinstance(j.schedule, OneShot) for j in jobs)

        return self.loop.run(read())

    def unchanged_since(self, before: tuple[frozenset[tuple[Any, ...]], int]) -> None:
        after = self.snapshot()
        assert after[0] == before[0], "a refused change wrote something"
        assert after[1] <= before[1], "a refused change added a job"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("fuzz-frontends")
    old_token = os.environ.get("STARPOD_TEST_TG_TOKEN")
    os.environ["STARPOD_TEST_TG_TOKEN"] = TOKEN
    loop = LoopThread()
    started: asyncio.Future[tuple[BotApi, Gateway, Client]] = loop.loop.create_future()
    stop = asyncio.Event()

    async def lifetime() -> None:
        """One task enters and leaves every context (anyio's scopes in the MCP client must)."""
        async with AsyncExitStack() as stack:
            try:
                started.set_result(await start(stack))
            except BaseException as exc:
                started.set_exception(exc)
                raise
            await stop.wait()

    async def start(stack: AsyncExitStack) -> tuple[BotApi, Gateway, Client]:
        api = await stack.enter_async_context(running_botapi())
        cfg = config(tmp)
        cfg = replace(cfg, gateway=replace(cfg.gateway, max_jobs_per_user=0))
        gw = await stack.enter_async_context(
            telegram_gateway(tmp, api.base_url, cfg, allowed_user_ids=(OWNER,))
        )
        assert gw.ws is not None
        ops = gw.ws.ops
        mcp = await stack.enter_async_context(Client(build_server(ops, ALICE)))
        for who in (ALICE, Principal(f"tg:{OWNER}")):
            await ops.add(who, JobFields(name="keep", prompt="p", every="1h"))
        api.type(OWNER, "/help")  # the bot polls and answers before the fuzzing starts
        deadline = time.monotonic() + 15
        while not api.texts(OWNER):
            assert time.monotonic() < deadline, "the bot never answered"
            await asyncio.sleep(0.05)
        return api, gw, mcp

    async def wait_started() -> tuple[BotApi, Gateway, Client]:
        return await started

    life = asyncio.run_coroutine_threadsafe(lifetime(), loop.loop)
    try:
        api, gw, mcp = loop.run(wait_started())
        assert gw.ws is not None and gw.http_port
        with (
            httpx.Client(
                base_url=f"http://127.0.0.1:{gw.http_port}",
                headers={"Authorization": "Bearer alice-token-0123456789"},
                timeout=20,
            ) as http,
            connect(
                f"ws://127.0.0.1:{gw.ws.port}/",
                additional_headers={"Authorization": "Bearer alice-token-0123456789"},
                max_size=None,
            ) as ws,
        ):
            yield Node(loop, gw, api, mcp, http, ws)
    finally:
        loop.loop.call_soon_threadsafe(stop.set)
        life.result(40)
        loop.close()
        if old_token is None:
            os.environ.pop("STARPOD_TEST_TG_TOKEN", None)
        else:
            os.environ["STARPOD_TEST_TG_TOKEN"] = old_token


@pytest.fixture
def no_failures_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing at ERROR (an unexpected exception, a traceback) while the test ran, from any
    thread of the node."""
    caplog.set_level(logging.WARNING)
    yield
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failed, [f"{r.name}: {r.getMessage()}" for r in failed][:5]


def _path(text: str) -> str:
    """``text`` as one URL path segment (a lone surrogate goes as the bytes Python's
    surrogatepass makes of it: not UTF-8, as a hostile client may send)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _http_case(tool: str) -> st.SearchStrategy[tuple[str, str, Any]]:
    """(method, path, JSON body or None) reaching ``tool`` through the REST routes."""
    name = st.one_of(st.just("keep"), short_text)
    if tool == "cron_add":
        return arguments(tool).map(lambda a: ("POST", "/api/jobs", a))
    if tool == "cron_preview":
        return arguments(tool).map(lambda a: ("POST", "/api/jobs/preview", a))
    if tool == "cron_list":
        return st.just(("GET", "/api/jobs", None))
    if tool == "cron_update":
        return arguments(tool).map(
            lambda a: (
                "PATCH",
                f"/api/jobs/{_path(str(a.get('name', 'keep'))[:1001])}",
                {k: v for k, v in a.items() if k != "name"},
            )
        )
    if tool in ("cron_backfill", "cron_snooze"):
        verb = tool.removeprefix("cron_")
        return arguments(tool).map(
            lambda a: (
                "POST",
                f"/api/jobs/{_path(str(a.get('name', 'keep'))[:1001])}/{verb}",
                {k: v for k, v in a.items() if k != "name"},
            )
        )
    if tool == "cron_runs":
        return st.tuples(name, short_text, short_text, short_text).map(
            lambda t: (
                "GET",
                f"/api/jobs/{_path(t[0])}/runs?limit={_path(t[1])}&status={_path(t[2])}"
                f"&before={_path(t[3])}",
                None,
            )
        )
    if tool == "cron_retry":
        return short_text.map(lambda r: ("POST", f"/api/runs/{_path(r)}/retry", None))
    if tool == "cron_next":
        return st.tuples(short_text, short_text, short_text).map(
            lambda t: (
                "GET",
                f"/api/next?expression={_path(t[0])}&count={_path(t[1])}&timezone={_path(t[2])}",
                None,
            )
        )
    method, suffix = {
        "cron_get": ("GET", ""),
        "cron_remove": ("DELETE", ""),
        "cron_pause": ("POST", "/pause"),
        "cron_resume": ("POST", "/resume"),
        "cron_run": ("POST", "/run"),
    }[tool]
    return name.map(lambda n: (method, f"/api/jobs/{_path(n)}{suffix}", None))


@pytest.mark.timeout(120 if EXAMPLES <= 25 else 0)
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_http_api_answers_every_input_without_a_server_error(
    node: Node, no_failures_logged: None, tool: str
) -> None:
    @FUZZ
    @given(case=_http_case(tool))
    def check(case: tuple[str, str, Any]) -> None:
        method, path, body = case
        before = node.snapshot()
        content = None if body is None else json_text(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if content is not None else {}
        answer = node.http.request(method, path, content=content, headers=headers)
        assert answer.status_code < 500, (case, answer.text)
        if answer.status_code == 404 and "json" not in answer.headers.get("content-type", ""):
            return  # no such route (an empty name, say): Starlette's plain 404
        if answer.status_code >= 400:
            error = answer.json()["error"]
            assert error["code"] != "internal" and error["message"], (case, error)
            if tool in MUTATING:
                node.unchanged_since(before)

    check()


@pytest.mark.timeout(120 if EXAMPLES <= 25 else 0)
@pytest.mark.parametrize(
    "query",
    [
        "/api/timeline?hours=",
        "/api/runs?limit=",
        "/api/runs?status=",
        "/api/deliveries?limit=",
        "/api/jobs/keep/runs?limit=",
    ],
)
def test_http_query_numbers_are_ascii_digits_within_bounds(
    node: Node, no_failures_logged: None, query: str
) -> None:
    @FUZZ
    @given(value=st.one_of(short_text, st.sampled_from(["²", "١٢", "１２", "1_0", " 1", "+1"])))
    def check(value: str) -> None:
        answer = node.http.get(query + _path(value))
        assert answer.status_code in (200, 400, 403, 404), (value, answer.text)  # 404: removed
        numeric = not query.endswith("status=") and answer.status_code != 403  # 403: admins'
        if numeric and value.isdigit() and not value.isascii():
            assert answer.status_code == 400, (value, answer.text)  # never read as a number
            assert "digits 0-9" in answer.json()["error"]["message"]

    check()


@pytest.mark.timeout(60 if EXAMPLES <= 25 else 0)
def test_http_bodies_that_are_not_json_objects_are_refused(
    node: Node, no_failures_logged: None
) -> None:
    for raw in [
        b'{"prompt": "\\ud800", "every": "1h"}',
        b'{"prompt": "ok", "every": "1h", "name": "a\\u0000b"}',
        b'{"prompt": "\xff", "every": "1h"}',  # not UTF-8
        b"[" * 20_000 + b"]" * 20_000,  # nested too deep for the parser
        b'"\\udfff"',
        b"",
    ]:
        before = node.snapshot()
        answer = node.http.post(
            "/api/jobs", content=raw, headers={"Content-Type": "application/json"}
        )
        assert 400 <= answer.status_code < 500, (raw[:40], answer.text)
        node.unchanged_since(before)


def _ws_request(node: Node, message: dict[str, Any]) -> dict[str, Any]:
    node.ws.send(json_text(message))
    while True:
        answer: dict[str, Any] = json.loads(node.ws.recv(timeout=20))
        if "ok" in answer:  # not an event
            return answer


@pytest.mark.timeout(120 if EXAMPLES <= 25 else 0)
@pytest.mark.parametrize("kind", sorted(protocol.COMMANDS))
def test_websocket_commands_answer_every_input_without_internal(
    node: Node, no_failures_logged: None, kind: str
) -> None:
    tool = protocol.TOOL_OF.get(kind)
    fields = (
        arguments(tool)
        if tool is not None
        else st.fixed_dictionaries(
            {}, optional={f: st.one_of(fuzz_text, st.integers()) for f in protocol.FIELDS[kind]}
        )
    )
    ids = st.one_of(st.just("req"), fuzz_text, st.integers())

    @FUZZ
    @given(request_id=ids, fields=fields)
    def check(request_id: Any, fields: dict[str, Any]) -> None:
        message = {"id": request_id, "type": kind, **fields}
        # a frame over max_frame_bytes closes the connection (1009), by design: not fuzzed
        assume(len(json_text(message).encode()) < 60_000)
        before = node.snapshot()
        answer = _ws_request(node, message)
        if request_id == "req":
            assert answer["id"] == "req"
        if not answer["ok"]:
            error = answer["error"]
            assert error["code"] != "internal" and error["message"], (fields, error)
            if tool in MUTATING:
                node.unchanged_since(before)

    check()


@pytest.mark.timeout(120 if EXAMPLES <= 25 else 0)
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_mcp_tools_answer_every_input_without_a_failure(
    node: Node, no_failures_logged: None, tool: str
) -> None:
    @FUZZ
    @given(args=arguments(tool))
    def check(args: dict[str, Any]) -> None:
        before = node.snapshot()
        result = node.loop.run(node.mcp.call_tool(tool, args))
        if result.is_error:
            text = result.content[0].text  # type: ignore[union-attr]
            assert text and "Traceback" not in text, (args, text)
            if tool in MUTATING:
                node.unchanged_since(before)

    check()


def _telegram_text() -> st.SearchStrategy[str]:
    t = fuzz_text
    return st.one_of(
        st.tuples(st.sampled_from(["every", "in", "at", "cron"]), t, t).map(
            lambda c: f"/{c[0]} {c[1]} {c[2]}"
        ),
        st.tuples(st.sampled_from(["every 1h", "in 20m", 'cron "0 9 * * *"']), t, t).map(
            lambda c: f"/{c[0]} name={c[1]} {c[2]}"
        ),
        st.tuples(t, t).map(lambda c: f'/cron "{c[0]}" {c[1]}'),
        st.tuples(
            st.sampled_from(["runs", "pause", "resume", "remove", "run", "tz", "jobs", "help"]),
            st.one_of(st.just("keep"), t),
        ).map(lambda c: f"/{c[0]} {c[1]}"),
    )


@pytest.mark.timeout(180 if EXAMPLES <= 25 else 0)
def test_telegram_commands_answer_every_input(node: Node, no_failures_logged: None) -> None:
    api = node.api

    async def say(text: str) -> str:
        before = len(api.texts(OWNER))
        api.type(OWNER, text)
        deadline = time.monotonic() + 15
        while len(api.texts(OWNER)) <= before:
            assert time.monotonic() < deadline, f"no answer to {text!r}"
            await asyncio.sleep(0.01)
        return api.texts(OWNER)[before]

    @settings(FUZZ, max_examples=EXAMPLES * 4)
    @given(text=_telegram_text())
    def check(text: str) -> None:
        before = node.snapshot()
        answer = node.loop.run(say(text))
        assert "went wrong" not in answer, (text, answer)
        if answer.startswith("Error:"):
            node.unchanged_since(before)

    check()
