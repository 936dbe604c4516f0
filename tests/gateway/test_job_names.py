"""One rule for job names at every front end (HTTP, WebSocket, MCP, Telegram, the CLI and
``[[jobs]]``): no ``/``, ``\\`` or control characters, never empty or blank (not silently
replaced by a generated name); the same message everywhere. A job stored with such a name by
an older version stays reachable by its id."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from mcp import Client

from gateway.mcp_server import build_server
from starpod_cron.access import Principal
from starpod_cron.cli.main import main
from starpod_cron.inputrules import NAME_RULE
from starpod_cron.jobfields import JobFields
from tests.gateway.botapi import TOKEN, BotApi, running_botapi
from tests.gateway.conftest import telegram_gateway, ws_client

OWNER = 42
ALICE = {"Authorization": "Bearer alice-token-0123456789"}
BAD = [("a/runs", "contains '/'"), ("a\\b", "contains '\\\\'"), ("", "empty"), ("  ", "empty")]


async def _telegram(api: BotApi, text: str) -> str:
    before = len(api.texts(OWNER))
    api.type(OWNER, text)
    deadline = time.monotonic() + 15
    while len(api.texts(OWNER)) <= before:
        assert time.monotonic() < deadline, f"no answer to {text!r}"
        await asyncio.sleep(0.02)
    return api.texts(OWNER)[before]


@pytest.mark.timeout(60)
async def test_bad_names_are_refused_alike_at_every_front_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    async with (
        running_botapi() as api,
        telegram_gateway(tmp_path, api.base_url, allowed_user_ids=(OWNER,)) as gw,
    ):
        assert gw.ws is not None and gw.store is not None
        ops = gw.ws.ops
        await ops.add(Principal("alice"), JobFields(name="keep", prompt="p", every="1h"))
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}", headers=ALICE) as http,
            ws_client(gw, "alice-token-0123456789") as ws,
            Client(build_server(ops, Principal("alice"))) as mcp,
        ):
            for name, words in BAD:
                add = {"name": name, "prompt": "hi", "every": "1h"}
                answers: dict[str, str] = {}
                posted = await http.post("/api/jobs", json=add)
                assert posted.status_code == 400, posted.text
                assert posted.json()["error"]["code"] == "invalid"
                answers["http"] = posted.json()["error"]["message"]
                renamed = await http.patch("/api/jobs/keep", json={"rename": name})
                assert renamed.status_code == 400, renamed.text
                answers["http rename"] = renamed.json()["error"]["message"]
                over_ws = await ws.request("cron.add", **add)
                assert not over_ws["ok"] and over_ws["error"]["code"] == "invalid", over_ws
                answers["ws"] = over_ws["error"]["message"]
                over_mcp = await mcp.call_tool("cron_add", add)
                assert over_mcp.is_error
                answers["mcp"] = over_mcp.content[0].text  # type: ignore[union-attr]
                said = await _telegram(api, f"/every 1h name={name} hi")
                assert said.startswith("Error: "), said
                answers["telegram"] = said.removeprefix("Error: ")
                if name.strip():  # Telegram's words end at the first space, as a name there
                    assert len(set(answers.values())) == 1, answers  # one message everywhere
                for where, message in answers.items():
                    assert words in message, (where, message)
                    assert NAME_RULE in message or "empty" in message, (where, message)
            names = sorted(j.name for j in await gw.store.list_jobs())
            assert names == ["keep"], names  # nothing written, no generated name either


@pytest.mark.timeout(60)
async def test_a_stored_name_with_a_slash_is_reachable_by_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARPOD_TEST_TG_TOKEN", TOKEN)
    async with (
        running_botapi() as api,
        telegram_gateway(tmp_path, api.base_url, allowed_user_ids=(OWNER,)) as gw,
    ):
        assert gw.ws is not None and gw.store is not None
        ops = gw.ws.ops
        alice = Principal("alice")
        plain = await ops.add(alice, JobFields(name="a", prompt="plain a", every="1h"))
        old = await ops.add(alice, JobFields(name="legacy", prompt="the old one", every="1h"))
        with sqlite3.connect(tmp_path / "tg.db") as db:  # as an older version stored it
            db.execute("UPDATE jobs SET name = 'a/runs' WHERE id = ?", (old.id,))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{gw.http_port}", headers=ALICE
        ) as http:
            misread = await http.get("/api/jobs/a%2Fruns")  # the path /api/jobs/a/runs
            assert "the old one" not in misread.text  # why new names may not hold '/'
            shown = await http.get(f"/api/jobs/{old.id}")
            assert shown.status_code == 200 and shown.json()["job"]["name"] == "a/runs"
            runs = await http.get(f"/api/jobs/{old.id}/runs?limit=5")
            assert runs.status_code == 200 and runs.json()["runs"] == []
            paused = await http.post(f"/api/jobs/{old.id}/pause")
            assert paused.status_code == 200 and paused.json()["job"]["enabled"] is False
            ran = await http.post(f"/api/jobs/{old.id}/run")
            assert ran.status_code == 200, ran.text
            assert ran.json()["run"]["job_id"] == old.id
            edited = await http.patch(f"/api/jobs/{old.id}", json={"rename": "legacy"})
            assert edited.status_code == 200 and edited.json()["job"]["name"] == "legacy"
            plain_job = await gw.store.get_job(plain.id)
            assert plain_job is not None and plain_job.enabled  # job "a" was never touched


@pytest.mark.parametrize("name", ["a/b", "", "  "])
def test_declared_jobs_follow_the_same_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agent.toml").write_text(
        f'[[jobs]]\nname = {json.dumps(name)}\nprompt = "p"\nevery = "1h"\n'
    )
    code = main(["--db", str(tmp_path / "jobs.db"), "jobs", "sync"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    if "/" in name:
        assert "contains '/'" in err and NAME_RULE in err, err
    else:
        assert "name the job" in err or "job name is empty" in err, err
