"""Snooze, pure: move a job's next fire once, later by a duration, leaving its schedule alone.

The moved fire is claimed like any other; the claim then takes the schedule's own next fire
after it (``planning.plan_claim``), so the occurrence after the snoozed one is the
schedule's. Fires of the schedule the snooze jumps over are not run and not recorded as
missed: they were snoozed.
"""

from __future__ import annotations

from ..errors import NothingToSnooze
from ..timeutil import from_ms
from . import planning
from .records import JobRecord

MIN_SNOOZE_MS = 1000
"""A snooze shorter than a second would not move anything a person could see."""


def snooze(job: JobRecord, by_ms: int, now: int) -> int:
    """Move ``job``'s next fire ``by_ms`` later (its fire time, not from now); returns the new
    next fire. A pending retry keeps its time. NothingToSnooze when the job is paused, has
    no next fire, or the snooze would take it past its ``end_at``; ``job`` is then unchanged."""
    if by_ms < MIN_SNOOZE_MS:
        raise NothingToSnooze(f"snooze '{job.name}' for at least a second (e.g. 1h)")
    if not job.enabled:
        why = f" ({job.paused_reason})" if job.paused_reason else ""
        raise NothingToSnooze(f"'{job.name}' is paused{why}: resume it instead of snoozing")
    if job.next_run_at is None:
        raise NothingToSnooze(f"'{job.name}' has no next fire to snooze")
    moved = job.next_run_at + by_ms
    if job.end_at is not None and moved > job.end_at:
        raise NothingToSnooze(
            f"snoozing '{job.name}' would move its next fire to {from_ms(moved).isoformat()}, "
            f"past its end_at ({from_ms(job.end_at).isoformat()}); snooze it for less"
        )
    planning.set_next(job, moved)
    job.updated_at = max(job.updated_at, now)
    return moved
