"""Parsing what people type: durations (``1h30m``) and times (``tomorrow 9:00``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from ..errors import InvalidInput, InvalidSchedule
from ..schedules import OneShot, Schedule
from ..timeutil import zone

_DURATION = re.compile(r"(\d+)(ms|d|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RELATIVE_DAY = re.compile(r"^(today|tomorrow)\s+(\d{1,2})(?::(\d{2}))?\s*$", re.IGNORECASE)


def duration_ms(text: str) -> int:
    """``30s`` ``10m`` ``2h`` ``1d`` ``1h30m`` -> milliseconds."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise InvalidInput(f"invalid duration {text!r}: use forms like 30s, 10m, 2h, 1d or 1h30m")
    total = sum(int(n) * _UNIT_MS[u] for n, u in parts)
    if total <= 0:
        raise InvalidInput(f"invalid duration {text!r}: it must be longer than zero")
    return total


def at_time(text: str, tz_name: str, now: datetime) -> OneShot:
    """A one-shot from ISO 8601 or ``today HH:MM`` / ``tomorrow HH:MM`` (read in ``tz_name``)."""
    match = _RELATIVE_DAY.match(text)
    if match:
        day, hour, minute = match.group(1).lower(), int(match.group(2)), int(match.group(3) or 0)
        if hour > 23 or minute > 59:
            raise InvalidSchedule(f"invalid time {text!r}")
        local = now.astimezone(zone(tz_name)).date() + timedelta(days=day == "tomorrow")
        naive = datetime(local.year, local.month, local.day, hour, minute)
        return Schedule.one_shot(naive.isoformat())
    try:
        return Schedule.one_shot(text)
    except InvalidSchedule:
        raise InvalidSchedule(
            f"invalid time {text!r}: use ISO 8601 ('2026-12-01 09:00', "
            "'2026-12-01T09:00:00+01:00') or 'tomorrow 9:00'"
        ) from None


SCHEDULE_KINDS = ("cron", "every", "at", "in")


def schedule(kind: str, value: str, tz: str, now: datetime) -> Schedule:
    """What a user typed as ``--cron/--every/--at/--in`` (or the chat and WebSocket
    equivalents) as a Schedule; ``at`` is read in ``tz``, ``in`` counts from ``now``."""
    if kind == "cron":
        return Schedule.cron(value)
    if kind == "every":
        return Schedule.interval(every_ms=duration_ms(value))
    if kind == "at":
        return at_time(value, tz, now)
    if kind == "in":
        delay = timedelta(milliseconds=duration_ms(value))
        return Schedule.one_shot((now + delay).replace(microsecond=0).isoformat())
    raise InvalidInput(f"unknown schedule kind {kind!r}; use one of {', '.join(SCHEDULE_KINDS)}")
