"""The durable delivery outbox: sends what the store's delivery planner queued (see
:mod:`starpod_cron.routing`) through the channel owning each destination prefix.

Guarantees (README, "What is guaranteed"):

- Deliveries to one destination go out in run order; one waiting on a retry (a Telegram rate
  limit) holds back the newer ones behind it.
- Each outcome is committed before the next send to the same destination (outcomes of
  different destinations share transactions), so a gateway killed mid-delivery re-sends at
  most the one message per destination that was in flight, and for a message sent in pieces at
  most the one piece in flight (pieces sent are recorded as they go).
- A delivery is retried with backoff (never sooner than the server's own ``retry_after``) and
  marked delivered, or dead after ``max_attempts`` with its error kept. A delivery failing
  never changes the run's status.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Protocol

from starpod_cron import CronStore, Delivery, DeliveryOutcome, StoreUnavailable, Topic
from starpod_cron.completions import GroupCommit
from starpod_cron.logs import redact
from starpod_cron.tasks import cancel_and_wait
from starpod_cron.timeutil import from_ms, to_ms

log = logging.getLogger("gateway.outbox")

Progress = Callable[[int], Awaitable[None]]
"""``await progress(n)``: the first ``n`` parts of the delivery are sent."""


class DeliveryError(Exception):
    """A channel could not deliver. ``retry_after`` (seconds) is the server's own hint;
    ``permanent`` errors (chat not found, bot blocked) are not retried."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Channel(Protocol):
    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        """Send ``delivery`` (skipping the ``delivery.progress`` parts already sent, calling
        ``progress(n)`` as parts go out); raise DeliveryError to have it retried or dead."""


class Outbox:
    """Sends due deliveries through their channel (chosen by destination prefix)."""

    def __init__(
        self,
        store: CronStore,
        owner: str,
        channels: dict[str, Channel],
        *,
        max_attempts: int = 8,
        backoff_secs: Sequence[float] = (1, 5, 30, 120, 600),
        lease_secs: float = 60,
        batch: int = 200,
    ) -> None:
        self._store = store
        self._owner = owner
        self._channels = channels
        self._prefixes = list(channels)
        self._max_attempts = max_attempts
        self._backoff = list(backoff_secs)
        self._lease_secs = lease_secs
        self._batch = batch
        self._wake = asyncio.Event()
        self._outcomes: GroupCommit[DeliveryOutcome, bool] = GroupCommit(
            lambda items: store.finish_deliveries(owner, items), what="delivery outcome(s)"
        )
        self.last_pass_ms: int | None = None
        self._held: set[int] = set()  # claimed by this pass, outcome not yet recorded

    async def run(self) -> None:
        """Deliver until cancelled (run it as a supervised task). Store errors are logged and
        retried; they never end the loop."""
        clock = self._store.clock
        unsubscribe = self._store.on_change(self._wake.set, Topic.DELIVERIES)
        failures = 0
        try:
            while True:
                self._wake.clear()
                try:
                    batch = await self._store.claim_deliveries(
                        self._owner, self._batch, self._lease_secs, self._prefixes
                    )
                    if batch:
                        await self._send_all(batch)
                        continue
                    due = await self._store.next_delivery_at(self._prefixes)
                    failures = 0
                except StoreUnavailable as exc:
                    failures += 1
                    log.error("outbox: store unavailable (attempt %d): %s", failures, exc)
                    due = None
                wait_ms = 30_000 if not failures else min(30_000, 500 * 2 ** min(failures, 6))
                deadline = clock.now_ms() + wait_ms
                if due is not None:
                    deadline = min(deadline, to_ms(due))
                self.last_pass_ms = clock.now_ms()
                await clock.wait(self._wake, deadline)
        finally:
            unsubscribe()
            await self._outcomes.close(within=5)

    async def _send_all(self, batch: list[Delivery]) -> None:
        by_destination: dict[str, list[Delivery]] = {}
        for delivery in batch:
            by_destination.setdefault(delivery.destination, []).append(delivery)
        self._held = {d.id for d in batch}
        # a batch to one chat can take longer than a lease (Telegram sends about one message
        # a second per chat): renew it while sending, so no other node takes it over
        renewer = asyncio.create_task(self._renew_while_sending(), name="outbox:renew")
        try:
            # one destination in order (a chat sees results in order); destinations in parallel
            await asyncio.gather(*(self._send_in_order(d) for d in by_destination.values()))
        finally:
            await cancel_and_wait([renewer], grace=2, what="outbox lease renewal")
            self._held = set()

    async def _renew_while_sending(self) -> None:
        while True:
            await asyncio.sleep(self._lease_secs / 3)
            held = set(self._held)
            try:
                renewed = await self._store.renew_deliveries(self._owner, held, self._lease_secs)
            except StoreUnavailable as exc:
                log.warning(
                    "outbox: could not renew the lease on %d deliveries: %s", len(held), exc
                )
                continue
            if renewed < len(held):  # finished meanwhile, or taken over after a stall
                log.debug("outbox: renewed %d of %d deliveries", renewed, len(held))

    async def _send_in_order(self, deliveries: list[Delivery]) -> None:
        for index, delivery in enumerate(deliveries):
            outcome = await self._send(delivery)
            if outcome.retry_at is None:
                await self._outcomes.write(outcome)
                self._held.discard(delivery.id)
                continue
            # the rest of this destination waits behind the one that failed, untried
            rest = [
                DeliveryOutcome(later.id, False, later.last_error, outcome.retry_at, False)
                for later in deliveries[index + 1 :]
            ]
            await asyncio.gather(*(self._outcomes.write(o) for o in [outcome, *rest]))
            return

    async def _send(self, delivery: Delivery) -> DeliveryOutcome:
        """Send one delivery and say how it went (delivered, retry at a time, or dead)."""
        channel = self._channel(delivery.destination)
        if channel is None:  # not claimable (prefixes), so this is a bug, not bad luck
            error = f"no channel for destination {delivery.destination!r} in this gateway"
            return DeliveryOutcome(delivery.id, False, error)

        async def progress(parts: int) -> None:
            await self._store.record_delivery_progress(delivery.id, self._owner, parts)

        try:
            await channel.deliver(delivery, progress)
        except DeliveryError as exc:
            error = redact(str(exc))
            if exc.permanent or delivery.attempts >= self._max_attempts:
                log.error(
                    "delivery %d to %s (run %s) is dead after %d attempt(s): %s",
                    delivery.id,
                    delivery.destination,
                    delivery.run_id,
                    delivery.attempts,
                    error,
                )
                return DeliveryOutcome(delivery.id, False, error)
            delay = self._delay(delivery.attempts, exc.retry_after)
            log.warning(
                "delivery %d to %s (run %s) failed (attempt %d), retrying in %.1fs: %s",
                delivery.id,
                delivery.destination,
                delivery.run_id,
                delivery.attempts,
                delay,
                error,
            )
            now = from_ms(self._store.clock.now_ms())
            return DeliveryOutcome(delivery.id, False, error, now + timedelta(seconds=delay))
        return DeliveryOutcome(delivery.id, True)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        base = self._backoff[min(attempt, len(self._backoff)) - 1]
        jittered = base * random.uniform(0.8, 1.2)
        return max(jittered, retry_after or 0.0)

    def _channel(self, destination: str) -> Channel | None:
        for prefix, channel in self._channels.items():
            if destination.startswith(prefix):
                return channel
        return None
