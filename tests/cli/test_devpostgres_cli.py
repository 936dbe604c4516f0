"""``starpod-cron dev-postgres start|url|stop``: a real local server a gateway's --db can use;
the data directory defaults to the user's state directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.processes import run_cli

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)  # a server's initdb and start, and eight CLI processes
async def test_start_url_stop_and_a_store_on_the_url(tmp_path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="dev-pg-") as where:
        data = ["--data-dir", f"{where}/pg"]
        code, _, err = await run_cli(tmp_path, "dev-postgres", "url", *data)
        assert code == 1 and "no server runs" in err and "dev-postgres start" in err
        code, started, err = await run_cli(tmp_path, "dev-postgres", "start", *data, timeout=90)
        try:
            assert code == 0, err
            url = started.strip()
            assert url.startswith("postgresql://postgres@") and url.endswith("/postgres")
            code, shown, err = await run_cli(tmp_path, "dev-postgres", "url", *data)
            assert (code, shown.strip()) == (0, url), err
            add = ("jobs", "add", "x", "p", "--in", "1h")
            code, _, err = await run_cli(tmp_path, "--db", url, *add)
            assert code == 0, err
            code, listed, err = await run_cli(tmp_path, "--db", url, "jobs", "list", "--json")
            assert code == 0 and '"name": "x"' in listed, err
            code, again, _ = await run_cli(tmp_path, "dev-postgres", "start", *data)
            assert (code, again.strip()) == (0, url)  # already running: the same server
        finally:
            code, _, err = await run_cli(tmp_path, "dev-postgres", "stop", *data, timeout=60)
        assert code == 0, err
        code, _, err = await run_cli(tmp_path, "--db", url, "jobs", "list")
        assert code != 0 and "cannot connect to PostgreSQL" in err
        code, _, _ = await run_cli(tmp_path, "dev-postgres", "stop", *data)
        assert code == 0  # nothing to stop


async def test_the_default_data_directory_is_under_the_state_directory(tmp_path: Path) -> None:
    code, out, err = await run_cli(
        tmp_path, "dev-postgres", "--help", env={"XDG_STATE_HOME": "/srv/state"}
    )
    assert code == 0, err
    assert "/srv/state/starpod-cron/postgres" in out
