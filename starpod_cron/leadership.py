"""One leader among the processes sharing a store, through a named lease in the store.

Some work must run in exactly one place at a time: Telegram accepts one ``getUpdates``
consumer per bot token. :class:`LeaderElection` takes the lease ``name`` in the store, runs
``work(term)`` while it holds it, renews it every third of ``lease_secs``, and stops the work
*before* the lease can expire on the store's side: the holder counts from the moment it asked
(a monotonic clock, so a stalled or partitioned holder steps down on time). A node that dies
stops renewing, and another takes over when the lease expires (at once if the dead holder was
a process on the same machine). State handed from term to term (the bot's update offset) is
saved with :meth:`LeaderTerm.save`, fenced: a holder whose lease was taken over writes nothing.

>>> election = LeaderElection(store, "telegram:123", node_id, lease_secs=6)
>>> await election.run(poll)   # poll(term) runs only while this node leads
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .errors import StarpodCronError, StoreUnavailable
from .models import Lease
from .store import CronStore
from .tasks import TaskSet, cancel_and_wait

log = logging.getLogger("starpod_cron.leadership")

SAFETY = 0.2
"""Step down this fraction of the lease before it could expire on the store's side (room for
clock skew between machines and the time a renewal takes)."""


class LeadershipLost(StarpodCronError):
    """This process no longer holds the lease (it expired or another process took it over);
    raised by :meth:`LeaderTerm.save`, which wrote nothing."""


class LeaderTerm:
    """One tenure of the lease: the state the previous holder handed on, and a fenced save."""

    def __init__(self, store: CronStore, lease: Lease, safe_until: float) -> None:
        self._store = store
        self.safe_until = safe_until
        """``time.monotonic()`` before which the lease is surely still held (renewals move it)."""
        self.name = lease.name
        self.holder = lease.holder
        self.since = lease.since
        self.state = lease.state
        """What the previous holder saved (None the first time the lease is ever taken)."""

    def check(self) -> None:
        """LeadershipLost unless the lease is surely still held: call it before each step
        that must happen in one place only (a process paused past its lease, by SIGSTOP or a
        long stall, learns here that it must stop, before its renewer has run)."""
        if time.monotonic() >= self.safe_until:
            raise LeadershipLost(f"the lease {self.name!r} may have passed to another process")

    async def save(self, state: str) -> None:
        """Hand ``state`` on to whoever holds the lease next; LeadershipLost if this term is
        over (nothing is written then)."""
        if not await self._store.save_lease_state(self.name, self.holder, state):
            raise LeadershipLost(f"lost the lease {self.name!r}; state not saved")
        self.state = state


Work = Callable[[LeaderTerm], Coroutine[Any, Any, None]]


class LeaderElection:
    """Runs ``work`` only while this process holds the lease ``name`` (see the module doc)."""

    def __init__(
        self,
        store: CronStore,
        name: str,
        holder: str,
        *,
        lease_secs: float = 6.0,
        retry_secs: float = 1.0,
    ) -> None:
        if lease_secs < 0.3:
            raise ValueError("lease_secs must be at least 0.3")
        self.store = store
        self.name = name
        self.holder = holder
        self.lease_secs = lease_secs
        self.retry_secs = retry_secs
        self.is_leader = False
        self.terms = 0
        """How many times this process took the lease."""
        self._tasks = TaskSet("lead")

    async def run(self, work: Work) -> None:
        """Until cancelled: wait for the lease, run ``work(term)`` while holding it, and stop
        it when the lease is lost (cancelling it). ``work`` returning or failing ends the term
        too (a failure is logged); the lease is then released so another process may try,
        and this one tries again after ``retry_secs``. On cancel, the lease is released."""
        try:
            while True:
                asked = time.monotonic()
                _, lease = await self._acquire()
                if lease is not None:
                    await self._lead(lease, asked, work)
                await asyncio.sleep(self.retry_secs)
        finally:
            self.is_leader = False
            await self._release()

    async def _acquire(self, within: float | None = None) -> tuple[bool, Lease | None]:
        """``(answered, lease)``: the lease, or None when another process holds it; not
        answered when the store failed or took longer than ``within`` seconds."""
        limit = self.lease_secs * SAFETY * 2 if within is None else max(0.01, within)
        try:
            lease = await asyncio.wait_for(
                self.store.acquire_lease(self.name, self.holder, self.lease_secs), limit
            )
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning("lease %s: the store did not answer: %s", self.name, _why(exc))
            return False, None
        return True, lease

    def _safe_until(self, asked: float) -> float:
        return asked + self.lease_secs * (1 - SAFETY)

    async def _lead(self, lease: Lease, asked: float, work: Work) -> None:
        safe_until = self._safe_until(asked)
        self.is_leader = True
        self.terms += 1
        log.info("lease %s: this process (%s) leads now", self.name, self.holder)
        term = LeaderTerm(self.store, lease, safe_until)
        task = self._tasks.spawn(work(term), self.name, on_done=self._log_end)
        renew_every = self.lease_secs / 3
        try:
            while True:
                now = time.monotonic()
                if now >= safe_until:
                    log.warning("lease %s: could not renew in time; stepping down", self.name)
                    return
                next_renewal = min(asked + renew_every, safe_until) - now
                done, _ = await asyncio.wait({task}, timeout=max(0.0, next_renewal))
                if done:  # its end is logged by _log_end
                    await self._release()
                    return
                asked = time.monotonic()
                answered, renewed = await self._acquire(within=safe_until - asked)
                if not answered:
                    continue  # the store is slow or away: retry until safe_until
                if renewed is None:
                    log.warning("lease %s: another process took over; stepping down", self.name)
                    return
                safe_until = term.safe_until = self._safe_until(asked)
        finally:
            self.is_leader = False
            await cancel_and_wait(
                [task], grace=self.lease_secs, what="leader work", log_errors=False
            )

    def _log_end(self, task: asyncio.Task[None]) -> None:
        """How a term's work ended (a cancel, when the term ends first, is not news)."""
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, LeadershipLost):
            log.warning("lease %s: %s", self.name, exc)
        elif exc is not None:
            log.error("lease %s: the leader's work failed", self.name, exc_info=exc)

    async def _release(self) -> None:
        try:
            await asyncio.wait_for(
                asyncio.shield(self.store.release_lease(self.name, self.holder)), timeout=2
            )
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning(
                "lease %s: could not release (it expires by itself): %s", self.name, _why(exc)
            )


def _why(exc: BaseException) -> str:
    return str(exc) or ("no answer in time" if isinstance(exc, TimeoutError) else repr(exc))
