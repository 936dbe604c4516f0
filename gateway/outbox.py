"""The durable delivery outbox.

``DeliveryRouter`` decides, inside the transaction that records a finished run, which
destinations hear about it (its WebSocket audience, the Telegram chat it came from, or the
agent's notify chats). ``Outbox`` then sends what is due through the channel owning each
destination, retrying with backoff and marking each delivery delivered or, after
``max_attempts``, dead with its error kept. Delivery status never changes a run's status.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from starpod_cron import (
    CronJob,
    CronRun,
    CronStore,
    Delivery,
    DeliveryOutcome,
    DeliverySpec,
    RunStatus,
)
from starpod_cron.notify import summarize
from starpod_cron.timeutil import from_ms

from .principals import WS_AGENT, telegram_destination, ws_user

log = logging.getLogger("gateway.outbox")

TELEGRAM_TEXT_LIMIT = 16_000  # at most four Telegram messages per result
OUTCOME_BATCH = 100  # outcomes recorded per transaction


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
    async def deliver(self, delivery: Delivery) -> None:
        """Send ``delivery``; raise DeliveryError to have it retried or declared dead."""


class DeliveryRouter:
    """The store's delivery planner: where the result of a finished run goes."""

    def __init__(self, *, telegram: bool, notify_chat_ids: Sequence[int]) -> None:
        self._telegram = telegram
        self._notify_chat_ids = list(notify_chat_ids)

    def __call__(self, job: CronJob, run: CronRun) -> list[DeliverySpec]:
        success = run.status is RunStatus.SUCCESS
        text = (run.result_summary if success else run.error) or ""
        event = {
            "type": "notification",
            "job_name": job.name,
            "session_id": run.session_id or "",
            "result_preview": summarize(text),
            "success": success,
            "run_id": run.id,
            "job_id": job.id,
            "status": run.status.value,
            "ts": (run.completed_at or run.started_at).isoformat(),
        }
        specs = [DeliverySpec(ws_user(job.user_id) if job.user_id else WS_AGENT, event)]
        if not self._telegram:
            return specs
        message = {"text": telegram_text(job.name, run, text)}
        origin = job.origin or {}
        chat = origin.get("telegram_chat_id")
        if isinstance(chat, int):
            thread = origin.get("thread_id")
            dest = telegram_destination(chat, thread if isinstance(thread, int) else None)
            specs.append(DeliverySpec(dest, message))
        elif job.user_id is None:
            specs.extend(
                DeliverySpec(telegram_destination(c), message) for c in self._notify_chat_ids
            )
        return specs


def telegram_text(job_name: str, run: CronRun, text: str) -> str:
    mark = {RunStatus.SUCCESS: "done", RunStatus.TIMEOUT: "timed out"}.get(run.status, "failed")
    body = text if len(text) <= TELEGRAM_TEXT_LIMIT else text[:TELEGRAM_TEXT_LIMIT] + "\n[…]"
    return f"[{job_name}] {mark}\n\n{body}".rstrip()


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
        self._max_attempts = max_attempts
        self._backoff = list(backoff_secs)
        self._lease_secs = lease_secs
        self._batch = batch
        self._wake = asyncio.Event()
        self.delivered = 0
        self.dead = 0

    def wake(self) -> None:
        self._wake.set()

    async def notifier(self, job_name: str, session_id: str, text: str, success: bool) -> None:
        """Plug in as the scheduler's notifier: the deliveries are already in the store (written
        with the run); this only wakes the sender."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver forever (run it as a supervised task; cancel it to stop)."""
        clock = self._store.clock
        while True:
            self._wake.clear()
            batch = await self._store.claim_deliveries(self._owner, self._batch, self._lease_secs)
            if batch:
                await self._send_all(batch)
                continue
            due = await self._store.next_delivery_at()
            deadline = clock.now_ms() + 30_000
            if due is not None:
                deadline = min(deadline, int(due.timestamp() * 1000))
            await clock.wait(self._wake, deadline)

    async def _send_all(self, batch: list[Delivery]) -> None:
        by_destination: dict[str, list[Delivery]] = {}
        for delivery in batch:
            by_destination.setdefault(delivery.destination, []).append(delivery)
        # one destination in order (a chat sees results in order); destinations in parallel
        await asyncio.gather(*(self._send_in_order(d) for d in by_destination.values()))

    async def _send_in_order(self, deliveries: list[Delivery]) -> None:
        """Send one destination's deliveries in order, recording outcomes in batches (one
        transaction per batch rather than one per message)."""
        outcomes: list[DeliveryOutcome] = []
        for index, delivery in enumerate(deliveries):
            outcome = await self._send(delivery)
            outcomes.append(outcome)
            if outcome.retry_at is not None:
                # the rest of this destination waits behind the one that failed, untried
                outcomes += [
                    DeliveryOutcome(later.id, False, later.last_error, outcome.retry_at, False)
                    for later in deliveries[index + 1 :]
                ]
                break
            if len(outcomes) >= OUTCOME_BATCH:
                await self._store.finish_deliveries(self._owner, outcomes)
                outcomes = []
        await self._store.finish_deliveries(self._owner, outcomes)

    async def _send(self, delivery: Delivery) -> DeliveryOutcome:
        """Send one delivery and say how it went (delivered, retry at a time, or dead)."""
        channel = self._channel(delivery.destination)
        if channel is None:
            self.dead += 1
            error = f"no channel for destination {delivery.destination!r} in this gateway"
            return DeliveryOutcome(delivery.id, False, error)
        try:
            await channel.deliver(delivery)
        except DeliveryError as exc:
            if exc.permanent or delivery.attempts >= self._max_attempts:
                log.error(
                    "delivery %d to %s (run %s) is dead after %d attempt(s): %s",
                    delivery.id,
                    delivery.destination,
                    delivery.run_id,
                    delivery.attempts,
                    exc,
                )
                self.dead += 1
                return DeliveryOutcome(delivery.id, False, str(exc))
            delay = self._delay(delivery.attempts, exc.retry_after)
            log.warning(
                "delivery %d to %s (run %s) failed (attempt %d), retrying in %.1fs: %s",
                delivery.id,
                delivery.destination,
                delivery.run_id,
                delivery.attempts,
                delay,
                exc,
            )
            now = from_ms(self._store.clock.now_ms())
            return DeliveryOutcome(delivery.id, False, str(exc), now + timedelta(seconds=delay))
        self.delivered += 1
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
