"""Pure time maths: one table of (schedule, zone, after, expected next fire), DST days included."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from starpod_cron import InvalidSchedule, InvalidTimezone, Schedule
from starpod_cron.schedules import Cron


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


NEXT_FIRE = [
    # expression, zone, after, expected
    ("*/5 * * * *", "UTC", "2026-01-01T00:02:00Z", "2026-01-01T00:05:00Z"),
    ("*/5 * * * *", "UTC", "2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"),  # strictly after
    ("*/5 * * * *", "UTC", "2026-01-01T00:04:59.999Z", "2026-01-01T00:05:00Z"),
    ("0 9 * * 1-5", "UTC", "2026-11-21T10:00:00Z", "2026-11-23T09:00:00Z"),  # Sat -> Mon
    ("0 9-17/4 * * *", "UTC", "2026-11-21T10:00:00Z", "2026-11-21T13:00:00Z"),
    ("15,45 * * * *", "UTC", "2026-11-21T10:20:00Z", "2026-11-21T10:45:00Z"),
    ("0 12 * JAN,JUL MON", "UTC", "2026-06-01T00:00:00Z", "2026-07-06T12:00:00Z"),
    ("0 8 * * 0", "UTC", "2026-11-21T00:00:00Z", "2026-11-22T08:00:00Z"),  # Sunday = 0
    ("0 8 * * 7", "UTC", "2026-11-21T00:00:00Z", "2026-11-22T08:00:00Z"),  # Sunday = 7
    ("0 8 * * SUN", "UTC", "2026-11-21T00:00:00Z", "2026-11-22T08:00:00Z"),
    ("0 8 * * sat,sun", "UTC", "2026-11-20T09:00:00Z", "2026-11-21T08:00:00Z"),
    ("0 8 * * mon-fri", "UTC", "2026-11-21T09:00:00Z", "2026-11-23T08:00:00Z"),
    # Debian day rule: both restricted -> OR (the 13th OR a Friday)
    ("0 0 13 * 5", "UTC", "2026-11-21T00:00:00Z", "2026-11-27T00:00:00Z"),
    ("0 0 13 * 5", "UTC", "2026-12-05T00:00:00Z", "2026-12-11T00:00:00Z"),
    # ... either starts with '*' -> AND (odd days that are Saturdays)
    ("0 0 */2 * 6", "UTC", "2026-11-21T00:00:00Z", "2026-12-05T00:00:00Z"),
    ("@hourly", "UTC", "2026-11-21T10:30:00Z", "2026-11-21T11:00:00Z"),
    ("@daily", "UTC", "2026-11-21T10:30:00Z", "2026-11-22T00:00:00Z"),
    ("@midnight", "UTC", "2026-11-21T10:30:00Z", "2026-11-22T00:00:00Z"),
    ("@weekly", "UTC", "2026-11-21T10:30:00Z", "2026-11-22T00:00:00Z"),
    ("@monthly", "UTC", "2026-11-21T10:30:00Z", "2026-12-01T00:00:00Z"),
    ("@yearly", "UTC", "2026-11-21T10:30:00Z", "2027-01-01T00:00:00Z"),
    ("@annually", "UTC", "2026-11-21T10:30:00Z", "2027-01-01T00:00:00Z"),
    # six fields: SECONDS first
    ("0 0 9 * * *", "UTC", "2026-11-21T08:59:59Z", "2026-11-21T09:00:00Z"),
    ("0 0 9 * * *", "UTC", "2026-11-21T09:00:00Z", "2026-11-22T09:00:00Z"),
    ("30 */10 * * * *", "UTC", "2026-11-21T00:00:00Z", "2026-11-21T00:00:30Z"),
    ("30 */10 * * * *", "UTC", "2026-11-21T00:00:30Z", "2026-11-21T00:10:30Z"),
    ("*/15 * * * * *", "UTC", "2026-11-21T00:00:07.500Z", "2026-11-21T00:00:15Z"),
    ("*/15 * * * * *", "UTC", "2026-11-21T00:00:45Z", "2026-11-21T00:01:00Z"),
    ("0 0 0 * * 0", "UTC", "2026-11-21T12:00:00Z", "2026-11-22T00:00:00Z"),
    # zones
    ("0 9 * * *", "Europe/Rome", "2026-11-21T07:00:00Z", "2026-11-21T08:00:00Z"),
    ("0 9 * * *", "America/New_York", "2026-11-21T07:00:00Z", "2026-11-21T14:00:00Z"),
    # Europe/Berlin spring forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z)
    ("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"),  # gap
    ("30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"),  # once
    ("0 30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"),
    ("0 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z"),
    # Europe/Berlin fall back 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z)
    ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"),  # first
    ("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"),  # not twice
    ("0 30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"),
    ("0 * * * *", "Europe/Berlin", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z"),  # both folds
    ("0 * * * *", "Europe/Berlin", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"),
    # America/New_York spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z)
    ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z"),
    ("30 2 * * *", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"),
    ("0 * * * *", "America/New_York", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"),
    # America/New_York fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z)
    ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z"),
    ("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"),
    ("0 * * * *", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"),
    ("*/30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z"),
]


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), NEXT_FIRE)
def test_cron_next_fire(expr: str, zone: str, after: str, expected: str) -> None:
    got = Schedule.cron(expr).next_run(utc(after), zone)
    assert got == utc(expected)
    assert got is not None and got.tzinfo is not None and got.utcoffset() == timedelta(0)


def fires(expr: str, zone: str, start: str, end: str) -> list[datetime]:
    sched, t, out = Schedule.cron(expr), utc(start), []
    while True:
        nxt = sched.next_run(t, zone)
        assert nxt is not None and nxt > t
        if nxt > utc(end):
            return out
        out.append(nxt)
        t = nxt


DST_DAYS = [
    ("Europe/Berlin", "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z", "2026-03-29"),
    ("Europe/Berlin", "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z", "2026-10-25"),
    ("America/New_York", "2026-03-07T00:00:00Z", "2026-03-10T12:00:00Z", "2026-03-08"),
    ("America/New_York", "2026-10-31T00:00:00Z", "2026-11-03T12:00:00Z", "2026-11-01"),
]


@pytest.mark.parametrize(("zone", "start", "end", "day"), DST_DAYS)
@pytest.mark.parametrize("expr", ["30 2 * * *", "0 30 2 * * *", "30 1 * * *", "0 2 * * *"])
def test_fixed_local_time_fires_once_per_day_across_dst(
    zone: str, start: str, end: str, day: str, expr: str
) -> None:
    tz = ZoneInfo(zone)
    days = [f.astimezone(tz).date().isoformat() for f in fires(expr, zone, start, end)]
    assert len(days) == len(set(days)), f"a day fired twice: {days}"
    assert days.count(day) == 1, f"the transition day {day} must fire exactly once: {days}"
    assert len(days) >= 2


@pytest.mark.parametrize(("zone", "start", "end", "day"), DST_DAYS)
def test_wildcard_hour_follows_real_time_across_dst(
    zone: str, start: str, end: str, day: str
) -> None:
    got = fires("0 * * * *", zone, start, end)
    hours = (utc(end) - utc(start)) // timedelta(hours=1)
    assert len(got) == hours  # one fire per real hour: 23 on spring day, 25 on fall day
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(got))


@pytest.mark.parametrize(
    ("expr", "zone", "at", "expected"),
    [
        ("0 9 * * *", "UTC", "2026-11-21T10:00:00Z", "2026-11-21T09:00:00Z"),
        ("0 9 * * *", "UTC", "2026-11-21T09:00:00Z", "2026-11-21T09:00:00Z"),  # at or before
        ("*/15 * * * * *", "UTC", "2026-11-21T00:00:20Z", "2026-11-21T00:00:15Z"),
        ("30 2 * * *", "Europe/Berlin", "2026-10-25T12:00:00Z", "2026-10-25T00:30:00Z"),
        ("0 * * * *", "Europe/Berlin", "2026-10-25T01:30:00Z", "2026-10-25T01:00:00Z"),
    ],
)
def test_cron_latest_fire(expr: str, zone: str, at: str, expected: str) -> None:
    assert Schedule.cron(expr).latest_run(utc(at), zone) == utc(expected)


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "* * * *",
        "* * * * * * *",
        "61 * * * *",
        "* 24 * * *",
        "0 0 30 2 *",
        "*/0 * * * *",
        "MON * * * *",
        "0 0 * * 8",
        "@reboot",
        "@fortnightly",
        "60 * * * * *",
        "x y z a b",
    ],
)
def test_invalid_cron_is_rejected_with_the_expression_in_the_message(expr: str) -> None:
    with pytest.raises(InvalidSchedule) as err:
        Schedule.cron(expr)
    assert repr(expr) in str(err.value) or "fields" in str(err.value)


def test_cron_is_normalized_and_round_trips_through_storage() -> None:
    sched = Schedule.cron("  0  9 * *   1-5 ")
    assert sched == Cron("0 9 * * 1-5")
    assert Schedule.from_storage(*sched.to_storage()) == sched


def test_unknown_zone_is_rejected_not_replaced_by_utc() -> None:
    with pytest.raises(InvalidTimezone, match="Mars/Olympus"):
        Schedule.cron("0 9 * * *").next_run(utc("2026-01-01T00:00:00Z"), "Mars/Olympus")


# ------------------------------------------------------------------------------ interval
ANCHOR = utc("2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z"),
        ("2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"),
        ("2026-01-01T00:01:00.700Z", "2026-01-01T00:02:00Z"),  # run took 0.7 s: no drift
        ("2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z"),  # before the anchor: the anchor
        ("2026-03-29T01:30:00Z", "2026-03-29T01:31:00Z"),  # intervals ignore DST
    ],
)
def test_interval_fires_on_a_fixed_grid(after: str, expected: str) -> None:
    sched = Schedule.interval(every_ms=60_000, anchor=ANCHOR)
    assert sched.next_run(utc(after), "Europe/Berlin") == utc(expected)


def test_interval_without_anchor_fires_one_interval_after() -> None:
    assert Schedule.interval(every_ms=5000).next_run(ANCHOR) == ANCHOR + timedelta(seconds=5)


def test_interval_latest_and_round_trip() -> None:
    sched = Schedule.interval(every_ms=90_000, anchor=ANCHOR)
    assert sched.latest_run(utc("2026-01-01T00:04:00Z")) == utc("2026-01-01T00:03:00Z")
    assert Schedule.from_storage(*sched.to_storage()) == sched
    assert sched.describe() == "every 1m30s"


@pytest.mark.parametrize("every", [0, 999, -5, 1.5, True, "60000"])
def test_interval_below_one_second_or_not_an_int_is_rejected(every: object) -> None:
    with pytest.raises(InvalidSchedule):
        Schedule.interval(every_ms=every)  # type: ignore[arg-type]


def test_interval_naive_anchor_is_rejected() -> None:
    with pytest.raises(InvalidSchedule, match="aware"):
        Schedule.interval(every_ms=1000, anchor=datetime(2026, 1, 1))


# ------------------------------------------------------------------------------ one-shot
@pytest.mark.parametrize(
    ("at", "zone", "expected"),
    [
        ("2026-12-01T09:00:00+01:00", "UTC", "2026-12-01T08:00:00Z"),
        ("2026-12-01T09:00:00Z", "Europe/Rome", "2026-12-01T09:00:00Z"),
        ("2026-12-01T09:00:00", "Europe/Rome", "2026-12-01T08:00:00Z"),  # naive: job's zone
        ("2026-12-01 09:00", "America/New_York", "2026-12-01T14:00:00Z"),
        ("2026-03-29T02:30:00", "Europe/Berlin", "2026-03-29T01:00:00Z"),  # gap: after it
        ("2026-10-25T02:30:00", "Europe/Berlin", "2026-10-25T00:30:00Z"),  # fold: first
        ("2026-11-01T01:30:00", "America/New_York", "2026-11-01T05:30:00Z"),
    ],
)
def test_one_shot_fires_once(at: str, zone: str, expected: str) -> None:
    sched = Schedule.one_shot(at)
    assert sched.next_run(utc("2026-01-01T00:00:00Z"), zone) == utc(expected)
    assert sched.next_run(utc(expected), zone) is None
    assert sched.latest_run(utc(expected), zone) == utc(expected)
    assert Schedule.from_storage(*sched.to_storage()) == sched


@pytest.mark.parametrize(
    "at", ["", "tomorrow", "2026-13-01T00:00:00", "2026-12-01T25:00", "12/01/2026"]
)
def test_malformed_one_shot_is_rejected(at: str) -> None:
    with pytest.raises(InvalidSchedule):
        Schedule.one_shot(at)


def test_one_shot_accepts_an_aware_datetime() -> None:
    when = datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("Europe/Rome"))
    assert Schedule.one_shot(when).next_run(ANCHOR) == utc("2026-12-01T08:00:00Z")
