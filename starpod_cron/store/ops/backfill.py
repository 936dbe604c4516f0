"""Backfill (past occurrences without a recorded run, each run once) and the memory a manual
run is given: transaction scripts over :mod:`..backfill` and :mod:`..memory` (pure)."""

from __future__ import annotations

from datetime import datetime

from ...errors import InvalidInput, JobNotFound
from ...timeutil import from_ms, opt_from_ms, to_ms
from ..backfill import WINDOW, Unrun, claim_unrun, fires_from, fires_in, unrun
from ..batches import ClaimBatch, Note, write_notes
from ..core import StoreCore
from ..driver import Tx
from ..memory import given
from ..records import RUN_COLUMNS, JobRecord
from ..types import Claim
from .jobs import lock_job
from .scheduling import insert_deliveries, update_jobs

MAX_TAKE = 10_000


class BackfillOps(StoreCore):
    async def backfill_occurrences(
        self, job_id: str, start: datetime, end: datetime, *, limit: int | None = None
    ) -> list[datetime]:
        limit = self.settings.backfill_limit if limit is None else limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1_000_000:
            raise InvalidInput(f"the backfill limit must be 1 to 1,000,000, not {limit!r}")
        first, last = _range(start, end, self.clock.now_ms())

        async def script(tx: Tx) -> list[datetime]:
            row = await tx.one("get_job", {"id": job_id})
            if row is None:
                raise JobNotFound(f"no job with id {job_id!r}")
            job = JobRecord.from_row(row)
            fires = fires_in(job.schedule, job.timezone, first, last, limit)
            return [from_ms(u.at) for u in await _unrun(tx, job, fires)]

        return await self._read(script)

    async def claim_backfill(
        self,
        job_id: str,
        start: datetime,
        end: datetime,
        *,
        owner: str,
        lease_secs: float,
        take: int = 1,
    ) -> tuple[list[Claim], bool]:
        if isinstance(take, bool) or not isinstance(take, int) or not 1 <= take <= MAX_TAKE:
            raise InvalidInput(f"take must be 1 to {MAX_TAKE:,}, not {take!r}")
        starts = self._start_planner

        async def script(tx: Tx) -> tuple[list[Claim], bool, list[Note]]:
            now = self.clock.now_ms()
            first, last = _range(start, end, now)
            job = await lock_job(tx, job_id)
            todo = await _oldest_unrun(tx, job, first, last, take + 1)
            batch = ClaimBatch(owner, now, now + round(lease_secs * 1000), 0, start_planner=starts)
            claim_unrun(batch, job, todo, take)
            rows = [r.to_row() for r in batch.runs]
            if rows and await tx.execute_many("insert_runs", rows, RUN_COLUMNS) < len(rows):
                ids = [r.id for r in batch.runs]
                present = {str(r[0]) for r in await tx.rows("runs_present", {"ids": ids})}
                batch.drop(set(ids) - present)
            if rows:
                await update_jobs(tx, [job])
                await insert_deliveries(tx, batch.deliveries)
            return batch.claims, len(todo) > len(batch.claims), batch.notes

        claims, more, notes = await self._write(script)
        write_notes(notes)
        return claims, more

    async def job_memory(self, job_id: str) -> tuple[str | None, datetime | None]:
        async def script(tx: Tx) -> tuple[str | None, datetime | None]:
            row = await tx.one("job_memory", {"id": job_id})
            if row is None:
                return None, None
            text, at = given(row[0], row[1], row[2])
            return text, opt_from_ms(at)

        return await self._read(script)


async def _unrun(tx: Tx, job: JobRecord, fires: list[int]) -> list[Unrun]:
    if not fires:
        return []
    params = {"job_id": job.id, "first": fires[0], "last": fires[-1]}
    return unrun(job, fires, await tx.rows("occurrence_runs", params))


async def _oldest_unrun(tx: Tx, job: JobRecord, first: int, last: int, want: int) -> list[Unrun]:
    """The oldest ``want`` (at most) fires in [first, last] without a recorded run, read a
    window of fires at a time."""
    found: list[Unrun] = []
    while len(found) < want:
        fires = fires_from(job.schedule, job.timezone, first, last, WINDOW)
        if not fires:
            break
        found += await _unrun(tx, job, fires)
        first = fires[-1] + 1
    return found[:want]


def _range(start: datetime, end: datetime, now: int) -> tuple[int, int]:
    """[start, end] in epoch ms, ``end`` no later than now (later fires are the scheduler's);
    InvalidInput for a range that ends before it starts or lies wholly in the future."""
    first, last = to_ms(start), to_ms(end)
    if last < first:
        raise InvalidInput(
            f"--to ({end.isoformat()}) is before --from ({start.isoformat()}): give the "
            "oldest time first"
        )
    if first > now:
        raise InvalidInput(
            f"--from ({start.isoformat()}) is in the future: backfill runs past occurrences "
            "only (the scheduler runs the coming ones)"
        )
    return first, min(last, now)
