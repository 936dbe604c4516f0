"""The durable delivery outbox: sends what the store's delivery planner queued (see
:mod:`starpod_cron.routing`) through the channel owning each destination prefix (Telegram's
``tg:``, a named destination's ``dest:NAME``: :func:`~starpod_cron.routing.serves`). The
rules below hold for every kind.

Guarantees (README, "What is guaranteed"):

- Deliveries to one destination go out in run order; one waiting on a retry (a Telegram rate
  limit) holds back the newer ones behind it.
- Each outcome is committed before the next send to the same destination (outcomes of
  different destinations share transactions), so a gateway killed mid-delivery re-sends at
  most the one message per destination that was in flight, and for a message sent in pieces at
  most the one piece in flight (pieces sent are recorded as they go).
- Each send ends one of four ways (:class:`DeliveryError` says which): sent; the chat asks to
  wait (a rate limit, ``Retry-After``: waited for exactly ``retry_after``, no attempt
  counted); the destination as a whole refuses (a rejected bot token or webhook URL,
  Telegram or a receiver unreachable: no attempt counted, and every node's deliveries to it
  wait, recorded in the store, while one message probes it on the delivery backoff; when
  it answers the rest follow); a failed attempt for that message (retried with backoff,
  dead after ``max_attempts``); or rejected for good (chat not found, bot blocked, a 4xx
  from a webhook: dead at once, the answer kept). Nothing is
  lost while a destination refuses. A delivery failing never changes the run's status.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from starpod_cron import (
    CronStore,
    Delivery,
    DeliveryOutcome,
    DestinationRefusal,
    StoreUnavailable,
    Topic,
    tracing,
)
from starpod_cron.completions import GroupCommit
from starpod_cron.logs import redact
from starpod_cron.routing import serves
from starpod_cron.tasks import TaskSet, cancel_and_wait
from starpod_cron.timeutil import from_ms, to_ms

log = logging.getLogger("gateway.outbox")

Progress = Callable[[int], Awaitable[None]]
"""``await progress(n)``: the first ``n`` parts of the delivery are sent."""


class DeliveryError(Exception):
    """A channel could not deliver. ``retry_after`` (seconds): the server asks to wait that
    long (not a failed attempt); ``refusing``: the destination as a whole refuses (its bot
    token rejected, unreachable, 5xx), so every delivery to it waits; ``permanent``: this
    message is rejected on its own (chat not found, bot blocked) and is dead at once. None of
    them: a failed attempt, retried with backoff."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        refusing: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.refusing = refusing


class Channel(Protocol):
    name: str
    """The destination as a whole, as the store and metrics know it (``telegram:<bot id>``);
    never a secret."""

    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        """Send ``delivery`` (skipping the ``delivery.progress`` parts already sent, calling
        ``progress(n)`` as parts go out); raise DeliveryError to have it wait, retried or
        dead."""

    async def check(self) -> None:
        """Raise DeliveryError (``refusing``) if the destination refuses now (a probe when no
        message waits)."""


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
        idle_secs: float = 30,
    ) -> None:
        self._store = store
        self._owner = owner
        self._channels = channels
        self._max_attempts = max_attempts
        self._backoff = list(backoff_secs)
        self._lease_secs = lease_secs
        self._batch = batch
        self._idle_ms = round(idle_secs * 1000)
        self._wake = asyncio.Event()
        self._tasks = TaskSet("outbox")  # the outcome writer and each batch's lease renewal
        self._outcomes: GroupCommit[DeliveryOutcome, bool] = GroupCommit(
            lambda items: store.finish_deliveries(owner, items),
            what="delivery outcome(s)",
            tasks=self._tasks,
        )
        self.alive = False
        """True while :meth:`run` runs (for readiness)."""
        self.last_pass_ms: int | None = None
        """When the loop last finished a pass, or recorded an outcome within a long one."""
        self.refusing: list[DestinationRefusal] = []
        """This node's destinations refusing, as the last pass read them from the store."""
        self._held: set[int] = set()  # claimed by this pass, outcome not yet recorded
        self._refused: dict[str, DestinationRefusal] = {}  # by channel name, this pass
        self._answered: set[str] = set()  # channel names that answered this pass
        self._refusal_lock = asyncio.Lock()

    @property
    def names(self) -> list[str]:
        """The destinations this outbox sends to (``telegram:<bot id>``)."""
        return [channel.name for channel in self._channels.values()]

    async def run(self) -> None:
        """Deliver until cancelled (run it as a supervised task). Store errors are logged and
        retried; they never end the loop."""
        clock = self._store.clock
        unsubscribe = self._store.on_change(self._wake.set, Topic.DELIVERIES)
        failures = 0
        self.alive = True
        try:
            while True:
                self._wake.clear()
                try:
                    sent, due = await self._pass()
                    failures = 0
                    self.last_pass_ms = clock.now_ms()
                    if sent:
                        continue
                except StoreUnavailable as exc:
                    failures += 1
                    log.error("outbox: store unavailable (attempt %d): %s", failures, exc)
                    due = None
                wait_ms = self._idle_ms if not failures else 500 * 2 ** min(failures, 6)
                deadline = clock.now_ms() + min(wait_ms, self._idle_ms)
                if due is not None:
                    deadline = min(deadline, to_ms(due))
                await clock.wait(self._wake, deadline)
        finally:
            self.alive = False
            unsubscribe()
            await self._outcomes.close(within=5)

    async def _pass(self) -> tuple[bool, datetime | None]:
        """Claim and send one batch: True if something was sent (look again at once);
        otherwise when to look again at the latest (None: on a wake-up or after idling).

        A destination refusing is left out of the claim; when its probe is due, one node
        takes it and sends one message (or, with none waiting, checks the channel)."""
        store = self._store
        self._refused, self._answered = {}, set()
        refusing = {r.name: r for r in await store.refusing_destinations()}
        self.refusing = [refusing[name] for name in self.names if name in refusing]
        now = store.clock.now_ms()
        open_prefixes: list[str] = []
        probes: list[tuple[str, Channel]] = []
        waits: list[datetime] = []
        for prefix, channel in self._channels.items():
            refusal = refusing.get(channel.name)
            if refusal is None:
                open_prefixes.append(prefix)
            elif to_ms(refusal.retry_at) <= now and await store.take_destination_probe(
                channel.name, self._lease_secs
            ):
                probes.append((prefix, channel))
            else:
                waits.append(refusal.retry_at)
        batch: list[Delivery] = []
        for prefix, channel in probes:
            probe = await store.claim_deliveries(self._owner, 1, self._lease_secs, [prefix])
            if probe:
                log.info("outbox: %s refusing; one message probes it", channel.name)
                batch += probe
            else:
                await self._check(channel, refusing[channel.name])
        if open_prefixes:
            batch += await store.claim_deliveries(
                self._owner, self._batch, self._lease_secs, open_prefixes
            )
        if batch:
            await self._send_all(batch, refusing)
            return True, None
        due = await store.next_delivery_at(open_prefixes) if open_prefixes else None
        return False, min([due, *waits] if due is not None else waits, default=None)

    async def _check(self, channel: Channel, refusal: DestinationRefusal) -> None:
        try:
            await channel.check()
        except DeliveryError as exc:
            if exc.refusing:
                await self._record_refusal(channel, redact(str(exc)))
                return
        await self._answered_again(channel, refusal)

    async def _send_all(
        self, batch: list[Delivery], refusing: dict[str, DestinationRefusal]
    ) -> None:
        by_destination: dict[str, list[Delivery]] = {}
        for delivery in batch:
            by_destination.setdefault(delivery.destination, []).append(delivery)
        self._held = {d.id for d in batch}
        # a batch to one chat can take longer than a lease (Telegram sends about one message
        # a second per chat): renew it while sending, so no other node takes it over
        renewer = self._tasks.spawn(self._renew_while_sending(), "renew")
        try:
            # one destination in order (a chat sees results in order); destinations in parallel
            await asyncio.gather(*(self._send_in_order(d) for d in by_destination.values()))
        finally:
            await cancel_and_wait([renewer], grace=2, what="outbox lease renewal", log_errors=False)
            self._held = set()
        for channel in self._channels.values():
            was = refusing.get(channel.name)
            if was is not None and channel.name in self._answered - set(self._refused):
                await self._answered_again(channel, was)

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
            channel = self._channel(delivery.destination)
            refused = self._refused.get(channel.name) if channel is not None else None
            if refused is not None:  # refused meanwhile (another chat): wait, untried
                outcome = DeliveryOutcome(
                    delivery.id, False, delivery.last_error, refused.retry_at, False
                )
            else:
                sent = self._send(delivery)
                outcome = await tracing.delivery(
                    sent, delivery.id, delivery.run_id, delivery.destination
                )
            if outcome.retry_at is None:
                await self._outcomes.write(outcome)
                self._held.discard(delivery.id)
                self.last_pass_ms = self._store.clock.now_ms()
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

        now = from_ms(self._store.clock.now_ms())
        try:
            await channel.deliver(delivery, progress)
        except DeliveryError as exc:
            error = redact(str(exc))
            if exc.refusing:  # the destination as a whole: wait, untried, behind one probe
                refusal = await self._record_refusal(channel, error)
                return DeliveryOutcome(delivery.id, False, error, refusal.retry_at, False)
            self._answered.add(channel.name)
            if exc.retry_after is not None:  # the chat asks to wait: not a failed attempt
                log.warning(
                    "delivery %d to %s (run %s) waits %.1fs as the destination asks: %s",
                    delivery.id,
                    delivery.destination,
                    delivery.run_id,
                    exc.retry_after,
                    error,
                    extra=_about(delivery),
                )
                retry_at = now + timedelta(seconds=exc.retry_after)
                return DeliveryOutcome(delivery.id, False, error, retry_at, False)
            if exc.permanent or delivery.attempts >= self._max_attempts:
                log.error(
                    "delivery %d to %s (run %s) is dead after %d attempt(s): %s",
                    delivery.id,
                    delivery.destination,
                    delivery.run_id,
                    delivery.attempts,
                    error,
                    extra=_about(delivery),
                )
                return DeliveryOutcome(delivery.id, False, error)
            delay = self._delay(delivery.attempts)
            log.warning(
                "delivery %d to %s (run %s) failed (attempt %d), retrying in %.1fs: %s",
                delivery.id,
                delivery.destination,
                delivery.run_id,
                delivery.attempts,
                delay,
                error,
                extra=_about(delivery),
            )
            return DeliveryOutcome(delivery.id, False, error, now + timedelta(seconds=delay))
        self._answered.add(channel.name)
        return DeliveryOutcome(delivery.id, True)

    async def _record_refusal(self, channel: Channel, error: str) -> DestinationRefusal:
        """Record (once per pass) that ``channel`` refuses as a whole, for every node."""
        async with self._refusal_lock:
            refusal = self._refused.get(channel.name)
            if refusal is None:
                refusal = await self._store.refuse_destination(channel.name, error, self._backoff)
                self._refused[channel.name] = refusal
                wait = (to_ms(refusal.retry_at) - self._store.clock.now_ms()) / 1000
                log.error(
                    "outbox: %s refuses every message (%d time(s) in a row): %s; its "
                    "deliveries wait, nothing is lost; probing again in %.1fs",
                    channel.name,
                    refusal.failures,
                    error,
                    wait,
                )
            return refusal

    async def _answered_again(self, channel: Channel, refusal: DestinationRefusal) -> None:
        if await self._store.clear_destination(channel.name):
            log.warning(
                "outbox: %s answers again (it refused since %s); its deliveries go out",
                channel.name,
                refusal.since.isoformat(timespec="seconds"),
            )

    def _delay(self, attempt: int) -> float:
        base = self._backoff[min(attempt, len(self._backoff)) - 1]
        return base * random.uniform(0.8, 1.2)

    def _channel(self, destination: str) -> Channel | None:
        for prefix, channel in self._channels.items():
            if serves(prefix, destination):
                return channel
        return None


def _about(delivery: Delivery) -> dict[str, object]:
    """The fields a log line about one delivery carries (JSON logs: delivery_id, run_id, job)."""
    return {"delivery_id": delivery.id, "run_id": delivery.run_id, "job": delivery.job_name}
