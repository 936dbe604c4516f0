"""What people type for times: durations (``1h30m``), times (``tomorrow 9:00``) and the four
schedule forms ``cron``/``every``/``at``/``in``. Shared by the CLI, chat, WebSocket and tools.

Every value is bounded: a duration longer than :data:`MAX_DURATION_MS` (about 100 years) is an
:class:`~starpod_cron.errors.InvalidInput`, never an overflow deeper down.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from .errors import InvalidInput, InvalidSchedule
from .schedules import MIN_INTERVAL_MS, OneShot, Schedule, format_duration_ms
from .timeutil import MAX_INSTANT, zone

MAX_DURATION_MS = 100 * 365 * 86_400_000
_DURATION = re.compile(r"([0-9]{1,15})(ms|d|h|m|s)")  # ASCII digits only, not "²" or "١٢"
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RELATIVE_DAY = re.compile(
    r"^(today|tomorrow)\s+([0-9]{1,2})(?::([0-9]{2}))?\s*$", re.IGNORECASE | re.ASCII
)
MAX_TEXT = 200

SCHEDULE_KINDS = ("cron", "every", "at", "in")


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{what} is {len(value)} characters long; the limit is {MAX_TEXT}")
    return value


def duration_ms(text: object) -> int:
    """``30s`` ``10m`` ``2h`` ``1d`` ``1h30m`` -> milliseconds (at most about 100 years)."""
    raw = _text(text, "a duration")
    cleaned = raw.strip().lower().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise InvalidInput(f"invalid duration {raw!r}: use forms like 30s, 10m, 2h, 1d or 1h30m")
    total = sum(int(n) * _UNIT_MS[u] for n, u in parts)
    if total <= 0:
        raise InvalidInput(f"invalid duration {raw!r}: it must be longer than zero")
    if total > MAX_DURATION_MS:
        raise InvalidInput(f"invalid duration {raw!r}: the longest is 36500d (100 years)")
    return total


def interval_ms(text: object) -> int:
    """A repeat interval: a duration of at least one second."""
    ms = duration_ms(text)
    if ms < MIN_INTERVAL_MS:
        raise InvalidSchedule(
            f"interval {text!r} is too short: jobs can repeat at most once a second (1s)"
        )
    return ms


def at_time(text: object, tz_name: str, now: datetime) -> OneShot:
    """A one-shot from ISO 8601 or ``today HH:MM`` / ``tomorrow HH:MM`` (read in ``tz_name``)."""
    raw = _text(text, "a time")
    match = _RELATIVE_DAY.match(raw)
    if match:
        day, hour, minute = match.group(1).lower(), int(match.group(2)), int(match.group(3) or 0)
        if hour > 23 or minute > 59:
            raise InvalidSchedule(f"invalid time {raw!r}: hours are 0-23 and minutes 0-59")
        local = now.astimezone(zone(tz_name)).date() + timedelta(days=day == "tomorrow")
        naive = datetime(local.year, local.month, local.day, hour, minute)
        return Schedule.one_shot(naive.isoformat())
    try:
        return Schedule.one_shot(raw)
    except InvalidSchedule as exc:
        if "not ISO 8601" not in str(exc):
            raise  # a real time, but unusable (out of range): that message says why
        raise InvalidSchedule(
            f"invalid time {raw!r}: use ISO 8601 ('2026-12-01 09:00', "
            "'2026-12-01T09:00:00+01:00') or 'tomorrow 9:00'"
        ) from None


def after_delay(text: object, now: datetime) -> OneShot:
    """A one-shot ``text`` (a duration) after ``now``, to the second."""
    delay = timedelta(milliseconds=duration_ms(text))
    if now + delay > MAX_INSTANT:
        raise InvalidSchedule(f"a delay of {text!r} ends after the year 9999")
    return Schedule.one_shot((now + delay).replace(microsecond=0).isoformat())


def schedule(kind: str, value: object, tz: str, now: datetime) -> Schedule:
    """What a user typed as ``--cron/--every/--at/--in`` (or the chat, WebSocket and tool
    equivalents) as a Schedule; ``at`` is read in ``tz``, ``in`` counts from ``now``."""
    if kind == "cron":
        return Schedule.cron(_text(value, "a cron expression"))
    if kind == "every":
        return Schedule.interval(every_ms=interval_ms(value))
    if kind == "at":
        return at_time(value, tz, now)
    if kind == "in":
        return after_delay(value, now)
    raise InvalidInput(f"unknown schedule kind {kind!r}; use one of {', '.join(SCHEDULE_KINDS)}")


def describe_ms(ms: int) -> str:
    """``90_000`` -> ``1m30s`` (the form :func:`duration_ms` reads back)."""
    return format_duration_ms(ms)
