"""Lease renewal for the runs a scheduler holds: renewed every third of a lease while any run is
in flight; a run someone else recovered, or every run once renewal has failed for longer than a
lease, is reported lost (the scheduler cancels its executor)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from .store import CronStore
from .tasks import TaskSet

log = logging.getLogger("starpod_cron.scheduler")

LostRuns = Callable[[Collection[str], str], None]
"""``on_lost(run_ids, why)``: these runs are no longer surely held here; cancel them."""


class LeaseRenewal:
    """Keeps the leases of the runs ``held()`` names, on behalf of ``owner``.

    :meth:`keep` starts the renewal task (in ``tasks``) if it is not running; it ends by itself
    once nothing is held. :meth:`renew_now` renews at once (the store then knows the holder was
    alive at that moment, e.g. when claimed-ahead runs start).
    """

    def __init__(
        self,
        store: CronStore,
        owner: str,
        lease_secs: float,
        *,
        tasks: TaskSet,
        held: Callable[[], Collection[str]],
        on_lost: LostRuns,
    ) -> None:
        self._store = store
        self._owner = owner
        self._lease_secs = lease_secs
        self._tasks = tasks
        self._held = held
        self._on_lost = on_lost
        self._now = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._renewed_at = time.monotonic()

    def keep(self) -> None:
        """Make sure the held runs' leases are being renewed."""
        if self._task is None or self._task.done():
            self._renewed_at = time.monotonic()
            self._task = self._tasks.spawn(self._run(), "leases")

    def renew_now(self) -> None:
        self._now.set()

    async def _run(self) -> None:
        interval_ms = max(1, round(self._lease_secs * 1000 / 3))
        clock = self._store.clock
        while self._held():
            await clock.wait(self._now, clock.now_ms() + interval_ms)
            self._now.clear()
            if self._held():
                await self.renew()

    async def renew(self) -> None:
        """Renew every held run's lease once; report those recovered elsewhere (this process
        paused longer than its lease, say), or all of them when renewal has failed for longer
        than a lease (another node may have taken them)."""
        ids = list(self._held())
        lease = self._lease_secs
        try:
            renewed = await self._store.renew_leases(self._owner, lease, ids)
        except Exception as exc:  # noqa: BLE001 - logged; a lease kept failing cancels the runs
            silent = time.monotonic() - self._renewed_at
            log.error("renewing %d lease(s) failed: %s", len(ids), exc)
            if silent > lease:
                self._on_lost(
                    ids,
                    f"lease not renewed for {silent:.1f}s (longer than the lease); another "
                    "scheduler may have taken the run over, so it is cancelled",
                )
            return
        self._renewed_at = time.monotonic()
        lost = [run_id for run_id in ids if run_id not in renewed]
        if lost:
            self._on_lost(lost, "lease lost (recovered elsewhere); cancelling it")
