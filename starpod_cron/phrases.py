"""Schedules in words: ``every weekday at 9:00`` -> the cron, interval or one-shot it means.

A small, fixed grammar (no guessing, no I/O, no clock: ``now`` and the zone are arguments).
Each phrase becomes one of the four schedule forms every front end already takes
(:data:`~starpod_cron.durations.SCHEDULE_KINDS`), so a phrase and the form it means are
stored alike and behave alike::

    every 30 minutes                   every 30m          (interval, anchored at creation)
    every minute | hour | day          every 1m | 1h | 1d (the N = 1 forms: intervals too)
    every 90 seconds | 2 hours | 3 days | 2 weeks   (also the short forms: every 1h30m)
    every day at 9:00                  cron 0 9 * * *
    every weekday at 9                 cron 0 9 * * 1-5
    every weekend at 10am              cron 0 10 * * 6,0
    every monday, wednesday and friday at 18:30      cron 30 18 * * 1,3,5
    every hour at :15                  cron 15 * * * *   (several: every hour at :00 and :30)
    on the 1st day of every month at 8            cron 0 8 1 * *
    on the 1st and 15th of every month at 8       cron 0 8 1,15 * *
    on the last day of every month at 17:00       cron 0 17 L * *
    in 20 minutes | in an hour | in 1h30m         once, 20 minutes from now (then deleted)
    today at 17:00 | tomorrow at 9                once, read in the job's zone
    at 2026-12-01 09:00 | on 2026-12-01 at 9am    once, read in the job's zone

Times: ``9``, ``09:00`` and ``21:30`` are 24-hour; ``am``/``pm`` only when written (``9am``,
``9:30 pm``, ``12am`` = 00:00, ``12pm`` = 12:00); ``noon`` and ``midnight``. Several times
(``at 9 and 17``, ``at 9:00, 9:30``) share their minute or their hour, so one cron holds them.
Days: full names, plurals (``mondays``) or three letters (``mon``, also ``tues``, ``thurs``).

Refused, with the nearest forms this grammar reads: anything else, and what could mean two
things: ``every 9`` (9 what?), ``at 9`` (today, tomorrow or every day?), ``every weekday`` with
no time, ``every 2 days at 9`` (no cron fires every other day exactly), a date without a time.
Phrases are at most :data:`~starpod_cron.durations.MAX_TEXT` characters; intervals follow the
rules of ``--every`` (at least 1 s, at most 100 years).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from . import durations, views
from .errors import InvalidInput, InvalidSchedule
from .models import CronJob
from .schedules import Cron, Interval, Schedule
from .timeutil import zone
from .views import fires_after, job_fires, local, schedule_human

PREVIEW = 5
FORMS = (
    "every 30 minutes",
    "every 2 hours",
    "every day",
    "every day at 9:00",
    "every weekday at 9:00",
    "every weekend at 10:00",
    "every monday, wednesday and friday at 18:30",
    "every hour at :15",
    "on the 1st day of every month at 9:00",
    "on the last day of every month at 17:00",
    "in 20 minutes",
    "today at 17:00",
    "tomorrow at 9",
    "at 2026-12-01 09:00",
)
"""One example of each form, the nearest of which a refusal names."""

_UNITS = {
    **dict.fromkeys(("second", "seconds", "sec", "secs"), "s"),
    **dict.fromkeys(("minute", "minutes", "min", "mins"), "m"),
    **dict.fromkeys(("hour", "hours", "hr", "hrs"), "h"),
    **dict.fromkeys(("day", "days"), "d"),
    **dict.fromkeys(("week", "weeks"), "w"),
}
_DAYS = {
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
    "sunday": 0,
}
_DAY_NAMES = {
    **_DAYS,
    **{name + "s": n for name, n in _DAYS.items()},
    **{name[:3]: n for name, n in _DAYS.items()},
    "tues": 2,
    "thur": 4,
    "thurs": 4,
}
_SETS = {"weekday": "1-5", "weekdays": "1-5", "weekend": "6,0", "weekends": "6,0"}
_NAMED = {"noon": (12, 0), "midday": (12, 0), "midnight": (0, 0)}
_AND = re.compile(r"\s*(?:,\s*and\s+|,\s*|\s+and\s+|\s*&\s*)")
_N = r"[0-9]{1,15}"
_COUNTED = re.compile(rf"(?:({_N}|an?)\s+)?([a-z]+)")
_TIME = re.compile(r"([0-9]{1,2})(?::([0-9]{2}))?\s*(am|pm|a\.m\.?|p\.m\.?)?", re.ASCII)
_EVERY_AT = re.compile(r"every\s+(.+?)\s+at\s+(.+)")
_MONTHLY = re.compile(r"on\s+the\s+(.+?)\s+(?:day\s+)?of\s+(?:every|each|the)\s+month\s+at\s+(.+)")
_ORDINAL = re.compile(r"([0-9]{1,2})(st|nd|rd|th)", re.ASCII)
_RELATIVE = re.compile(r"(today|tomorrow)\s+(?:at\s+)?(.+)")
_DATED = re.compile(r"(?:at|on)\s+([0-9]{4}-[0-9]{2}-[0-9]{2})(?:(?:\s+at\s+|\s+|t)(.+))?")


@dataclass(frozen=True, slots=True)
class Meaning:
    """What a phrase means as one of the schedule forms ``cron``/``every``/``at``/``in``
    (``value`` as that option takes it: ``0 9 * * 1-5``, ``30m``, ``tomorrow 09:00``)."""

    kind: str
    value: str

    @property
    def relative(self) -> bool:
        """True if it depends on when it is read (``in …``, ``today …``, ``tomorrow …``)."""
        return self.kind == "in" or (
            self.kind == "at" and self.value.startswith(("today ", "tomorrow "))
        )


@dataclass(frozen=True, slots=True)
class Interpretation:
    """What a phrase was understood as: the phrase, the schedule in words, the schedule it
    became and its next fires (in ``timezone``)."""

    phrase: str
    meaning: Meaning
    schedule: Schedule
    timezone: str
    next_runs: tuple[datetime, ...]

    def json(self) -> dict[str, Any]:
        """The ``interpretation`` of an answer (the tools, ``jobs add --json``)."""
        tz = zone(self.timezone)
        return {
            "phrase": self.phrase,
            "in_words": schedule_human(self.schedule, self.timezone),
            "schedule": schedule_text(self.schedule, self.timezone),
            "kind": self.meaning.kind,
            "value": self.meaning.value,
            "timezone": self.timezone,
            "delete_after_run": self.meaning.kind == "in",
            "next_runs": [t.astimezone(tz).isoformat() for t in self.next_runs],
        }

    def lines(self) -> list[str]:
        return lines(self.json())


def schedule_text(schedule: Schedule, tz: str) -> str:
    """``cron 0 9 * * 1-5 (Europe/Rome)``, ``every 30m``, ``once at 2026-12-01 09:00:00 +01:00
    (Europe/Rome)``: the schedule and, where it is read in one, the zone."""
    typed = views.schedule_text(schedule, tz)
    if isinstance(schedule, Interval):
        return typed
    return f"{'cron' if isinstance(schedule, Cron) else 'once'} {typed} ({tz})"


def lines(interpretation: Mapping[str, Any]) -> list[str]:
    """An interpretation's JSON as people read it (the CLI, Telegram)."""
    tz = interpretation["timezone"]
    shown = [
        f"Understood {interpretation['phrase']!r} as: {interpretation['in_words']}",
        f"Schedule: {interpretation['schedule']}",
    ]
    if interpretation["delete_after_run"]:
        shown.append("It is deleted after it runs.")
    fires = [local(datetime.fromisoformat(t), tz) for t in interpretation["next_runs"]]
    shown.append("Next runs:" if len(fires) > 1 else "Runs:")
    return shown + [f"  {t}" for t in fires]


def interpret(phrase: object, tz: str, now: datetime, count: int = PREVIEW) -> Interpretation:
    """``phrase`` read in the zone ``tz`` at ``now``: its schedule and next ``count`` fires.
    InvalidSchedule (an InvalidInput) for a phrase it cannot read, one that could mean two
    things, or one that never fires after ``now`` (a time already past)."""
    text = _phrase(phrase)
    meaning = translate(text)
    schedule = durations.schedule(meaning.kind, meaning.value, tz, now)
    fires = tuple(fires_after(schedule, tz, now, count))
    if not fires:
        raise InvalidSchedule(f"{text!r} is in the past (now is {local(now, tz)} in {tz})")
    return Interpretation(text, meaning, schedule, tz, fires)


def for_job(phrase: str, job: CronJob, count: int = PREVIEW) -> Interpretation:
    """The interpretation of the phrase a saved ``job`` (a CronJob) was made from: its stored
    schedule (an interval anchored at its creation) and its next fires, jitter included."""
    text = _phrase(phrase)
    fires = tuple(job_fires(job, count))
    return Interpretation(text, translate(text), job.schedule, job.timezone, fires)


def _phrase(phrase: object) -> str:
    if not isinstance(phrase, str):
        raise InvalidInput(f"a schedule in words must be text, got {type(phrase).__name__}")
    if len(phrase) > durations.MAX_TEXT:
        raise InvalidInput(
            f"a schedule in words is {len(phrase)} characters long; "
            f"the limit is {durations.MAX_TEXT}"
        )
    return " ".join(phrase.split())


def translate(phrase: str) -> Meaning:
    """The schedule form ``phrase`` means (no clock: ``tomorrow at 9`` stays relative until a
    zone and a time read it). InvalidSchedule names the nearest forms for anything else."""
    text = _phrase(phrase).lower().rstrip(".").strip()
    if not text:
        raise InvalidSchedule(_unknown(phrase, "say when"))
    first = text.split(" ", 1)[0]
    reader = _READERS.get(first)
    meaning = reader(text) if reader else None
    if meaning is None:
        raise InvalidSchedule(_unknown(phrase))
    return meaning


def _unknown(phrase: str, why: str = "it is not a form this grammar reads") -> str:
    text = " ".join(phrase.split()).lower()
    first = text.split(" ", 1)[0] if text else ""
    same_start = [f for f in FORMS if f.split(" ", 1)[0] == first]
    near = difflib.get_close_matches(text, same_start or FORMS, n=3, cutoff=0.0)
    shown = ", ".join(repr(f) for f in near)
    return f"cannot read {phrase!r} as a schedule ({why}); the nearest forms: {shown}"


def _refuse(phrase: str, why: str, *examples: str) -> InvalidSchedule:
    use = " or ".join(repr(e) for e in examples)
    return InvalidSchedule(f"{phrase!r} {why}" + (f": say {use}" if examples else ""))


# ---------------------------------------------------------------------- the forms
def _every(text: str) -> Meaning | None:
    rest = text.removeprefix("every").strip()
    at = _EVERY_AT.fullmatch(text)
    if at is not None:
        return _every_at(text, at.group(1), at.group(2))
    counted = _counted(rest)
    if counted is not None:
        return Meaning("every", counted)
    head = rest.split(" ", 1)[0]
    if head in _SETS or _is_days(rest):
        raise _refuse(text, "needs a time", f"every {rest} at 9:00")
    if _TIME.fullmatch(rest) or rest.isdigit():
        raise _refuse(
            text, "could mean a time or a count", f"every day at {rest}", f"every {rest} minutes"
        )
    return None


def _every_at(text: str, what: str, when: str) -> Meaning | None:
    if what in ("day", "1 day"):
        return Meaning("cron", f"{_times(text, when)} * * *")
    if what in ("hour", "1 hour"):
        return Meaning("cron", f"{_minutes(text, when)} * * * *")
    if what in _SETS:
        return Meaning("cron", f"{_times(text, when)} * * {_SETS[what]}")
    if _counted(what) is not None:
        raise _refuse(
            text,
            "has no exact cron (a count of units does not fall on clock times)",
            f"every {what}",
            f"every day at {when}",
        )
    return Meaning("cron", f"{_times(text, when)} * * {_days(text, what)}")


def _counted(text: str) -> str | None:
    """``30 minutes`` -> ``30m``, ``hour`` -> ``1h``, ``1h30m`` -> ``1h30m``; None if not one."""
    match = _COUNTED.fullmatch(text)
    if match is not None and match.group(2) in _UNITS:
        count = match.group(1)
        number = 1 if count in (None, "a", "an") else int(count)
        unit = _UNITS[match.group(2)]
        return f"{number * 7}d" if unit == "w" else f"{number}{unit}"
    compact = text.replace(" ", "")
    if compact and re.fullmatch(r"(?:[0-9]{1,15}(?:ms|d|h|m|s))+", compact):
        return compact
    return None


def _is_days(text: str) -> bool:
    return all(part in _DAY_NAMES for part in _AND.split(text))


def _days(phrase: str, text: str) -> str:
    """``monday, wednesday and friday`` -> ``1,3,5`` (Monday first, Sunday last)."""
    found: list[int] = []
    for part in _AND.split(text):
        if part not in _DAY_NAMES:
            near = difflib.get_close_matches(part, _DAYS, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InvalidSchedule(
                f"{phrase!r}: unknown day {part!r}{hint}; name days in full or by three "
                "letters, as in 'every monday, wednesday and friday at 9:00', or say 'every day', "
                "'every weekday' or 'every weekend'"
            )
        if _DAY_NAMES[part] not in found:
            found.append(_DAY_NAMES[part])
    found.sort(key=lambda d: d or 7)
    return ",".join(str(d) for d in found)


def _clock(phrase: str, text: str) -> tuple[int, int]:
    """One time of day: ``9``, ``09:30``, ``9am``, ``9:30 pm``, ``noon``, ``midnight``."""
    if text in _NAMED:
        return _NAMED[text]
    match = _TIME.fullmatch(text)
    if match is None:
        raise InvalidSchedule(
            f"{phrase!r}: {text!r} is not a time of day; write 9, 09:30, 9am, 9:30 pm or noon"
        )
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    half = (match.group(3) or "").replace(".", "")
    if minute > 59 or (hour > 23 if not half else not 1 <= hour <= 12):
        ranges = "1-12 with am/pm" if half else "0-23"
        raise InvalidSchedule(
            f"{phrase!r}: {text!r} is not a time of day (hours are {ranges}, minutes 00-59)"
        )
    if half:
        hour = hour % 12 + (12 if half == "pm" else 0)
    return hour, minute


def _clocks(phrase: str, text: str) -> list[tuple[int, int]]:
    times: list[tuple[int, int]] = []
    for part in _AND.split(text.strip()):
        t = _clock(phrase, part)
        if t not in times:
            times.append(t)
    return sorted(times)


def _times(phrase: str, text: str) -> str:
    """The minute and hour fields of a cron for ``9``, ``9 and 17``, ``9:00, 9:30``."""
    times = _clocks(phrase, text)
    hours = sorted({h for h, _ in times})
    minutes = sorted({m for _, m in times})
    if len(minutes) == 1:
        return f"{minutes[0]} {','.join(map(str, hours))}"
    if len(hours) == 1:
        return f"{','.join(map(str, minutes))} {hours[0]}"
    raise InvalidSchedule(
        f"{phrase!r} gives times that share neither their minute nor their hour (one cron "
        "cannot hold them): add one job per time, or say 'every day at 9:00 and 17:00'"
    )


def _minutes(phrase: str, text: str) -> str:
    """``:15`` -> ``15``; ``:00 and :30`` -> ``0,30``."""
    found: list[int] = []
    for part in _AND.split(text.strip()):
        match = re.fullmatch(r":([0-9]{2})", part)
        if match is None or int(match.group(1)) > 59:
            raise _refuse(phrase, "needs minutes past the hour, :00 to :59", "every hour at :15")
        if int(match.group(1)) not in found:
            found.append(int(match.group(1)))
    return ",".join(str(m) for m in sorted(found))


def _on(text: str) -> Meaning | None:
    monthly = _MONTHLY.fullmatch(text)
    if monthly is not None:
        days = _month_days(text, monthly.group(1))
        return Meaning("cron", f"{_times(text, monthly.group(2))} {days} * *")
    if text.endswith("month") or " month " in text:
        raise _refuse(text, "needs a day and a time", "on the 1st day of every month at 9:00")
    return _dated(text)


def _month_days(phrase: str, text: str) -> str:
    if text == "last":
        return "L"
    days: list[int] = []
    for part in _AND.split(text):
        match = _ORDINAL.fullmatch(part)
        day = int(match.group(1)) if match else 0
        if match is None or not 1 <= day <= 31 or match.group(2) != _suffix(day):
            raise _refuse(
                phrase,
                "names days of the month as 1st, 2nd, 3rd ... 31st, or the last day (alone)",
                "on the 1st and 15th of every month at 9:00",
                "on the last day of every month at 17:00",
            )
        if day not in days:
            days.append(day)
    return ",".join(str(d) for d in sorted(days))


def _suffix(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _in(text: str) -> Meaning | None:
    counted = _counted(text.removeprefix("in").strip())
    return None if counted is None else Meaning("in", counted)


def _relative(text: str) -> Meaning | None:
    match = _RELATIVE.fullmatch(text)
    if match is None:
        return None
    times = _clocks(text, match.group(2))
    if len(times) > 1:
        raise _refuse(text, "gives several times for one run", f"{match.group(1)} at 9:00")
    hour, minute = times[0]
    return Meaning("at", f"{match.group(1)} {hour:02d}:{minute:02d}")


def _dated(text: str) -> Meaning | None:
    match = _DATED.fullmatch(text)
    if match is None:
        return None
    day, when = match.group(1), match.group(2)
    try:
        date.fromisoformat(day)
    except ValueError:
        raise InvalidSchedule(f"{text!r}: there is no date {day}") from None
    if when is None:
        raise _refuse(text, "needs a time", f"at {day} 09:00")
    if _TIME.fullmatch(when) or when in _NAMED:
        hour, minute = _clock(text, when)
        return Meaning("at", f"{day} {hour:02d}:{minute:02d}")
    return Meaning("at", f"{day}T{when.upper()}")  # ISO 8601 with seconds or an offset


def _at(text: str) -> Meaning | None:
    dated = _dated(text)
    if dated is not None:
        return dated
    rest = text.removeprefix("at").strip()
    if not all(_TIME.fullmatch(p) or p in _NAMED for p in _AND.split(rest)):
        return None
    _clocks(text, rest)  # says what is wrong with a time out of range ("at 25:00")
    raise _refuse(
        text, "could mean today, tomorrow or every day", f"today {text}", f"every day {text}"
    )


_READERS = {
    "every": _every,
    "on": _on,
    "in": _in,
    "today": _relative,
    "tomorrow": _relative,
    "at": _at,
}
