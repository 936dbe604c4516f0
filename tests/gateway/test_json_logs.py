"""`serve` with JSON logs: every stderr line from start to exit is one JSON object, secrets
masked, one start-up summary (the logformat module, through a real process)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from tests.processes import run_cli, serve

pytestmark = pytest.mark.slow

TOKEN = "ops-token-0123456789abcdef"
CONFIG = """\
[executor]
kind = "python"
target = "tests.opstargets:warn_and_fail"

[cron]
tick_secs = 0.5
"""


def _records(text: str) -> list[dict[str, object]]:
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # every line, or the test fails here naming it
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= record.keys(), line
        records.append(record)
    return records


async def test_serve_with_json_logs_writes_only_json_lines_without_secrets(
    tmp_path: Path,
) -> None:
    (tmp_path / "agent.toml").write_text(CONFIG)
    env = {
        "STARPOD_LOG_FORMAT": "json",
        "STARPOD_GATEWAY_TOKENS": json.dumps({TOKEN: {"user_id": "ops", "admin": True}}),
        "OPS_SECRET": TOKEN,
        "PYTHONWARNINGS": "always",
    }
    code, _, err = await run_cli(tmp_path, "jobs", "add", "doomed", "go", "--in", "1s", env=env)
    assert code == 0, err
    log = tmp_path / "serve.log"
    gateway = await serve(tmp_path, env=env, log=log, ready=b"gateway started")
    try:
        await gateway.read_until(b"the model refused")
    finally:
        gateway.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(gateway.proc.wait(), 30)
    assert code == 0
    text = log.read_text()
    assert TOKEN not in text
    records = _records(text)
    started = [r for r in records if r["message"] == "starpod-cron gateway started"]
    assert len(started) == 1
    assert {"store", "schema_version", "executor", "http_port", "ws_port", "nodes"} <= set(
        started[0]
    )
    assert not [r for r in records if "migrated" in str(r["message"])]
    failed = [r for r in records if "the model refused" in str(r["message"])]
    assert failed and failed[0]["job"] == "doomed" and failed[0]["run_id"]
    assert "[REDACTED]" in str(failed[0]["message"])
    warned = [r for r in records if r["logger"] == "py.warnings"]
    assert warned and "deprecated call with [REDACTED]" in str(warned[0]["message"])
    thread = [r for r in records if "helper" in str(r["message"])]
    assert thread and "ValueError" in str(thread[0]["exc_info"])
    assert "[REDACTED]" in str(thread[0]["exc_info"])
    assert records[-1]["message"] == "stopped"
    assert all(r["node"] == started[0]["node"] for r in records)  # the node of every line
