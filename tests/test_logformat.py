"""[logging] format: JSON lines on stderr through python-json-logger, redacted, with the run
context where known; the CLI's own messages and errors follow the format too."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from starpod_cron import logformat
from starpod_cron.logs import register_secret, run_log
from tests.processes import CLI, environment


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook, threading.excepthook
    yield
    logformat.setup_logging("text", "%(message)s", level)  # back to text for other tests
    root.handlers[:] = handlers
    sys.excepthook, threading.excepthook = hooks
    logformat._node = None


def test_json_lines_carry_context_and_mask_secrets(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    register_secret("sk-logformat-secret-123")
    logformat.setup_logging("json", "unused", logging.INFO)
    logformat.set_node("node-1")
    run_log(logging.getLogger("t"), "digest", "r1").warning(
        "failed with %s", "sk-logformat-secret-123", action="fail"
    )
    logging.getLogger("t").info("plain", extra={"delivery_id": 7})
    try:
        raise ValueError("boom sk-logformat-secret-123")
    except ValueError:
        logging.getLogger("t").exception("it broke")
    logformat.say("stopping")
    logformat.say_error("bad input")
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 5
    first, plain, broke, said, error = records
    assert first["job"] == "digest" and first["run_id"] == "r1" and first["action"] == "fail"
    assert first["level"] == "WARNING" and first["logger"] == "t" and first["node"] == "node-1"
    assert "sk-logformat" not in "\n".join(lines) and "[REDACTED]" in first["message"]
    assert plain["delivery_id"] == 7 and "job" not in plain and "action" not in plain
    assert "ValueError: boom [REDACTED]" in broke["exc_info"]
    assert said["message"] == "stopping" and error["level"] == "ERROR"


def test_text_mode_prints_for_people(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logformat.setup_logging("text", "%(message)s", logging.INFO)
    assert not logformat.is_json()
    logformat.say_error("bad input")
    assert capsys.readouterr().err == "starpod-cron: error: bad input\n"


def test_a_cli_error_is_a_json_line_with_json_logs(tmp_path: Path) -> None:
    run = subprocess.run(
        [CLI, "--db", str(tmp_path / "none.db"), "jobs", "show", "x"],
        env=environment({"STARPOD_LOGGING_FORMAT": "json"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    (record,) = [json.loads(line) for line in run.stderr.splitlines()]
    assert record["level"] == "ERROR" and "no database" in record["message"]
    bad = subprocess.run(
        [CLI, "jobs", "list"],
        cwd=tmp_path,
        env=environment({"STARPOD_LOG_FORMAT": "yaml"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "set by $STARPOD_LOG_FORMAT" in bad.stderr, bad.stderr
