"""Occurrence maths of a stored schedule in epoch milliseconds, for the planners: the next
fire after an instant, and how many fires fall between two (for a skipped run's message)."""

from __future__ import annotations

import itertools

from ..schedules import Cron, Interval, Schedule
from ..timeutil import from_ms, to_ms

MISSED_STEPS = 20
"""Missed cron fires are counted one by one up to this many, then estimated from their spacing
("about 1,800"): the count is only for the message of a skipped run and must stay cheap."""


def count_between(sched: Schedule, tz: str, first: int, last: int) -> tuple[int, bool]:
    """Occurrences in [first, last] (both fires) and whether the count is an estimate.
    Intervals are counted exactly; cron fires are stepped at most MISSED_STEPS times and the
    rest estimated from the average spacing of those."""
    if first == last:
        return 1, False
    if isinstance(sched, Interval):
        return (last - first) // sched.every_ms + 1, False
    count, t = 1, first
    fires = sched.fires_after(from_ms(first), tz) if isinstance(sched, Cron) else iter(())
    for fire in itertools.islice(fires, MISSED_STEPS - 1):
        ms = to_ms(fire)
        if ms > last:
            return count, False
        t = ms
        count += 1
    if count < MISSED_STEPS:
        return count, False
    spacing = (t - first) / (count - 1)
    return count + round((last - t) / spacing), True


def next_ms(sched: Schedule, tz: str, after: int) -> int | None:
    if isinstance(sched, Interval):
        return sched.next_ms(after)
    nxt = sched.next_run(from_ms(after), tz)
    return None if nxt is None else to_ms(nxt)


def first_in_window(
    sched: Schedule, tz: str, after: int, start_at: int | None, end_at: int | None
) -> int | None:
    """The first fire after ``after`` that falls within ``[start_at, end_at]`` (either may be
    None: unbounded), or None when none does. An interval keeps its grid: before ``start_at``
    its first fire is the first grid point at or after it. The one rule every next fire of a
    job with a start or an end goes through (planning, repair, the views' next fires)."""
    if start_at is not None and after < start_at:
        after = start_at - 1  # fires strictly after this: at or after start_at
    return in_window(next_ms(sched, tz, after), end_at)


def in_window(fire: int | None, end_at: int | None) -> int | None:
    """``fire``, or None when it falls after ``end_at`` (the job has no fire left)."""
    if fire is None or (end_at is not None and fire > end_at):
        return None
    return fire
