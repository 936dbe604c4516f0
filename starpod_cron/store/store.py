"""The one concrete store: every concern of the contract, one dialect driver underneath."""

from __future__ import annotations

from ..clock import Clock, SystemClock
from ..settings import StoreSettings
from ..timeutil import check_zone
from .contract import (
    BackfillStore,
    JobStore,
    PreferenceStore,
    RunStore,
    SchedulerStore,
    SessionStore,
    StoreSignals,
)
from .contract_nodes import CoordinationStore, DeliveryStore, LoginSessionStore
from .opener import StoreOpener, connect_driver
from .ops.backfill import BackfillOps
from .ops.coordination import CoordinationOps
from .ops.history import HistoryOps
from .ops.jobs import JobOps
from .ops.outbox import OutboxOps
from .ops.scheduling import SchedulerOps
from .ops.spend import SpendOps
from .types import DeliveryPlanner


class CronStore(
    JobOps,
    SchedulerOps,
    HistoryOps,
    OutboxOps,
    CoordinationOps,
    BackfillOps,
    SpendOps,
    StoreSignals,
    JobStore,
    RunStore,
    SchedulerStore,
    DeliveryStore,
    SessionStore,
    LoginSessionStore,
    PreferenceStore,
    CoordinationStore,
    BackfillStore,
):
    """Durable home of jobs, runs and deliveries: every concern of the contract, on SQLite or
    PostgreSQL.

    Open one with :meth:`open`. All times in and out are aware UTC datetimes; the database
    stores epoch milliseconds. Every write is a single transaction: bad input raises an
    :class:`~starpod_cron.errors.InvalidInput` subclass and writes nothing.
    """

    @staticmethod
    def open(
        url: str,
        *,
        settings: StoreSettings | None = None,
        clock: Clock | None = None,
        create: bool = True,
        delivery_planner: DeliveryPlanner | None = None,
        start_planner: DeliveryPlanner | None = None,
    ) -> StoreOpener[CronStore]:
        """Open (creating and migrating as needed) the store at ``url``: a file path or
        ``sqlite:///path`` (SQLite), or ``postgresql://...`` / ``postgres://...``. Use
        ``store = await CronStore.open(...)`` or ``async with CronStore.open(...) as store:``
        (closed on exit). With ``create=False`` a missing SQLite file is an error.

        ``delivery_planner(job, run)``: what to deliver about every run ``complete_runs``
        finishes with success, failure or timeout, inserted in the SAME transaction (a
        recorded result is never without its notifications); a delivery is unique per (run,
        destination, kind). ``start_planner(job, run)``: what to publish about every run
        ``claim_due`` and ``record_run_start`` start (the run ``running``; one claimed ahead
        is told at its claim, ``started_at`` its fire time), in the same transaction, so a
        started event always comes before its run's finished event.

        Raises ConfigError for an unknown scheme, StoreUnavailable when the database cannot be
        opened (not a database, unreadable, unreachable), and SchemaVersionError when it was
        written by a newer schema version. Migrations only ever add; they never delete user
        data.
        """
        chosen = settings or StoreSettings()

        async def opening() -> CronStore:
            check_zone(chosen.default_timezone)
            driver = await connect_driver(url, chosen, create=create)
            return CronStore(
                driver,
                chosen,
                clock or SystemClock(),
                delivery_planner=delivery_planner,
                start_planner=start_planner,
            )

        return StoreOpener(opening)
