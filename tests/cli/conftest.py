from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from starpod_cron.cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


CLI = Callable[..., Result]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


@pytest.fixture
def cli(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> CLI:
    monkeypatch.chdir(tmp_path)  # no stray ./agent.toml

    def run(*args: str) -> Result:
        code = main(["--db", db, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def snapshot(db: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every row of jobs and runs, to show a failed command wrote nothing."""
    if not Path(db).exists():
        return [], []
    with sqlite3.connect(db) as conn:
        jobs = conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        runs = conn.execute("SELECT * FROM runs ORDER BY seq").fetchall()
    return jobs, runs
