"""What a transaction decides, dialect-free: the in-transaction bookkeeping of a claim, a
completion and a recovery pass (``ClaimBatch``, ``FinishBatch``, ``interrupt_expired``), the
rows of deliveries, leases and nodes, bounds for numbers from outside and the messages of a
few errors. The transaction scripts (``ops/``) read rows, hand them here, and write back what
was decided."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DuplicateJobName, InvalidInput, JobAlreadyRunning, LimitExceeded
from ..logs import run_log
from ..models import (
    CronJob,
    CronRun,
    DestinationRefusal,
    Lease,
    ModelOptions,
    NodeInfo,
    RunStatus,
    RunTrigger,
)
from ..owner import is_dead
from ..schedules import OneShot
from ..settings import StoreSettings
from ..timeutil import from_ms, opt_from_ms, to_ms
from . import limits, memory, planning, quiet
from .budgets import BudgetCheck, SpendBook
from .records import _SESSION_MODES, _TRIGGERS, JobRecord, RunRecord
from .types import Claim, Completion, DeliveryOutcome, DeliveryPlanner, JobSpec, RunFinished

log = logging.getLogger("starpod_cron.store")

NOTIFIED = frozenset(
    {RunStatus.SUCCESS.value, RunStatus.FAILED.value, RunStatus.TIMEOUT.value, RunStatus.HELD.value}
)
"""The statuses that are run-finished events (a held run's event carries its notice)."""
FINAL_FOR_COMPLETION = frozenset(
    {RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.INTERRUPTED, RunStatus.HELD}
)
DELIVERY_INSERT_COLUMNS: tuple[str, ...] = (
    "run_id",
    "job_id",
    "job_name",
    "destination",
    "payload",
    "next_attempt_at",
    "created_at",
    "status",
    "event",
)
"""The columns of a new delivery, in the order of :func:`delivery_rows`' tuples."""
MAX_ROWS = 1_000_000
MAX_ID = 2**63 - 1


def bounded(value: int, low: int = 0, high: int = MAX_ROWS) -> int:
    """A limit or id from outside, clamped to what the database can hold."""
    return max(low, min(int(value), high))


def duplicate_name(name: str, user_id: str | None) -> DuplicateJobName:
    if user_id is None:
        return DuplicateJobName(f"an agent-level job named {name!r} already exists")
    return DuplicateJobName(f"a job named {name!r} already exists for user {user_id!r}")


Note = tuple[int, str, tuple[object, ...], tuple[str, str] | None]
"""A log line decided inside a transaction (level, message, arguments, and the (job, run id)
it is about, if any), written after it from the event loop: writing from the store's thread
releases the GIL once per line, and many releases in a row starve the event loop of the GIL
(hundreds of milliseconds for a catch-up claim of 1,000 jobs)."""


def write_notes(notes: Sequence[Note]) -> None:
    for level, message, args, about in notes:
        if about is None:
            log.log(level, message, *args)
        else:
            run_log(log, *about).log(level, message, *args, action="recover")


def claim_of(job: JobRecord, run: RunRecord, lease_until: int, budgeted: bool = False) -> Claim:
    previous, previous_at = memory.given(job.context, job.previous_result, job.previous_result_at)
    return Claim(
        run.id,
        job.id,
        job.name,
        job.prompt,
        _SESSION_MODES[job.session_mode],
        job.user_id,
        job.timeout_ms / 1000,
        from_ms(run.scheduled_for),
        run.attempt,
        _TRIGGERS[run.trigger],
        from_ms(run.started_at),
        lease_until,
        job.schedule_kind == OneShot.kind,
        previous,
        opt_from_ms(previous_at),
        model_options(job),
        run.attempt > job.max_retries,
        budgeted,
    )


def model_options(job: JobRecord) -> ModelOptions:
    """The job's model call options as its row keeps them (lists as JSON text)."""
    return ModelOptions.given(
        job.model,
        job.system_prompt,
        job.temperature,
        job.max_tokens,
        None if job.fallback_models is None else json.loads(job.fallback_models),
        job.escalate_to,
        None if job.tools is None else json.loads(job.tools),
    )


def interruption(run: RunRecord, now: int, owner_dead: bool) -> Completion:
    """How recovery ends a run nobody holds: interrupted, and counted as an attempt only if
    its owner was seen alive at or after the run's start (a run claimed ahead whose owner died
    before the fire time never started)."""
    started = run.lease_renewed_at is None or run.lease_renewed_at >= run.started_at
    if owner_dead and (run.lease_expires_at or 0) >= now:
        why = f"interrupted: its scheduler ({run.lease_owner}) is no longer running"
    else:
        expiry = from_ms(run.lease_expires_at or now).isoformat()
        why = (
            f"interrupted: the lease of {run.lease_owner} expired at {expiry} (its scheduler "
            "stopped or was killed mid-run)"
        )
    if not started:
        why += "; it had not started yet, so no retry is used up"
    return Completion(run.id, RunStatus.INTERRUPTED, error=why, count_attempt=started)


def delivery_rows(
    planner: DeliveryPlanner, job: CronJob, run: CronRun, now: int, kind: str = "finished"
) -> list[tuple[object, ...]]:
    """The deliveries ``planner`` wants about ``run`` (``kind``: "finished", or "started" for
    a start planner), as insert parameters; a planner that raises is logged and the run goes
    without them (it is still recorded)."""
    try:
        specs = planner(job, run)
    except Exception:  # noqa: BLE001 - a user hook: logged with its traceback, never re-raised
        run_log(log, run.job_name, run.id).exception(
            "delivery planner failed; no %s events for it", kind, action="plan"
        )
        return []
    return [
        (
            run.id,
            run.job_id,
            run.job_name,
            s.destination,
            json.dumps(s.payload, ensure_ascii=False),
            now,
            now,
            "published" if s.broadcast else "pending",
            s.event or kind,
        )
        for s in specs
    ]


def new_records(specs: Sequence[JobSpec], now: int, settings: StoreSettings) -> list[JobRecord]:
    """The rows for ``add_jobs``, refusing a name twice in one batch (the database refuses a
    name that is already taken)."""
    records = [planning.new_job(spec, now, settings) for spec in specs]
    seen: set[tuple[str, str]] = set()
    for rec in records:
        key = (rec.user_id or "", rec.name)
        if key in seen:
            raise DuplicateJobName(f"job name {rec.name!r} appears twice in one batch")
        seen.add(key)
    return records


def limited_owners(records: Sequence[JobRecord], limit: int | None) -> list[str]:
    """The users (sorted) whose job count ``add_jobs`` must check: every owner in the batch
    when a limit is given; agent-level jobs are never counted."""
    if not limit:
        return []
    return sorted({r.user_id for r in records if r.user_id is not None})


def check_owner_limit(
    records: Sequence[JobRecord], have: Mapping[str, int], limit: int | None
) -> None:
    """LimitExceeded when a batch would give an owner more than ``limit`` jobs (``have``: the
    owners' jobs counted inside the adding transaction)."""
    if not limit:
        return
    adding: dict[str, int] = {}
    for rec in records:
        if rec.user_id is not None:
            adding[rec.user_id] = adding.get(rec.user_id, 0) + 1
    for owner, count in sorted(adding.items()):
        held = have.get(owner, 0)
        if held + count > limit:
            raise LimitExceeded(
                f"you already have {held} jobs and may have at most {limit}; remove one first "
                "([gateway] max_jobs_per_user)"
            )


def manual_run(job: JobRecord, now: int, lease_secs: float | None, owner: str | None) -> RunRecord:
    """The run ``record_run_start`` opens (and marks on ``job``), or JobAlreadyRunning."""
    if job.running_count >= job.max_instances:
        which = f"run {job.running_run_id}" if job.running_run_id else f"{job.running_count} runs"
        raise JobAlreadyRunning(f"job {job.name!r} is already running ({which})")
    lease_ms = job.timeout_ms + 60_000 if lease_secs is None else round(lease_secs * 1000)
    holder = owner or f"manual:{planning.new_id(now)}"
    return planning.start_run(job, RunTrigger.MANUAL, now, 1, now, holder, now + lease_ms)


def check_completions(completions: Sequence[Completion]) -> None:
    for done in completions:
        if RunStatus(done.status) not in FINAL_FOR_COMPLETION:
            raise InvalidInput(
                f"a run can only be completed as success, failed, timeout, interrupted or "
                f"held, "
                f"not {done.status!r}"
            )


def outcome_params(o: DeliveryOutcome, now: int, owner: str) -> dict[str, object]:
    """The ``finish_delivery`` parameters of a delivery's outcome (status, next attempt or
    time of the end, error, delivered at, attempts to give back: an outcome never attempted
    gives its attempt back)."""
    if o.delivered:
        status, at, delivered = "delivered", now, now
    elif o.retry_at is not None:
        status, at, delivered = "pending", to_ms(o.retry_at), None
    else:
        status, at, delivered = "dead", now, None
    return {
        "status": status,
        "next_attempt_at": at,
        "error": o.error,
        "delivered_at": delivered,
        "give_back": 0 if o.attempted else 1,
        "id": o.delivery_id,
        "owner": owner,
    }


@dataclass
class ClaimBatch:
    """What one ``claim_due`` transaction decides, job by job: the runs to start, the misfires
    to record, the jobs to update and the log lines to write after it commits."""

    owner: str
    now: int
    lease_until: int
    grace_ms: int
    queue_limit: int = 100
    start_planner: DeliveryPlanner | None = None
    planner: DeliveryPlanner | None = None
    """The delivery planner, for skipped runs with a notice (stale, ended): see limits.py."""
    claims: list[Claim] = field(default_factory=list)
    jobs: list[JobRecord] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    deliveries: list[tuple[object, ...]] = field(default_factory=list)
    """Events about the runs started (from ``start_planner``), written with the claim."""
    budgets: BudgetCheck | None = None
    """The budgets of the jobs claimed, against committed spend (None: no job has one)."""

    def add(self, job: JobRecord) -> None:
        start = max(self.now, job.due_ms or self.now)  # a job claimed ahead starts on time
        self.jobs.append(job)
        if limits.blocked(job, start):  # max_runs: no new occurrence, not even ahead
            return
        ran_before = job.last_run_at
        plan = planning.plan_claim(
            job, start, self.owner, self.lease_until, self.grace_ms, self.now, self.queue_limit
        )
        if not job.enabled and plan.run is None and plan.skipped is None:
            self.notes.append((logging.ERROR, "job %s: %s", (job.name, job.last_error), None))
        stale = limits.settle_claim(job, plan.run, ran_before, self.now)
        spent = None
        if stale is None and self.budgets is not None:
            spent = self.budgets.settle_claim(job, plan.run, ran_before)
        skipped = [r for r in (plan.skipped, stale, spent) if r is not None]
        limits.settle_skipped(job, skipped)
        for run in skipped:
            self.runs.append(run)
            self.notes.append((logging.WARNING, "%s", (run.error,), (job.name, run.id)))
            if run.notice and self.planner is not None:
                self.deliveries.extend(
                    delivery_rows(self.planner, job.to_public(), run.to_public(), self.now)
                )
        if plan.run is not None and stale is None and spent is None:
            self.runs.append(plan.run)
            ahead = self.budgets is not None and plan.run.started_at > self.now
            self.claims.append(claim_of(job, plan.run, self.lease_until, ahead))
            if self.start_planner is not None:
                self.deliveries.extend(start_rows(self.start_planner, job, plan.run, self.now))

    def drop(self, lost: Collection[str]) -> None:
        """Forget the runs ``lost`` whose occurrence another claimer recorded first (a lost
        race, not an error): no claim and no start event for them, and their jobs no longer
        count them as running (the occurrence is taken, so the job stays advanced past it)."""
        jobs = {job.id: job for job in self.jobs}
        for run in self.runs:
            if run.id not in lost:
                continue
            job = jobs[run.job_id]
            job.run_count -= 1
            if run.status == RunStatus.RUNNING:
                job.running_count -= 1
                if job.running_run_id == run.id:
                    job.running_run_id = None
            why = f"lost a race: occurrence {from_ms(run.scheduled_for).isoformat()} is taken"
            self.notes.append((logging.WARNING, "%s", (why,), (job.name, run.id)))
        self.runs = [r for r in self.runs if r.id not in lost]
        self.claims = [c for c in self.claims if c.run_id not in lost]
        self.deliveries = [d for d in self.deliveries if d[0] not in lost]


def start_rows(
    planner: DeliveryPlanner, job: JobRecord, run: RunRecord, now: int
) -> list[tuple[object, ...]]:
    """The "started" events ``planner`` wants about a run just claimed or begun."""
    return delivery_rows(planner, job.to_public(), run.to_public(), now, "started")


@dataclass
class FinishBatch:
    """What one ``complete_runs`` transaction decides, completion by completion: which runs
    end (the answer per completion), which jobs change or go, the events to publish after
    commit and the deliveries to queue with it."""

    runs: Mapping[str, RunRecord]
    jobs: Mapping[str, JobRecord]
    owner: str | None
    now: int
    settings: StoreSettings
    planner: DeliveryPlanner | None
    tell: bool
    answers: list[bool] = field(default_factory=list)
    finished: list[RunRecord] = field(default_factory=list)
    touched: dict[str, JobRecord] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    events: list[RunFinished] = field(default_factory=list)
    deliveries: list[tuple[object, ...]] = field(default_factory=list)
    spend: SpendBook | None = None
    """The spend of the runs finished (and their cost), upserted with them."""

    def add(self, done: Completion) -> None:
        run = self.runs.get(done.run_id)
        if (
            run is None
            or run.status != RunStatus.RUNNING
            or (self.owner is not None and run.lease_owner != self.owner)
        ):
            self.answers.append(False)
            return
        job = self.jobs.get(run.job_id)
        before = job.clone() if self.tell and job is not None else None
        quiet.settle(job, run, done, self.settings)  # silent / suppressed, before the planner
        action = planning.plan_finish(job, run, done, self.now, self.settings)
        if self.spend is not None:
            self.spend.add(job, run, done, self.now)
        if job is not None and action == "update":
            limits.settle_finish(job, run)  # counts; pauses, ends, stops at max_runs
            memory.remember(job, run, self.now, self.settings)
        self.finished.append(run)
        if before is not None and run.status in NOTIFIED:
            event = RunFinished(before, run)  # its views are made when a listener reads them
            self.events.append(event)
            if self.planner is not None:
                self.deliveries.extend(delivery_rows(self.planner, event.job, event.run, self.now))
        if job is not None and action == "update":
            self.touched[job.id] = job
        elif job is not None and action == "delete":
            self.deleted.add(job.id)
            self.touched.pop(job.id, None)
        self.answers.append(True)


def interrupt_expired(
    expired: Iterable[RunRecord],
    jobs: Mapping[str, JobRecord],
    dead: Collection[str],
    now: int,
    settings: StoreSettings,
) -> tuple[dict[str, JobRecord], list[Note]]:
    """End the runs recovery found unheld as interrupted: the jobs that changed, and a log
    line per run."""
    touched: dict[str, JobRecord] = {}
    notes: list[Note] = []
    for run in expired:
        done = interruption(run, now, run.lease_owner in dead)
        job = jobs.get(run.job_id)
        if planning.plan_finish(job, run, done, now, settings) and job is not None:
            limits.settle_finish(job, run)
            touched[job.id] = job
        notes.append((logging.WARNING, "%s", (done.error,), (run.job_name, run.id)))
    return touched, notes


NODE_MEMORY_MS = 7 * 86_400_000
"""Nodes not seen for a week are forgotten."""
STOPPED_NODE_MEMORY_MS = 86_400_000
"""Nodes that stopped cleanly are forgotten a day after they stopped."""


def check_lease(name: str, holder: str, lease_secs: float | None = None) -> None:
    """InvalidInput for an empty lease name or holder, or a lease that is not 0.1 s to 1 day."""
    if not isinstance(name, str) or not name or not isinstance(holder, str) or not holder:
        raise InvalidInput("a lease needs a non-empty name and holder")
    if lease_secs is not None and not 0.1 <= lease_secs <= 86_400:
        raise InvalidInput(f"lease_secs must be between 0.1 and 86400, not {lease_secs!r}")


def check_destination(name: str, backoff_secs: Sequence[float] | None = None) -> None:
    """InvalidInput for an empty destination name or a probe backoff that is empty, negative
    or over a day."""
    if not isinstance(name, str) or not name or len(name) > 200:
        raise InvalidInput("a destination needs a non-empty name of at most 200 characters")
    if backoff_secs is not None and (
        not backoff_secs or not all(0 <= b <= 86_400 for b in backoff_secs)
    ):
        raise InvalidInput("backoff_secs must be a non-empty list of delays of 0 to 86400 s")


def refusal_delay_ms(backoff_secs: Sequence[float], failures: int) -> int:
    """How long after its ``failures``-th refusal in a row a destination is probed again."""
    return round(backoff_secs[min(failures, len(backoff_secs)) - 1] * 1000)


def refusal_from_row(row: Iterable[Any]) -> DestinationRefusal:
    name, since, retry_at, failures, error = row
    return DestinationRefusal(name, from_ms(since), from_ms(retry_at), int(failures), error)


def may_take_lease(holder: str, current_holder: str | None, expires_at: int, now: int) -> bool:
    """Whether ``holder`` may take a lease held by ``current_holder`` until ``expires_at``:
    nobody holds it, it is its own, it expired, or its holder provably died on this machine."""
    return (
        current_holder is None
        or current_holder == holder
        or expires_at <= now
        or is_dead(current_holder)
    )


def lease_since(
    holder: str, current_holder: str | None, since: int, expires_at: int, now: int
) -> int:
    """When the holder's tenure began: kept across renewals, now for a new tenure."""
    return since if current_holder == holder and expires_at > now else now


def lease_from_row(row: Iterable[Any]) -> Lease:
    name, holder, since, expires_at, state = row
    return Lease(name, holder, from_ms(since), from_ms(expires_at), state)


def node_params(node: NodeInfo, now: int, stopped: bool) -> dict[str, object]:
    """The ``heartbeat`` parameters of ``node``, seen ``now``."""
    return {
        "id": node.id,
        "host": node.host,
        "pid": node.pid,
        "version": node.version,
        "started_at": to_ms(node.started_at),
        "last_seen": now,
        "heartbeat_ms": round(node.heartbeat_secs * 1000),
        "stopped_at": now if stopped else None,
        "roles": json.dumps(list(node.roles)),
    }


def node_from_row(row: Iterable[Any]) -> NodeInfo:
    id_, host, pid, version, started, seen, heartbeat_ms, stopped, roles = row
    return NodeInfo(
        id=id_,
        host=host,
        pid=pid,
        version=version,
        started_at=from_ms(started),
        last_seen=from_ms(seen),
        heartbeat_secs=heartbeat_ms / 1000,
        stopped_at=opt_from_ms(stopped),
        roles=tuple(json.loads(roles)),
    )
