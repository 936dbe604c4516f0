"""CLI start-up imports only what the command needs (issue 28): ``--version`` and ``jobs list``
never load the scheduler, the gateway, PostgreSQL's driver, python-telegram-bot,
``dateutil.parser`` or argcomplete (completion loads only when the shell asks for it).

Each command runs in a fresh interpreter, which then reports every module it had loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import CLI

pytestmark = pytest.mark.slow  # subprocesses

FORBIDDEN = (
    "starpod_cron.scheduler",
    "gateway",
    "asyncpg",
    "telegram",
    "dateutil.parser",
    "argcomplete",
)
RUN_AND_REPORT = """
import json, sys
from starpod_cron.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:  # --version exits from argparse
    code = exc.code
with open(sys.argv[1], "w") as report:
    json.dump({"code": code, "modules": sorted(sys.modules)}, report)
"""


def loaded(tmp_path: Path, *args: str) -> list[str]:
    report = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, str(report), *args],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
    )
    answer = json.loads(report.read_text())
    assert answer["code"] == 0
    modules: list[str] = answer["modules"]
    return modules


def forbidden(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_version_loads_nothing_of_the_library_but_the_cli(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--version")
    assert forbidden(modules) == []
    ours = {m for m in modules if m.startswith("starpod_cron")}
    assert ours <= {"starpod_cron", "starpod_cron.lazynames", "starpod_cron.version"} | {
        m for m in ours if m.startswith("starpod_cron.cli")
    }
    assert "asyncio" not in modules and "starpod_cron.store" not in modules


def test_jobs_list_loads_no_scheduler_gateway_postgres_telegram_or_dateutil(
    cli: CLI, db: str, tmp_path: Path
) -> None:
    for args in (
        ("jobs", "add", "cron", "p", "--cron", "0 9 * * *"),
        ("jobs", "add", "every", "p", "--every", "1h"),
        ("jobs", "add", "once", "p", "--at", "2031-05-01T09:00:00+02:00"),
    ):
        assert cli(*args).code == 0
    for command in (["jobs", "list"], ["jobs", "list", "--all"], ["jobs", "list", "--json"]):
        modules = loaded(tmp_path, "--db", db, *command)
        assert forbidden(modules) == [], command
        assert "starpod_cron.store" in modules  # it did read the store


TABLE_NEEDS_NONE_OF = (
    "starpod_cron.models",
    "starpod_cron.store.store",
    "starpod_cron.routing",
    "asyncio",
)
"""The table of ``jobs list`` reads its rows through the dialect alone: no store object, no
delivery routing, no job model, and on SQLite no event loop (what makes it start fast)."""


def test_the_jobs_table_opens_only_the_driver_with_or_without_a_database(
    cli: CLI, db: str, tmp_path: Path
) -> None:
    assert loaded_table(tmp_path, db) == []  # no database file
    assert cli("jobs", "add", "a", "p", "--every", "1h").code == 0
    assert cli("jobs", "remove", "a", "--yes").code == 0
    assert loaded_table(tmp_path, db) == []  # an existing database without jobs
    assert cli("jobs", "add", "b", "p", "--cron", "0 9 * * *").code == 0
    assert loaded_table(tmp_path, db) == []


def loaded_table(tmp_path: Path, db: str) -> list[str]:
    modules = loaded(tmp_path, "--db", db, "jobs", "list")
    assert "starpod_cron.store.dialects.sqlitefile" in modules
    heavy = [m for m in modules if m in TABLE_NEEDS_NONE_OF]
    return forbidden(modules) + heavy


def test_the_measure_sees_a_forbidden_module(cli: CLI, db: str, tmp_path: Path) -> None:
    """``jobs run`` builds a scheduler: the same report names it (the test above can fail)."""
    assert cli("jobs", "add", "a", "p", "--every", "1h").code == 0
    modules = loaded(tmp_path, "--db", db, "jobs", "run", "a")
    assert "starpod_cron.scheduler" in forbidden(modules)


def test_serve_is_still_a_command_through_its_entry_point(tmp_path: Path) -> None:
    """The gateway's commands load through the entry points, only when one is asked for."""
    done = subprocess.run(
        [sys.executable, "-m", "starpod_cron", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0 and "--http-port" in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "starpod_cron", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert " serve " in listed.stdout and " mcp " in listed.stdout
