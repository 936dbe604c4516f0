"""Jobs (create, read, change, delete) and per-user preferences: one script per operation."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from ...errors import DuplicateJobName, JobNotFound, RunNotFound
from ...models import CronJob, JobUpdate, MisfirePolicy, SessionMode
from ...schedules import Schedule
from ...timeutil import check_zone, from_ms
from .. import limits, planning
from ..batches import (
    MAX_ID,
    check_owner_limit,
    duplicate_name,
    limited_owners,
    new_records,
)
from ..briefs import JobBrief, brief_of, brief_script
from ..core import StoreCore
from ..driver import Row, Tx
from ..records import (
    JOB_ADD_COLUMNS,
    JOB_COLUMNS,
    JOB_STATE_COLUMNS,
    JobRecord,
    RunRecord,
    added_rows,
)
from ..retry import plan_retry
from ..snooze import snooze
from ..types import JobSpec, Topic

_STATE_KEYS = (*JOB_STATE_COLUMNS, "id")
INSERT_CHUNK = 2000
"""Jobs inserted per statement by ``add_jobs``: the rows of a batch of 100,000 jobs built at
once were a third of the memory a burst of them peaked at."""


async def lock_job(tx: Tx, job_id: str) -> JobRecord:
    """The job ``job_id``, locked to commit where the dialect locks rows; JobNotFound."""
    row = await tx.one("lock_job", {"id": job_id})
    if row is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return JobRecord.from_row(row)


async def lock_jobs(tx: Tx, ids: Collection[str]) -> dict[str, JobRecord]:
    """The jobs ``ids`` by id, locked in id order to commit where the dialect locks rows."""
    if not ids:
        return {}
    rows = await tx.rows("lock_jobs", {"ids": sorted(ids)})
    return {rec.id: rec for rec in map(JobRecord.from_row, rows)}


async def save_state(tx: Tx, job: JobRecord) -> None:
    """Write ``job``'s changeable columns back (the row locked by :func:`lock_job`)."""
    await tx.execute("update_job_state", dict(zip(_STATE_KEYS, job.state_params(), strict=True)))


class JobOps(StoreCore):
    async def add_job(
        self,
        name: str,
        prompt: str,
        schedule: Schedule,
        delete_after_run: bool = False,
        timezone: str | None = None,
    ) -> str:
        return await self.add_job_full(name, prompt, schedule, delete_after_run, timezone)

    async def add_job_full(
        self,
        name: str,
        prompt: str,
        schedule: Schedule,
        delete_after_run: bool = False,
        timezone: str | None = None,
        max_retries: int | None = None,
        timeout_secs: float | None = None,
        session_mode: SessionMode = SessionMode.ISOLATED,
        user_id: str | None = None,
        misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE,
        origin: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> str:
        spec = JobSpec(
            name=name,
            prompt=prompt,
            schedule=schedule,
            delete_after_run=delete_after_run,
            timezone=timezone,
            max_retries=max_retries,
            timeout_secs=timeout_secs,
            session_mode=session_mode,
            user_id=user_id,
            misfire_policy=misfire_policy,
            origin=origin,
            description=description,
        )
        (job_id,) = await self.add_jobs([spec])
        return job_id

    async def add_jobs(
        self, specs: Sequence[JobSpec], *, max_jobs_per_owner: int | None = None
    ) -> list[str]:
        records = new_records(specs, self.clock.now_ms(), self.settings)
        if not records:
            return []
        owners = limited_owners(records, max_jobs_per_owner)

        async def script(tx: Tx) -> None:
            if owners:  # held to commit: another add for these owners waits, then counts
                await tx.execute("lock_owners", {"owners": owners})
                have = await tx.rows("owner_job_counts", {"owners": owners})
                check_owner_limit(records, {r[0]: r[1] for r in have}, max_jobs_per_owner)
            for start in range(0, len(records), INSERT_CHUNK):  # a chunk's rows at a time:
                chunk = records[start : start + INSERT_CHUNK]
                rows = added_rows(chunk)
                if rows is not None:  # plain jobs: 28 columns each, the table fills the rest
                    added = await tx.execute_many("insert_new_jobs", rows, JOB_ADD_COLUMNS)
                else:
                    rows = [r.to_row() for r in chunk]
                    added = await tx.execute_many("insert_jobs", rows, JOB_COLUMNS)
                # the unique (owner, name) index refuses a taken name: no lookup before insert
                if added < len(rows):
                    raise DuplicateJobName("a job with one of these names was just added")
            tx.changed(Topic.JOBS)

        try:
            await self._write(script)
        except DuplicateJobName:  # rolled back, nothing written: say which name is taken
            taken = await self._taken_name(records)
            if taken is None:  # removed again meanwhile
                raise
            raise duplicate_name(taken[1], taken[0]) from None
        return [r.id for r in records]

    async def _taken_name(self, records: Sequence[JobRecord]) -> Row | None:
        """The (owner, name) of a job already holding one of ``records``' names, if any."""
        names = {
            "owners": [r.user_id or "" for r in records],
            "names": [r.name for r in records],
        }

        async def script(tx: Tx) -> Row | None:
            return await tx.one("names_taken", names)

        return await self._read(script)

    async def list_jobs(self) -> list[CronJob]:
        return await self._jobs("list_jobs")

    async def list_jobs_for_user(self, user_id: str) -> list[CronJob]:
        return await self._jobs("list_jobs_for_user", {"user_id": user_id})

    async def list_job_briefs(self, user_id: str | None = None) -> list[JobBrief]:
        return [brief_of(row) for row in await self._read(brief_script(user_id))]

    async def get_job(self, job_id: str) -> CronJob | None:
        jobs = await self._jobs("get_job", {"id": job_id})
        return jobs[0] if jobs else None

    async def get_job_by_name(self, name: str, user_id: str | None = None) -> CronJob | None:
        jobs = await self._jobs("get_job_by_name", {"name": name, "user_id": user_id})
        return jobs[0] if jobs else None

    async def find_jobs_by_name(self, name: str) -> list[CronJob]:
        return await self._jobs("find_jobs_by_name", {"name": name})

    async def update_job(self, job_id: str, update: JobUpdate) -> CronJob:
        async def script(tx: Tx) -> CronJob:
            job = await lock_job(tx, job_id)
            before = (job.user_id, job.name)
            planning.apply_update(job, update, self.clock.now_ms())
            limits.settle_update(job)  # saved disabled if it has made its runs or ended
            if (job.user_id, job.name) != before:
                params = {"name": job.name, "user_id": job.user_id}
                row = await tx.one("get_job_by_name", params)
                if row is not None and row[0] != job.id:
                    raise duplicate_name(job.name, job.user_id)
            await save_state(tx, job)
            tx.changed(Topic.JOBS)
            return job.to_public()

        return await self._write(script)

    async def updated_job(self, job_id: str, update: JobUpdate) -> CronJob:
        async def script(tx: Tx) -> CronJob:
            row = await tx.one("get_job", {"id": job_id})
            if row is None:
                raise JobNotFound(f"no job with id {job_id!r}")
            job = JobRecord.from_row(row)
            planning.apply_update(job, update, self.clock.now_ms())
            limits.settle_update(job)
            return job.to_public()

        return await self._read(script)

    async def enable_job(self, job_id: str) -> CronJob:
        return await self.update_job(job_id, JobUpdate(enabled=True))

    async def snooze_job(self, job_id: str, by_ms: int) -> CronJob:
        async def script(tx: Tx) -> CronJob:
            job = await lock_job(tx, job_id)
            snooze(job, by_ms, self.clock.now_ms())
            await save_state(tx, job)
            tx.changed(Topic.JOBS)
            return job.to_public()

        return await self._write(script)

    async def retry_run(self, run_id: str) -> tuple[CronJob, datetime, int]:
        async def script(tx: Tx) -> tuple[CronJob, datetime, int]:
            row = await tx.one("get_run", {"id": run_id})
            if row is None:
                raise RunNotFound(f"no run {run_id!r}")
            run = RunRecord.from_row(row)
            job = await lock_job(tx, run.job_id)
            key = {"job_id": run.job_id, "scheduled_for": run.scheduled_for}
            latest = await tx.value("latest_attempt", key)
            attempt = plan_retry(
                job, run, None if latest is None else int(latest), self.clock.now_ms()
            )
            await save_state(tx, job)
            tx.changed(Topic.JOBS)
            return job.to_public(), from_ms(run.scheduled_for), attempt

        return await self._write(script)

    async def disable_job(self, job_id: str) -> CronJob:
        return await self.update_job(job_id, JobUpdate(enabled=False))

    async def remove_job(self, job_id: str) -> None:
        async def script(tx: Tx) -> None:
            if await tx.execute("delete_job", {"id": job_id}) == 0:
                raise JobNotFound(f"no job with id {job_id!r}")
            await tx.execute("delete_job_runs", {"job_id": job_id})

        await self._write(script)

    async def remove_by_name(self, name: str, user_id: str | None = None) -> None:
        job = await self.get_job_by_name(name, user_id)
        if job is None:
            raise JobNotFound(f"no job named {name!r}")
        await self.remove_job(job.id)

    async def get_due_jobs(self) -> list[CronJob]:
        return await self._jobs("select_due", {"until": self.clock.now_ms(), "limit": MAX_ID})

    async def next_due_at(self) -> datetime | None:
        value = await self._value("next_due_at")
        return None if value is None else from_ms(int(value))

    # ----------------------------------------------------------- user preferences
    async def get_user_timezone(self, user_id: str) -> str | None:
        value = await self._value("get_user_timezone", {"user_id": user_id})
        return None if value is None else str(value)

    async def set_user_timezone(self, user_id: str, timezone: str) -> None:
        check_zone(timezone)
        params = {"user_id": user_id, "timezone": timezone, "now": self.clock.now_ms()}

        async def script(tx: Tx) -> None:
            await tx.execute("set_user_timezone", params)

        await self._write(script)
