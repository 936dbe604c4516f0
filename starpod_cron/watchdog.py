"""One timer for every run's timeout, instead of a timer per run."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from .clock import Clock

log = logging.getLogger("starpod_cron.scheduler")

T = TypeVar("T")


class Watchdog(Generic[T]):
    """Calls ``on_expiry(item)`` once the clock reaches the deadline an item was watched with.

    Deadlines are read on the injected clock, so a ManualClock can fire a two-hour timeout at
    once. Items that finish early stay in the heap until their deadline and are then ignored
    by ``on_expiry`` (lazy deletion keeps ``watch`` O(log n)).
    """

    def __init__(self, clock: Clock, on_expiry: Callable[[T], None]) -> None:
        self._clock = clock
        self._on_expiry = on_expiry
        self._heap: list[tuple[int, int, T]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def watch(self, item: T, deadline_ms: int) -> None:
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (deadline_ms, next(self._seq), item))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="starpod-cron:watchdog")
        elif earliest is None or deadline_ms < earliest:
            self._wake.set()

    async def _run(self) -> None:
        while self._heap:
            self._wake.clear()
            now = self._clock.now_ms()
            while self._heap and self._heap[0][0] <= now:
                _, _, item = heapq.heappop(self._heap)
                try:
                    self._on_expiry(item)
                except Exception:
                    log.exception("timeout handling failed for %r", item)
            if self._heap:
                await self._clock.wait(self._wake, self._heap[0][0])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._heap.clear()
