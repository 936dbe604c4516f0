"""The scheduler's atomic primitives: claim, renew, complete, recover; manual runs.

Each is one transaction script; what it decides comes from :mod:`..batches` and
:mod:`..planning` (pure), so a script only reads rows, hands them over, and writes back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence

from ... import owner as owners
from ...errors import RunNotFound, RunNotRunning
from ...models import RunStatus
from .. import limits
from ..batches import (
    DELIVERY_INSERT_COLUMNS,
    ClaimBatch,
    FinishBatch,
    Note,
    check_completions,
    interrupt_expired,
    manual_run,
    start_rows,
    write_notes,
)
from ..budgets import SpendBook
from ..driver import Tx
from ..records import (
    JOB_RUNTIME_COLUMNS,
    RUN_COLUMNS,
    RUN_RESULT_COLUMNS,
    RUN_START_COLUMNS,
    JobRecord,
    RunRecord,
    started_rows,
)
from ..types import (
    Claim,
    ClaimRequest,
    Claims,
    Completion,
    DeliveryPlanner,
    RecoveryReport,
    RunFinished,
    Topic,
)
from .history import HistoryOps
from .jobs import lock_job, lock_jobs
from .spend import add_spend, budget_check, owner_zones, tell_budgets

_RUNTIME = (*JOB_RUNTIME_COLUMNS, "id")
Claimed = tuple[list[Claim], list[Note], int | None, list[RunRecord]]
"""What a claiming script decides: the claims, their log lines, the next due time (ms), and
the runs it wrote."""
_RESULT = (*RUN_RESULT_COLUMNS, "id")


async def update_jobs(tx: Tx, jobs: Collection[JobRecord]) -> None:
    await tx.execute_many("update_jobs_runtime", [j.runtime_params() for j in jobs], _RUNTIME)


async def insert_deliveries(tx: Tx, rows: Sequence[Sequence[object]]) -> None:
    """Insert deliveries as the last writes of a transaction: where several nodes write, their
    ids are taken under a lock held to commit (ids become visible in order), so keep what
    follows short."""
    if rows:
        await tx.execute("lock_delivery_ids")
        await tx.execute_many("insert_deliveries", rows, DELIVERY_INSERT_COLUMNS)
        tx.changed(Topic.DELIVERIES)


async def write_finished(
    tx: Tx,
    runs: Sequence[RunRecord],
    jobs: Collection[JobRecord],
    deleted: Collection[str],
    keep: int,
) -> None:
    """Record finished runs and their jobs' new state; delete the jobs ``deleted``; prune the
    history of jobs holding more than ``keep`` runs."""
    await tx.execute_many("finish_runs", [r.result_params() for r in runs], _RESULT)
    await update_jobs(tx, jobs)
    if deleted:
        await tx.execute("delete_jobs", {"ids": sorted(deleted)})
    full = [j.id for j in jobs if j.run_count > keep]
    if full:
        await tx.execute("prune_job_runs", {"job_ids": full, "keep": keep})


class SchedulerOps(HistoryOps):
    async def record_run_start(
        self, job_id: str, *, lease_secs: float | None = None, owner: str | None = None
    ) -> str:
        starts = self._start_planner

        async def script(tx: Tx) -> str:
            job = await lock_job(tx, job_id)
            now = self.clock.now_ms()
            run = manual_run(job, now, lease_secs, owner)
            await tx.execute_many("insert_runs", [run.to_row()], RUN_COLUMNS)
            await update_jobs(tx, [job])
            await insert_deliveries(tx, [] if starts is None else start_rows(starts, job, run, now))
            return run.id

        return await self._write(script)

    async def record_run_complete(
        self,
        run_id: str,
        status: RunStatus,
        summary: str | None = None,
        *,
        error: str | None = None,
        session_id: str | None = None,
        permanent: bool = False,
    ) -> None:
        completion = Completion(
            run_id,
            status,
            summary=summary,
            error=error,
            session_id=session_id,
            permanent=permanent,
        )
        (done,) = await self.complete_runs([completion], owner=None)
        if not done:
            if await self.get_run(run_id) is None:
                raise RunNotFound(f"no run with id {run_id!r}")
            raise RunNotRunning(f"run {run_id} is not running (already finished or recovered)")

    async def complete_runs(
        self,
        completions: Sequence[Completion],
        *,
        owner: str | None,
        claim: ClaimRequest | None = None,
    ) -> list[bool]:
        check_completions(completions)
        if not completions and claim is None:
            return []
        planner = self._planner
        tell = planner is not None or bool(self._finished_listeners)
        claiming = None if claim is None else self._claiming(claim.owner, claim.lease_secs)

        async def script(tx: Tx) -> tuple[list[bool], list[RunFinished], Claimed | None]:
            answers, events = await self._finish_in(tx, completions, owner, planner, tell)
            if claiming is None or claim is None or claim.limit <= 0:
                return answers, events, None
            return answers, events, await claiming(tx, claim.limit, claim.ahead_secs)

        answers, events, claimed = await self._write(script)
        self._held.forget(c.run_id for c in completions)
        self._finished(events)
        if claim is not None and claimed is not None:
            claim.claimed = self._claimed(claimed)
        return answers

    async def _finish_in(
        self,
        tx: Tx,
        completions: Sequence[Completion],
        owner: str | None,
        planner: DeliveryPlanner | None,
        tell: bool,
    ) -> tuple[list[bool], list[RunFinished]]:
        """The completing part of ``complete_runs``' transaction."""
        if not completions:
            return [], []
        ids = sorted({c.run_id for c in completions})
        if self._held.all_kept(ids):  # claimed here: only status and lease are read back
            held = self._held.records(await tx.rows("lock_held_runs", {"ids": ids}))
        else:
            held = [RunRecord.from_row(r) for r in await tx.rows("lock_runs", {"ids": ids})]
        runs = {r.id: r for r in held}
        jobs = await lock_jobs(tx, {r.job_id for r in runs.values()})
        now = self.clock.now_ms()
        batch = FinishBatch(runs, jobs, owner, now, self.settings, planner, tell)
        zones = await owner_zones(tx, [j.user_id for j in jobs.values()])
        batch.spend = SpendBook(self.settings, zones)
        for done in completions:
            await tx.pause()  # plan in slices: the event loop stays responsive
            batch.add(done)
        keep = self.settings.runs_keep_per_job
        await write_finished(tx, batch.finished, batch.touched.values(), batch.deleted, keep)
        await add_spend(tx, batch.spend)
        await insert_deliveries(tx, batch.deliveries)
        if batch.finished:  # jobs released (and retries scheduled): due again
            tx.changed(Topic.JOBS)
        return batch.answers, batch.events

    async def claim_due(
        self, owner: str, limit: int, lease_secs: float, *, ahead_secs: float = 0
    ) -> Claims:
        if limit <= 0:
            return Claims()
        claiming = self._claiming(owner, lease_secs)

        async def script(tx: Tx) -> Claimed:
            return await claiming(tx, limit, ahead_secs)

        return self._claimed(await self._write(script))

    def _claiming(
        self, owner: str, lease_secs: float
    ) -> Callable[[Tx, int, float], Awaitable[Claimed]]:
        """The claiming part of a transaction (``claim_due``, or ``complete_runs`` with a
        claim): up to ``limit`` due occurrences, then the earliest due time left."""
        grace = round(self.settings.misfire_grace_secs * 1000)
        queue_limit, starts, planner = self.settings.queue_limit, self._start_planner, self._planner
        settings = self.settings

        async def claiming(tx: Tx, limit: int, ahead_secs: float) -> Claimed:
            now = self.clock.now_ms()
            ahead = max(0, round(ahead_secs * 1000))
            lease_until = now + round(lease_secs * 1000)
            rows = await tx.rows("claim_due_jobs", {"until": now + ahead, "limit": limit})
            batch = ClaimBatch(owner, now, lease_until, grace, queue_limit, starts, planner)
            jobs = [JobRecord.from_row(row) for row in rows]
            batch.budgets = await budget_check(tx, jobs, settings, now)
            for job in jobs:
                await tx.pause()  # plan in slices: the event loop stays responsive
                batch.add(job)
            batch.deliveries += await tell_budgets(tx, batch.budgets, now, planner)
            started = started_rows(batch.runs)
            if started is not None:  # only starts (a burst): 11 columns a run, not 25
                inserted = await tx.execute_many("insert_started_runs", started, RUN_START_COLUMNS)
            else:
                whole = [r.to_row() for r in batch.runs]
                inserted = await tx.execute_many("insert_runs", whole, RUN_COLUMNS)
            if inserted < len(batch.runs):
                ids = [r.id for r in batch.runs]
                present = {str(r[0]) for r in await tx.rows("runs_present", {"ids": ids})}
                batch.drop(set(ids) - present)
            await update_jobs(tx, batch.jobs)
            await insert_deliveries(tx, batch.deliveries)
            due = await tx.value("next_due_at")
            return batch.claims, batch.notes, None if due is None else int(due), batch.runs

        return claiming

    def _claimed(self, claimed: Claimed) -> Claims:
        """After the commit: the runs held, the claims' log lines, and the answer."""
        claims, notes, due, runs = claimed
        self._held.keep(runs)
        write_notes(notes)
        return Claims(claims, due)

    async def skip_if_spent(self, run_id: str, owner: str) -> str | None:
        """At the start of a run claimed ahead under a budget: if a budget of its job was
        spent meanwhile, record it ``skipped`` with the reason (and the owner's notice, once
        per period) and return the reason; else None (start it)."""
        planner = self._planner

        async def script(tx: Tx) -> str | None:
            runs = [RunRecord.from_row(r) for r in await tx.rows("lock_runs", {"ids": [run_id]})]
            if not runs or runs[0].status != RunStatus.RUNNING or runs[0].lease_owner != owner:
                return None
            run = runs[0]
            job = (await lock_jobs(tx, [run.job_id])).get(run.job_id)
            if job is None:
                return None
            now = self.clock.now_ms()
            check = await budget_check(tx, [job], self.settings, now)
            if check is None or check.settle_claim(job, run, job.last_run_at) is None:
                return None
            told = await tell_budgets(tx, check, now, planner)  # sets the run's notice
            await tx.execute_many("finish_runs", [run.result_params()], _RESULT)
            await update_jobs(tx, [job])
            await insert_deliveries(tx, told)
            tx.changed(Topic.JOBS)
            return run.error

        why = await self._write(script)
        if why is not None:
            self._held.forget([run_id])
        return why

    async def renew_leases(
        self, owner: str, lease_secs: float, run_ids: Collection[str] | None = None
    ) -> set[str]:
        if run_ids is not None and not run_ids:
            return set()

        async def script(tx: Tx) -> set[str]:
            now = self.clock.now_ms()
            params = {
                "until": now + round(lease_secs * 1000),
                "now": now,
                "owner": owner,
                "all": run_ids is None,
                "ids": list(run_ids or ()),
            }
            return {str(row[0]) for row in await tx.rows("renew_leases", params)}

        held = await self._write(script)
        if run_ids is not None:
            self._held.forget(set(run_ids) - held)  # lost: never completed through here
        return held

    async def recover(self, *, held: Collection[str] = (), repair: bool = True) -> RecoveryReport:
        async def script(tx: Tx) -> tuple[RecoveryReport, list[Note]]:
            now = self.clock.now_ms()
            holders = [row[0] for row in await tx.rows("running_owners")]
            dead = [h for h in holders if owners.is_dead(h)]
            params = {"now": now, "dead": dead, "held": list(held)}
            expired = [RunRecord.from_row(r) for r in await tx.rows("expired_runs", params)]
            jobs = await lock_jobs(tx, {r.job_id for r in expired})
            touched, notes = interrupt_expired(expired, jobs, dead, now, self.settings)
            keep = self.settings.runs_keep_per_job
            await write_finished(tx, expired, touched.values(), (), keep)
            repaired: list[JobRecord] = []
            if repair:  # whole-table scans: at start-up, not on every periodic pass
                await tx.execute("release_orphaned_jobs")
                rows = await tx.rows("jobs_missing_next_run")
                repaired = [j for j in map(JobRecord.from_row, rows) if limits.repair(j, now)]
                await update_jobs(tx, repaired)
            if expired or repaired:
                tx.changed(Topic.JOBS)
            return RecoveryReport([r.id for r in expired], len(repaired)), notes

        report, notes = await self._write(script)
        write_notes(notes)
        return report
