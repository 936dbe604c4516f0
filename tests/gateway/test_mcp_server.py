"""`starpod-cron mcp` driven as Claude Desktop or Claude Code drive it: a real process over
stdio (and streamable HTTP with a token), the official `mcp` client, a real store."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from starpod_cron import CronStore, JobSpec, Schedule
from starpod_cron.tools import TOOLS
from tests.processes import CLI, environment, mcp_http

pytestmark = pytest.mark.slow


def stdio(db: str, *args: str, cwd: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=CLI, args=["--db", db, "mcp", *args], env=environment(), cwd=str(cwd)
    )


@pytest.mark.timeout(60)
async def test_mcp_over_stdio_lists_adds_refuses_and_scopes_to_its_user(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    async with CronStore.open(db) as store:
        await store.add_jobs(
            [JobSpec("bob-secret", "bob's plan", Schedule.cron("0 9 * * *"), user_id="bob")]
        )
    async with Client(stdio(db, "--user", "alice", cwd=tmp_path)) as client:
        listed = await client.list_tools()
        assert {t.name for t in listed.tools} == set(TOOLS)
        add = next(t for t in listed.tools if t.name == "cron_add")
        assert "weekdays at 09:00" in add.description and "prompt" in add.input_schema["required"]

        added = await client.call_tool(
            "cron_add", {"name": "inbox", "prompt": "Summarize my inbox", "cron": "0 9 * * 1-5"}
        )
        assert not added.is_error
        assert added.structured_content is not None
        assert added.structured_content["job"]["user_id"] == "alice"

        bad = await client.call_tool("cron_add", {"prompt": "x", "cron": "61 * * * *"})
        assert bad.is_error
        message = bad.content[0].text  # type: ignore[union-attr]
        # the CLI's own words for the same mistake
        cli = await _cli_error(tmp_path, db, "jobs", "add", "x", "p", "--cron", "61 * * * *")
        assert message in cli, (message, cli)

        hidden = await client.call_tool("cron_get", {"name": "bob-secret"})
        assert hidden.is_error and "no job named 'bob-secret'" in hidden.content[0].text  # type: ignore[union-attr]
        mine = await client.call_tool("cron_list", {})
        assert [j["name"] for j in mine.structured_content["jobs"]] == ["inbox"]  # type: ignore[index]

    async with CronStore.open(db) as store:
        job = await store.get_job_by_name("inbox", "alice")
        assert job is not None and job.schedule == Schedule.cron("0 9 * * 1-5")
        assert job.prompt == "Summarize my inbox"


async def _cli_error(cwd: Path, db: str, *args: str) -> str:
    from tests.processes import run_cli

    code, _, err = await run_cli(cwd, "--db", db, *args)
    assert code == 2
    return err


@pytest.mark.timeout(60)
async def test_mcp_over_http_requires_a_token_and_acts_for_its_user(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    (tmp_path / "agent.toml").write_text(
        '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
    )
    async with mcp_http(tmp_path, db) as mcp:
        assert b"MCP server on http://127.0.0.1" in mcp.seen, mcp.seen
        async with httpx.AsyncClient() as http:
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            refused = await http.post(mcp.url, json=ping)
            assert refused.status_code == 401
        headers = {"Authorization": "Bearer alice-token-0123456789"}
        http = httpx2.AsyncClient(headers=headers)
        async with http, Client(streamable_http_client(mcp.url, http_client=http)) as client:
            added = await client.call_tool("cron_add", {"prompt": "stretch", "in": "20m"})
            assert not added.is_error, added.content
            assert added.structured_content["job"]["user_id"] == "alice"  # type: ignore[index]
    assert mcp.proc.stderr is not None
    assert json.dumps("alice-token-0123456789") not in (await mcp.proc.stderr.read()).decode()


async def _mcp_http(tmp_path: Path, port: int) -> asyncio.subprocess.Process:
    (tmp_path / "agent.toml").write_text(
        '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
    )
    return await asyncio.create_subprocess_exec(
        CLI,
        "--db",
        str(tmp_path / "jobs.db"),
        "mcp",
        "--http",
        f"127.0.0.1:{port}",
        cwd=tmp_path,
        env=environment(),
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.timeout(60)
async def test_mcp_over_http_on_a_port_in_use_says_so_in_one_line_and_exits_1(
    tmp_path: Path,
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = await _mcp_http(tmp_path, port)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    said = err.decode()
    assert proc.returncode == 1, said
    assert said.strip().splitlines()[-1] == (
        f"starpod-cron: error: cannot listen on 127.0.0.1:{port}: "
        "the address is already in use (another gateway?)"
    ), said
    assert "MCP server on" not in said and "Errno" not in said and "Traceback" not in said


@pytest.mark.timeout(90)
async def test_mcp_over_http_answers_413_to_a_100_mb_body_without_holding_it(
    tmp_path: Path,
) -> None:
    from tests.gateway.test_bodylimit import MB, chunks, peak_rss_kib

    (tmp_path / "agent.toml").write_text(
        '[gateway.tokens]\n"alice-token-0123456789" = { user_id = "alice" }\n'
    )
    async with mcp_http(tmp_path, str(tmp_path / "jobs.db")) as mcp:
        headers = {
            "Authorization": "Bearer alice-token-0123456789",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        async with httpx.AsyncClient(headers=headers, timeout=60) as http:
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            assert (await http.post(mcp.url, json=ping)).status_code != 413
            before = peak_rss_kib(mcp.proc.pid)
            chunked = await http.post(mcp.url, content=chunks(100 * MB))
            assert chunked.status_code == 413, chunked.text
            assert chunked.json()["error"]["code"] == "too_large"
            length = {"Content-Length": str(100 * MB)}
            declared = await http.post(mcp.url, content=chunks(100 * MB), headers=length)
            assert declared.status_code == 413, declared.text
            after = peak_rss_kib(mcp.proc.pid)
            print(f"mcp --http peak RSS before {before} KiB, after 200 MB refused {after} KiB")
            assert after - before < 10 * 1024, (before, after)
