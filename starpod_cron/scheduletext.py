"""Schedules and times as people read them: a schedule as typed and in words, an instant in a
zone with its offset. Apart from :mod:`starpod_cron.views` (which re-exports them) so what
lists jobs loads no job views."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from .schedules import Cron, Interval, OneShot, Schedule, expand_alias, format_duration_ms
from .timeutil import zone


def local(dt: datetime | None, tz_name: str) -> str:
    """``2026-12-01 09:00:00 +01:00`` in ``tz_name`` (for people)."""
    if dt is None:
        return "-"
    moment = dt.astimezone(zone(tz_name))
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + moment.isoformat()[-6:]


def schedule_text(schedule: Schedule, tz_name: str) -> str:
    """The schedule as typed: a cron expression, ``every 30m``, or the one-shot's time in
    ``tz_name`` with its offset (``at 2026-12-01 09:00:00 +01:00``)."""
    if isinstance(schedule, Cron):
        return schedule.expr
    if isinstance(schedule, Interval):
        return schedule.describe()
    assert isinstance(schedule, OneShot)
    return f"at {local(schedule.instant(tz_name), tz_name)}"


def schedule_human(schedule: Schedule, tz_name: str) -> str:
    """The schedule in words, e.g. ``At 09:00, Monday through Friday``."""
    if isinstance(schedule, Cron):
        return _cron_words(schedule.expr)
    if isinstance(schedule, Interval):
        return _every_words(schedule.every_ms)
    assert isinstance(schedule, OneShot)
    return f"Once, at {local(schedule.instant(tz_name), tz_name)}"


def _every_words(every_ms: int) -> str:
    for unit, size in (
        ("day", 86_400_000),
        ("hour", 3_600_000),
        ("minute", 60_000),
        ("second", 1000),
    ):
        count, rest = divmod(every_ms, size)
        if count and not rest:
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return "Every " + format_duration_ms(every_ms)


@lru_cache(maxsize=1024)
def _cron_words(expr: str) -> str:
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    return str(ExpressionDescriptor(expand_alias(expr), options).get_description())
