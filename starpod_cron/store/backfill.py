"""What a backfill decides, dialect-free: the occurrences of a job's schedule in a range that
have no recorded run, and the runs that claim them (``trigger = "backfill"``).

An occurrence has a recorded run when any of its runs (not a manual one) ended other than
``skipped`` or ``interrupted``, or is still running; one with a retry pending is the
scheduler's. A backfill run takes the next attempt number of its occurrence, so the unique
index ``runs_occurrence`` (job, occurrence, attempt) judges every race: two backfills of one
occurrence, or a backfill and the scheduler's catch-up of it, insert the same key and the
second is dropped (``ON CONFLICT DO NOTHING``), as two claimers of one fire are. Pure: no I/O,
no clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import InvalidInput
from ..models import RunStatus, RunTrigger
from ..schedules import Schedule
from ..timeutil import from_ms, to_ms
from .batches import ClaimBatch, claim_of, start_rows
from .driver import Row
from .occurrences import count_between, next_ms
from .planning import start_run
from .records import JobRecord

NOT_A_RUN = frozenset({RunStatus.SKIPPED.value, RunStatus.INTERRUPTED.value})
"""Statuses that leave an occurrence without a recorded run: backfill runs it. (A ``held``
run is not one: its job runs that occurrence again itself when the hold ends.)"""


WINDOW = 64
"""Fires looked at per step of a claim, which wants only the oldest few without a run."""


def fires_from(schedule: Schedule, tz: str, first: int, last: int, count: int) -> list[int]:
    """The first ``count`` (at most) fires of ``schedule`` in [first, last] (epoch ms)."""
    fires: list[int] = []
    at = next_ms(schedule, tz, first - 1)
    while at is not None and at <= last and len(fires) < count:
        fires.append(at)
        at = next_ms(schedule, tz, at)
    return fires


def fires_in(
    schedule: Schedule, tz: str, first: int, last: int, limit: int, flag: str = "--max"
) -> list[int]:
    """The fires of ``schedule`` in [first, last] (epoch ms), oldest first; InvalidInput when
    there are more than ``limit`` (the message counts them and says how to go on)."""
    fires = fires_from(schedule, tz, first, last, limit + 1)
    if len(fires) > limit:
        raise InvalidInput(over_limit(schedule, tz, fires[0], last, limit, flag))
    return fires


def over_limit(schedule: Schedule, tz: str, first: int, last: int, limit: int, flag: str) -> str:
    latest = schedule.latest_run(from_ms(last), tz)
    end = to_ms(latest) if latest is not None else last
    count, estimated = count_between(schedule, tz, first, end)
    count = max(count, limit + 1)
    many = f"about {count:,}" if estimated else f"{count:,}"
    return (
        f"the range holds {many} occurrences; the limit is {limit:,}: narrow --from/--to or "
        f"pass {flag} {count}"
    )


@dataclass(frozen=True, slots=True)
class Unrun:
    """An occurrence without a recorded run, and the attempt number its backfill run takes."""

    at: int
    attempt: int


def unrun(job: JobRecord, fires: Sequence[int], runs: Iterable[Row]) -> list[Unrun]:
    """The ``fires`` with no recorded run, given the job's runs there (rows of
    ``scheduled_for, attempt, status``), oldest first."""
    taken: set[int] = set()
    attempts: dict[int, int] = {}
    for row in runs:
        at, attempt, status = int(row[0]), int(row[1]), row[2]
        attempts[at] = max(attempts.get(at, 0), attempt)
        if status not in NOT_A_RUN:
            taken.add(at)
    if job.retry_at is not None and job.retry_scheduled_for is not None:
        taken.add(job.retry_scheduled_for)  # the scheduler retries it
    return [Unrun(at, attempts.get(at, 0) + 1) for at in fires if at not in taken]


def claim_unrun(batch: ClaimBatch, job: JobRecord, todo: Sequence[Unrun], take: int) -> None:
    """Start backfill runs of the oldest ``todo`` in ``batch`` (leased to its owner): at most
    ``take``, and no more than the job's ``max_instances`` allows beside its runs in flight."""
    room = min(take, max(0, job.max_instances - job.running_count))
    batch.jobs.append(job)
    for occurrence in todo[:room]:
        run = start_run(
            job,
            RunTrigger.BACKFILL,
            occurrence.at,
            occurrence.attempt,
            batch.now,
            batch.owner,
            batch.lease_until,
        )
        batch.runs.append(run)
        batch.claims.append(claim_of(job, run, batch.lease_until))
        if batch.start_planner is not None:
            batch.deliveries.extend(start_rows(batch.start_planner, job, run, batch.now))
