"""``jobs list`` makes its table's cells straight from the rows of the job briefs (issue 28):
the same text as the brief's fields through the functions every other view uses."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from starpod_cron import CronStore
from starpod_cron.cli.listing import enabled_text, table_rows
from starpod_cron.cli.render import at_time, one_line
from starpod_cron.scheduletext import schedule_human
from starpod_cron.store.briefs import JobBrief, brief_script
from starpod_cron.store.driver import Row
from starpod_cron.timeutil import from_ms
from tests.cli.conftest import CLI


def expected(brief: JobBrief, display_tz: str | None, tz: str, now_ms: int) -> list[str]:
    """The cells as they were made from a brief (before the rows were read directly)."""
    name = brief.name
    return [
        name if not brief.description else f"{name} ({one_line(brief.description, 40)})",
        brief.schedule.describe(),
        schedule_human(brief.schedule, display_tz or brief.timezone),
        enabled_text(brief),
        at_time(brief.next_fire_at, tz, from_ms(now_ms)),
        brief.last_status.value if brief.last_status else "-",
    ]


@pytest.fixture
def varied(cli: CLI, db: str) -> None:
    """Jobs of every kind, zone and state a listing shows."""
    for args in (
        ("a-cron", "p", "--cron", "0 9 * * 1-5", "--tz", "Europe/Rome"),
        ("b-every", "p", "--every", "1h30m", "--description", "line one\nline  two " * 8),
        ("c-once", "p", "--at", "2031-05-01T09:00:00+02:00", "--tz", "America/New_York"),
        ("d-secs", "p", "--cron", "*/20 * * * * *", "--jitter", "30s"),
        ("e-off", "p", "--every", "45s", "--user", "u1"),
        ("e-off", "p", "--every", "1d", "--user", "u2", "--tz", "Asia/Kolkata"),
        ("f-paused", "p", "--cron", "@daily", "--description", ""),
    ):
        assert cli("jobs", "add", *args).code == 0, args
    assert cli("jobs", "disable", "b-every").code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE jobs SET enabled = 0, paused_reason = 'ended' WHERE name = 'f-paused'")
        conn.execute("UPDATE jobs SET last_status = 'failed' WHERE name = 'a-cron'")
        conn.execute("UPDATE jobs SET last_status = 'success' WHERE name = 'e-off'")
        conn.execute("UPDATE jobs SET fire_offset_ms = 12345 WHERE name = 'd-secs'")


@pytest.mark.parametrize("display_tz", [None, "Asia/Tokyo"])
def test_the_cells_are_the_briefs_fields_as_every_view_shows_them(
    varied: None, db: str, display_tz: str | None
) -> None:
    async def read() -> tuple[list[JobBrief], list[Row]]:
        async with CronStore.open(db, create=False) as store:
            return await store.list_job_briefs(), await store._read(brief_script())

    briefs, rows = asyncio.run(read())
    assert len(briefs) == len(rows) == 7
    fires = [b.next_fire_at for b in briefs if b.next_fire_at is not None]
    first = min(int(f.timestamp() * 1000) for f in fires)
    # now: well before, exactly at a fire, half a second either side, after (rounding, "now")
    for now_ms in (first - 86_400_000 - 61_500, first, first - 500, first + 500, first + 3_601_000):
        for tz in ("UTC", "Europe/Rome"):
            got = list(table_rows(rows, display_tz, tz, now_ms))
            assert got == [expected(b, display_tz, tz, now_ms) for b in briefs], (now_ms, tz)


def test_the_table_shows_the_shown_jobs_in_one_zone(varied: None, cli: CLI) -> None:
    listed = cli("jobs", "list").out.splitlines()
    assert listed[0].split("  ")[0] == "NAME" and "NEXT RUN (UTC)" in listed[0]
    names = [line.split(" ")[0] for line in listed[1:]]
    assert names == ["a-cron", "c-once", "d-secs", "e-off", "e-off", "f-paused"]  # not b-every
    everything = cli("jobs", "list", "--all", "--user", "u2", "--tz", "Asia/Tokyo").out
    assert "NEXT RUN (Asia/Tokyo)" in everything and len(everything.splitlines()) == 2
