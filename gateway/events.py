"""Run events for this node's WebSocket clients, whichever node finished the run.

Every gateway node tails the broadcast events (``ws:`` deliveries) from the store, from the
newest at its start, in event-id order, and hands each to its WebSocket server, which offers it
to the clients allowed to see it. The deliveries table is the source of truth; the store's
change signal (``LISTEN/NOTIFY`` on PostgreSQL, ``data_version`` on SQLite) only wakes the
feed early, and it also looks every ``poll_secs`` in case a signal was missed. Event ids become
visible in id order (see the stores), so reading "after the last id seen" never skips one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from starpod_cron import CronStore, Delivery, StoreUnavailable, Topic
from starpod_cron.routing import WS_PREFIX

log = logging.getLogger("gateway.events")

PAGE = 500


class EventFeed:
    def __init__(
        self, store: CronStore, publish: Callable[[Delivery], None], *, poll_secs: float = 2.0
    ) -> None:
        self._store = store
        self._publish = publish
        self._poll_secs = poll_secs
        self._wake = asyncio.Event()
        self.last_id: int | None = None
        """The id of the last event handed on (clients replay from event ids)."""

    async def start(self) -> None:
        """Start from the newest event (earlier ones are for ``replay``)."""
        self.last_id = await self._store.last_delivery_id()

    async def run(self) -> None:
        """Hand on new events until cancelled; store errors are logged and retried."""
        if self.last_id is None:
            await self.start()
        unsubscribe = self._store.on_change(self._wake.set, Topic.DELIVERIES)
        try:
            while True:
                self._wake.clear()
                try:
                    full = await self._pass()
                except StoreUnavailable as exc:
                    log.error("event feed: store unavailable: %s", exc)
                    full = False
                if full:
                    continue
                # woken by a signal, or a periodic look in case a signal was lost
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_secs)
        finally:
            unsubscribe()

    async def _pass(self) -> bool:
        """Hand on one page of new events; True if a full page came (more may follow)."""
        assert self.last_id is not None
        events = await self._store.list_deliveries(self.last_id, None, PAGE, prefix=WS_PREFIX)
        for event in events:
            self._publish(event)
            self.last_id = event.id
        return len(events) == PAGE
