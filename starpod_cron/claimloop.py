"""The scheduler's loop: recover, claim what is due (ahead of its time), sleep until the next due
time, a store change or ``tick_secs``, whichever comes first; a store that fails is retried
with backoff, reported once per distinct error. On a store whose clock is a
:class:`~starpod_cron.dbclock.DatabaseClock` (``serve``), each pass first syncs it with the
database, and while this node's clock is beyond ``max_clock_skew_secs`` of the database's
the pass recovers and claims nothing (one log line when that starts, one when it ends)."""

from __future__ import annotations

import asyncio
import logging
import time

from .dbclock import DatabaseClock
from .errors import StoreUnavailable
from .inflight import RunsInFlight
from .settings import SchedulerSettings
from .store import CronStore
from .store.types import ClaimRequest

log = logging.getLogger("starpod_cron.scheduler")

CLAIM_BATCH = 1000  # occurrences claimed per transaction
STORE_ERROR_REPEAT_SECS = 60


class ClaimLoop:
    """Claims due occurrences for ``owner`` into ``runs`` until :meth:`stop`."""

    def __init__(
        self,
        store: CronStore,
        owner: str,
        settings: SchedulerSettings,
        runs: RunsInFlight,
    ) -> None:
        self._store = store
        self._owner = owner
        self._settings = settings
        self._runs = runs
        self.wake_up = asyncio.Event()
        self.stopping = False
        self.passes = 0
        self._in_pass = False
        self._pass_done = asyncio.Condition()
        self._store_error: tuple[str, float] | None = None
        self.last_pass_ms: int | None = None
        """When the loop last finished a pass (store clock), for health checks."""
        self.claimed_total = 0
        """Runs claimed since the loop started (for metrics)."""
        self.clock_refused = False
        """This node's clock is too far from the database's: it claims nothing."""

    def wake(self) -> None:
        self.wake_up.set()

    def stop(self) -> None:
        """End the loop after its current pass (it claims nothing more)."""
        self.stopping = True
        self.wake_up.set()

    async def checkpoint(self) -> int:
        """Wake the loop and return once it has completed a full pass that started after this
        call; returns the number of passes so far."""
        target = self.passes + (2 if self._in_pass else 1)
        self.wake_up.set()
        async with self._pass_done:
            await self._pass_done.wait_for(lambda: self.passes >= target or self.stopping)
        return self.passes

    # ------------------------------------------------------ claims made with completions
    def request(self) -> ClaimRequest | None:
        """The claim the next completing transaction makes (the completion writer asks):
        the slots its runs freed, unless the loop is stopping or a store error is current."""
        if self.stopping or self._store_error is not None:
            return None
        s = self._settings
        n = self._runs.reserve(CLAIM_BATCH)
        if n == 0:
            return None
        # only what is due now: fires ahead of their time are the loop's (every node's loop
        # claims them as their time comes near, so nodes share them)
        return ClaimRequest(self._owner, n, s.lease_secs)

    def claimed(self, request: ClaimRequest) -> None:
        """The completing transaction committed (or failed): admit its claims."""
        claims = request.claimed
        self._runs.unreserve(request.limit)
        self.claimed_total += len(claims)
        try:
            self._runs.admit(claims)
        except Exception:  # their leases expire and recovery hands them back
            log.exception("admitting %d claimed run(s) failed", len(claims))
        if len(claims) == request.limit:
            self.wake_up.set()  # more may be due: the loop claims again if slots are free

    async def run(self) -> None:
        self._runs.completions.claims = self
        try:
            await self._run()
        finally:
            self._runs.completions.claims = None

    async def _run(self) -> None:
        s = self._settings
        store, runs = self._store, self._runs
        clock = store.clock
        guard = clock if isinstance(clock, DatabaseClock) else None
        lease_ms = round(s.lease_secs * 1000)
        tick_ms = round(s.tick_secs * 1000)
        ahead_ms = round(s.claim_ahead * 1000)
        next_recover = 0
        repaired = False
        failures = 0
        while not self.stopping:
            self.wake_up.clear()
            self._in_pass = True
            now = clock.now_ms()
            deadline = now + tick_ms
            try:
                refusing = guard is not None and not await self._clock_agrees(guard)
                now = clock.now_ms()
                if now >= next_recover and not refusing:
                    report = await store.recover(held=set(runs.ids()), repair=not repaired)
                    repaired = True
                    if report.interrupted_run_ids:
                        log.warning(
                            "recovered %d interrupted run(s)", len(report.interrupted_run_ids)
                        )
                    next_recover = now + lease_ms // 2
                batch = 0 if self.stopping or refusing else runs.reserve(CLAIM_BATCH)
                if batch > 0:
                    try:
                        claims = await store.claim_due(
                            self._owner, batch, s.lease_secs, ahead_secs=s.claim_ahead
                        )
                    finally:
                        runs.unreserve(batch)
                    self.claimed_total += len(claims)
                    runs.admit(claims)
                    if len(claims) == batch:
                        # More may be due: claim again once the new runs have started, so
                        # claiming, running and recording overlap instead of queueing.
                        deadline = now
                    elif claims.next_due_ms is not None:
                        deadline = min(deadline, claims.next_due_ms - ahead_ms)
                deadline = min(deadline, next_recover)
                failures = 0
                self._store_error = None
            except StoreUnavailable as exc:
                failures += 1
                deadline = now + backoff_ms(failures, tick_ms)
                self._report_store_error(exc)
            except Exception:
                failures += 1
                delay = backoff_ms(failures, tick_ms)
                log.exception(
                    "scheduler iteration failed (attempt %d); retrying in %d ms", failures, delay
                )
                deadline = now + delay
            self._in_pass = False
            self.passes += 1
            self.last_pass_ms = clock.now_ms()
            async with self._pass_done:
                self._pass_done.notify_all()
            await clock.wait(self.wake_up, deadline)
        async with self._pass_done:
            self._pass_done.notify_all()

    async def _clock_agrees(self, guard: DatabaseClock) -> bool:
        """Sync ``guard`` with the database; False while this node's clock is too far off."""
        if guard.sync_due():  # once a second, not a round trip on every pass
            await guard.sync(self._store.database_now_ms)
        if guard.too_far != self.clock_refused:
            self.clock_refused = guard.too_far
            skew = (guard.skew_ms or 0) / 1000
            limit = guard.max_skew_ms / 1000
            if guard.too_far:
                log.error(
                    "this node's clock is %+.1f s off the database's, more than "
                    "[cron] max_clock_skew_secs = %g: claiming no runs until it is back within",
                    skew,
                    limit,
                )
            else:
                log.warning(
                    "this node's clock is back within %g s of the database's (%+.1f s): "
                    "claiming runs again",
                    limit,
                    skew,
                )
        return not guard.too_far

    def _report_store_error(self, exc: StoreUnavailable) -> None:
        """One line per distinct store error, repeated at most once a minute."""
        message = str(exc)
        now = time.monotonic()
        last = self._store_error
        if last is None or last[0] != message or now - last[1] > STORE_ERROR_REPEAT_SECS:
            log.error("store unavailable, not claiming: %s", message)
            self._store_error = (message, now)


def backoff_ms(failures: int, tick_ms: int) -> int:
    """How long the loop waits after ``failures`` failed passes in a row (never past a tick)."""
    return int(min(tick_ms, 250 * 2 ** min(failures, 8)))
