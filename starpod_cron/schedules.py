"""Schedule kinds and their pure time maths: no I/O, no clock.

``Schedule.next_run(after, timezone)`` answers "when is the first fire strictly after this
instant in this zone", returning an aware UTC datetime or ``None`` when it never fires again.

Cron evaluation is delegated to `cronsim`, which follows Debian cron: OR between restricted
day-of-month and day-of-week fields (AND when either starts with ``*``), and Debian's DST rules
(a fixed local time in a spring-forward gap fires once at the transition, in a fall-back fold
once at its first occurrence; jobs whose minute or hour field starts with ``*`` follow real time
and fire in both folds). Six-field expressions put SECONDS FIRST and get the same DST rules,
because the seconds are applied within each minute the five-field part selects.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import ClassVar

from cronsim import CronSim, CronSimError
from cronsim.cronsim import FIELD_NAMES, RANGES

from .errors import InvalidSchedule
from .timeutil import EPOCH, MAX_INSTANT, from_ms, resolve_local, to_ms, zone

MIN_INTERVAL_MS = 1000
MAX_INTERVAL_MS = 100 * 365 * 86_400_000

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_SECOND = timedelta(seconds=1)


class Schedule(abc.ABC):
    """When a job fires. Build one with :meth:`one_shot`, :meth:`interval` or :meth:`cron`."""

    kind: ClassVar[str]

    @staticmethod
    def one_shot(at: str | datetime) -> OneShot:
        """Fire once at ``at`` (ISO 8601). A naive time is read in the job's time zone."""
        return OneShot.parse(at)

    @staticmethod
    def interval(every_ms: int, anchor: datetime | None = None) -> Interval:
        """Fire at ``anchor + k * every_ms`` (k >= 0), a fixed grid that never drifts.

        Without an anchor the store uses the job's creation (or schedule change) time, so the
        first fire is one interval after it. ``every_ms`` must be at least 1000.
        """
        return Interval.build(every_ms, anchor)

    @staticmethod
    def cron(expr: str) -> Cron:
        """Fire on a cron expression: 5 fields (minute first) or 6 fields (SECONDS first)."""
        return Cron.parse(expr)

    @abc.abstractmethod
    def next_run(self, after: datetime, timezone: str | None = None) -> datetime | None:
        """The first fire strictly after ``after`` (aware), as aware UTC, or None if none."""

    @abc.abstractmethod
    def latest_run(self, at_or_before: datetime, timezone: str | None = None) -> datetime | None:
        """The last fire at or before ``at_or_before``, as aware UTC, or None if none."""

    @abc.abstractmethod
    def to_storage(self) -> tuple[str, str, int | None]:
        """``(kind, expression, anchor_ms)`` as the store keeps them."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A short text form, e.g. ``cron 0 9 * * 1-5`` or ``every 30m``."""

    @staticmethod
    def from_storage(kind: str, expr: str, anchor_ms: int | None) -> Schedule:
        """The schedule the store kept as ``(kind, expression, anchor_ms)`` (cached: schedules
        are immutable and many jobs share one)."""
        return _from_storage(kind, expr, anchor_ms)


@lru_cache(maxsize=65536)
def _from_storage(kind: str, expr: str, anchor_ms: int | None) -> Schedule:
    if kind == OneShot.kind:
        return OneShot.parse(expr)
    if kind == Interval.kind:
        return Interval(every_ms=int(expr), anchor_ms=anchor_ms)
    if kind == Cron.kind:
        return Cron.parse(expr)
    raise InvalidSchedule(f"unknown schedule kind {kind!r}")


def _aware(after: datetime) -> datetime:
    if after.tzinfo is None:
        raise ValueError("next_run/latest_run need an aware datetime")
    return after


@lru_cache(maxsize=65536)
def _one_shot_instant(at: str, timezone: str) -> datetime:
    """Cached: a burst of one-shots due together asks for the same few instants thousands of
    times while they are claimed and finished."""
    dt = _parse_iso(at)
    if dt.tzinfo is None:
        return resolve_local(dt, zone(timezone))
    return dt.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class OneShot(Schedule):
    at: str
    kind: ClassVar[str] = "one_shot"

    @classmethod
    def parse(cls, at: str | datetime) -> OneShot:
        if isinstance(at, datetime):
            return cls(at.isoformat())
        if not isinstance(at, str) or not at.strip():
            raise InvalidSchedule("one-shot time must be an ISO 8601 string or a datetime")
        if len(at) > 100:
            raise InvalidSchedule("one-shot time is too long to be an ISO 8601 time")
        try:
            parsed = _parse_iso(at.strip())
        except (ValueError, OverflowError) as exc:
            raise InvalidSchedule(
                f"one-shot time {at!r} is not ISO 8601 (e.g. '2026-12-01T09:00:00+01:00')"
            ) from exc
        naive = parsed.replace(tzinfo=None)
        if not EPOCH.replace(tzinfo=None) < naive < MAX_INSTANT.replace(tzinfo=None):
            raise InvalidSchedule(
                f"one-shot time {at!r} is out of range: give a time between 1970 and 9000"
            )
        return cls(at.strip())

    def instant(self, timezone: str | None) -> datetime:
        """The UTC instant this one-shot fires (to the millisecond, the store's precision);
        a naive time is read in ``timezone``."""
        return _one_shot_instant(self.at, timezone or "UTC")

    def next_run(self, after: datetime, timezone: str | None = None) -> datetime | None:
        at = self.instant(timezone)
        return at if at > _aware(after) else None

    def latest_run(self, at_or_before: datetime, timezone: str | None = None) -> datetime | None:
        at = self.instant(timezone)
        return at if at <= _aware(at_or_before) else None

    def to_storage(self) -> tuple[str, str, int | None]:
        return (self.kind, self.at, None)

    def describe(self) -> str:
        return f"once at {self.at}"


@dataclass(frozen=True, slots=True)
class Interval(Schedule):
    every_ms: int
    anchor_ms: int | None = None
    kind: ClassVar[str] = "interval"

    @property
    def anchor(self) -> datetime | None:
        return None if self.anchor_ms is None else from_ms(self.anchor_ms)

    @classmethod
    def build(cls, every_ms: int, anchor: datetime | None) -> Interval:
        if isinstance(every_ms, bool) or not isinstance(every_ms, int):
            raise InvalidSchedule("an interval must be a whole number of milliseconds")
        if every_ms < MIN_INTERVAL_MS:
            raise InvalidSchedule(
                f"an interval of {format_duration_ms(max(every_ms, 0))} is too short: jobs can "
                "repeat at most once a second"
            )
        if every_ms > MAX_INTERVAL_MS:
            raise InvalidSchedule("an interval can be at most 100 years (36500d)")
        if anchor is not None and (anchor.tzinfo is None or not EPOCH <= anchor < MAX_INSTANT):
            raise InvalidSchedule("an interval anchor must be an aware time between 1970 and 9000")
        return cls(every_ms=every_ms, anchor_ms=None if anchor is None else to_ms(anchor))

    def anchored(self, anchor_ms: int) -> Interval:
        """This interval with its anchor fixed (the store does this when it saves the job)."""
        if self.anchor_ms is not None:
            return self
        return Interval(every_ms=self.every_ms, anchor_ms=anchor_ms)

    def next_ms(self, after_ms: int) -> int:
        anchor = after_ms if self.anchor_ms is None else self.anchor_ms
        if after_ms < anchor:
            return anchor
        return anchor + ((after_ms - anchor) // self.every_ms + 1) * self.every_ms

    def latest_ms(self, at_ms: int) -> int | None:
        if self.anchor_ms is None or at_ms < self.anchor_ms:
            return None
        return self.anchor_ms + ((at_ms - self.anchor_ms) // self.every_ms) * self.every_ms

    def next_run(self, after: datetime, timezone: str | None = None) -> datetime | None:
        return from_ms(self.next_ms(to_ms(_aware(after))))

    def latest_run(self, at_or_before: datetime, timezone: str | None = None) -> datetime | None:
        ms = self.latest_ms(to_ms(_aware(at_or_before)))
        return None if ms is None else from_ms(ms)

    def to_storage(self) -> tuple[str, str, int | None]:
        return (self.kind, str(self.every_ms), self.anchor_ms)

    def describe(self) -> str:
        return f"every {format_duration_ms(self.every_ms)}"


@dataclass(frozen=True, slots=True)
class Cron(Schedule):
    expr: str
    kind: ClassVar[str] = "cron"

    @classmethod
    def parse(cls, expr: str) -> Cron:
        if not isinstance(expr, str):
            raise InvalidSchedule("cron expression must be a string")
        if len(expr) > 200:
            raise InvalidSchedule(f"cron expression is {len(expr)} characters; the limit is 200")
        normalized = " ".join(expr.split())
        _compile(normalized)
        return cls(normalized)

    def _fields(self) -> tuple[str, frozenset[int]]:
        return _compile(self.expr)

    def next_run(self, after: datetime, timezone: str | None = None) -> datetime | None:
        return next(self.fires_after(after, timezone), None)

    def fires_after(self, after: datetime, timezone: str | None = None) -> Iterator[datetime]:
        """Every fire strictly after ``after``, in order, as aware UTC (one cron evaluator
        for the whole walk: far cheaper than calling :meth:`next_run` in a loop)."""
        minute_expr, seconds = self._fields()
        after = _aware(after).astimezone(UTC)
        tz = zone(timezone or "UTC")
        start = (after.replace(second=0, microsecond=0) - _SECOND).astimezone(tz)
        ordered = sorted(seconds)
        for minute in CronSim(minute_expr, start):  # the minute holding `after`, then on
            in_utc = minute.astimezone(UTC)
            for sec in ordered:
                candidate = in_utc + timedelta(seconds=sec)
                if candidate > after:
                    yield candidate

    def latest_run(self, at_or_before: datetime, timezone: str | None = None) -> datetime | None:
        minute_expr, seconds = self._fields()
        at = _aware(at_or_before).astimezone(UTC)
        tz = zone(timezone or "UTC")
        start = (at.replace(second=0, microsecond=0) + _MINUTE).astimezone(tz)
        it = CronSim(minute_expr, start, reverse=True)
        ordered = sorted(seconds, reverse=True)
        for _ in range(3):
            try:
                minute = next(it).astimezone(UTC)
            except StopIteration:
                return None
            for sec in ordered:
                candidate = minute + timedelta(seconds=sec)
                if candidate <= at:
                    return candidate
        return None  # pragma: no cover

    def to_storage(self) -> tuple[str, str, int | None]:
        return (self.kind, self.expr, None)

    def describe(self) -> str:
        return f"cron {self.expr}"


@lru_cache(maxsize=65536)
def _parse_iso(text: str) -> datetime:
    try:  # the form the store keeps (datetime.isoformat's), read without dateutil
        dt = datetime.fromisoformat(text)
        canonical = dt.isoformat() == text
    except ValueError:
        canonical = False
    if not canonical:  # anything else ISO 8601 allows, as dateutil reads it
        from dateutil.parser import isoparse

        dt = isoparse(text)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def expand_alias(expr: str) -> str:
    """``@daily`` -> ``0 0 * * *``; any other expression unchanged."""
    return _ALIASES.get(expr.lower(), expr)


@lru_cache(maxsize=4096)
def _compile(expr: str) -> tuple[str, frozenset[int]]:
    """Validate ``expr``; return its five-field minute part and its set of seconds."""
    text = expand_alias(expr)
    if text.startswith("@"):
        raise InvalidSchedule(
            f"cron alias {expr!r} is not supported; use one of {', '.join(sorted(_ALIASES))}"
        )
    fields = text.split()
    if len(fields) == 5:
        minute_expr, seconds_field = text, "0"
    elif len(fields) == 6:
        minute_expr, seconds_field = " ".join(fields[1:]), fields[0]
    else:
        raise InvalidSchedule(
            f"cron expression {expr!r} has {len(fields)} fields; use 5 (minute hour day month "
            "weekday) or 6 (second minute hour day month weekday)"
        )
    try:
        parsed = CronSim(f"{seconds_field} {minute_expr}", _REFERENCE)
    except CronSimError as exc:
        raise InvalidSchedule(
            _cron_problem(expr, [seconds_field, *minute_expr.split()], exc)
        ) from exc
    return minute_expr, frozenset(parsed.seconds)


_FIELD_HINTS = {
    "month": " or JAN-DEC",
    "day-of-week": " (0 and 7 are Sunday) or SUN-SAT",
}


def _cron_problem(expr: str, fields: list[str], exc: CronSimError) -> str:
    """cronsim's terse "Bad minute" as a message naming the field, its value and its range."""
    message = str(exc)
    for index, name in enumerate(FIELD_NAMES):
        if message == f"Bad {name}":
            values = RANGES[index]
            value = fields[index]
            hint = _FIELD_HINTS.get(name, "")
            if name == "day-of-month" and value not in ("*", "?"):
                hint = " (and a month that has that day)"
            return (
                f"invalid cron expression {expr!r}: the {name} field {value!r} is not valid; "
                f"use {values.start}-{values.stop - 1}{hint}, ranges (1-5), lists (1,3) "
                "or steps (*/15)"
            )
    return f"invalid cron expression {expr!r}: {message}"


def format_duration_ms(ms: int) -> str:
    """``90_000`` -> ``1m30s``; whole units only, milliseconds kept when present."""
    parts: list[str] = []
    rest = ms
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    if rest or not parts:
        parts.append(f"{rest}ms")
    return "".join(parts)
