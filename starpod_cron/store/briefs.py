"""What a list of many jobs shows (``starpod-cron jobs list``): a few columns of each job row,
read without building the whole :class:`~starpod_cron.models.CronJob` (100,000 jobs list in
a fraction of the time)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from ..runstatus import RunStatus
from ..schedules import Schedule
from ..timeutil import opt_from_ms

if TYPE_CHECKING:
    from .driver import Row, Script, Tx

BRIEF_COLUMNS = (
    "id", "name", "description", "schedule_kind", "schedule_expr", "schedule_anchor_ms",
    "timezone", "enabled", "paused_reason", "next_run_at", "fire_offset_ms", "last_status",
    "user_id",
)  # fmt: skip
"""The job columns a brief reads, in the order of the ``list_job_briefs`` query."""
_STATUSES = {s.value: s for s in RunStatus}


class JobBrief(NamedTuple):
    """A job as a listing shows it; each attribute means what :class:`CronJob`'s does."""

    id: str
    name: str
    description: str | None
    schedule: Schedule
    timezone: str
    enabled: bool
    paused_reason: str | None
    next_fire_at: datetime | None
    last_status: RunStatus | None
    user_id: str | None


def brief_script(user_id: str | None = None) -> Script[list[Row]]:
    """The read of the rows of :data:`BRIEF_COLUMNS` of every job (``user_id``: of that
    owner's), in name order: ``CronStore.list_job_briefs`` runs it, and so does a listing
    that opened no store object (``jobs list``, through ``opener.read_once``)."""

    async def script(tx: Tx) -> list[Row]:
        if user_id is None:
            return await tx.rows("list_job_briefs")
        return await tx.rows("list_job_briefs_for_user", {"user_id": user_id})

    return script


def brief_of(row: Row) -> JobBrief:
    """The brief of a row of :data:`BRIEF_COLUMNS`."""
    (job_id, name, description, kind, expr, anchor, tz, enabled, paused, next_ms, offset,
     status, user_id) = row  # fmt: skip
    return JobBrief(
        job_id,
        name,
        description,
        Schedule.from_storage(kind, expr, anchor),
        tz,
        bool(enabled),
        paused,
        opt_from_ms(None if next_ms is None else next_ms + (offset or 0)),
        None if status is None else _STATUSES[status],
        user_id,
    )
