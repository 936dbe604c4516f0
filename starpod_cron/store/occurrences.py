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
