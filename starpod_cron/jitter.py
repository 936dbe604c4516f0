"""Jitter: each occurrence of a job fires a fixed offset after its time, so thousands of
"every morning at 9" jobs do not all hit the model provider in the same second.

The offset is derived from the job's id and the occurrence's time alone (a keyed hash, not a
random draw), so every scheduler process computes the same instant, and a run's
``scheduled_for`` (its exactly-once key) stays the occurrence's own time. An offset is always
in ``[0, jitter)`` and short of the job's following occurrence, so jitter never reorders or
merges occurrences, across a DST change as anywhere else.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from .schedules import Interval, Schedule
from .timeutil import from_ms, to_ms

MAX_JITTER_SECS = 86_400


def following_ms(schedule: Schedule, tz: str, nominal_ms: int) -> int | None:
    """The occurrence after the one at ``nominal_ms`` (None if there is none)."""
    if isinstance(schedule, Interval):
        return schedule.next_ms(nominal_ms)
    nxt = schedule.next_run(from_ms(nominal_ms), tz)
    return None if nxt is None else to_ms(nxt)


def offset_ms(job_id: str, nominal_ms: int, jitter_ms: int, following: int | None) -> int:
    """The offset of the occurrence at ``nominal_ms``: in ``[0, jitter_ms)`` and, when the
    job fires again at ``following``, less than the gap to it."""
    span = jitter_ms if following is None else min(jitter_ms, following - nominal_ms)
    if span <= 1:
        return 0
    digest = hashlib.blake2b(f"{job_id}@{nominal_ms}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % span


def fire_offset_ms(
    job_id: str, schedule: Schedule, tz: str, nominal_ms: int, jitter_ms: int
) -> int:
    """The offset of one occurrence of a job (0 without jitter)."""
    if jitter_ms <= 0:
        return 0
    return offset_ms(job_id, nominal_ms, jitter_ms, following_ms(schedule, tz, nominal_ms))


def fire_time(
    job_id: str, schedule: Schedule, tz: str, nominal: datetime, jitter_secs: float
) -> datetime:
    """When the occurrence at ``nominal`` actually fires."""
    jitter_ms = round(jitter_secs * 1000)
    if jitter_ms <= 0:
        return nominal
    offset = fire_offset_ms(job_id, schedule, tz, to_ms(nominal), jitter_ms)
    return nominal + timedelta(milliseconds=offset)
