"""Clocks: the scheduler and store read time and wait through one of these.

:class:`SystemClock` is the real one. :class:`ManualClock` only moves when told to, so tests
(yours and ours) can cross a DST transition or a two-hour timeout without waiting for it.
"""

from __future__ import annotations

import heapq
import itertools
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .timeutil import from_ms, to_ms

if TYPE_CHECKING:  # asyncio loads with the first wait (reading the time needs no event loop)
    import asyncio


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time in epoch milliseconds."""

    async def wait(self, event: asyncio.Event, deadline_ms: int) -> bool:
        """Return True as soon as ``event`` is set, False once the clock reaches ``deadline_ms``."""


class SystemClock:
    """Wall-clock time; waits use the event loop's timer."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def wait(self, event: asyncio.Event, deadline_ms: int) -> bool:
        if event.is_set():
            return True
        delay = (deadline_ms - self.now_ms()) / 1000
        if delay <= 0:
            return False
        import asyncio

        try:
            async with asyncio.timeout(delay):
                await event.wait()
        except TimeoutError:
            return event.is_set()
        return True


class ManualClock:
    """A clock that stands still until :meth:`advance` or :meth:`set` moves it."""

    def __init__(self, start: datetime | int) -> None:
        self._now = start if isinstance(start, int) else to_ms(start)
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now_ms(self) -> int:
        return self._now

    def now(self) -> datetime:
        return from_ms(self._now)

    def set(self, when: datetime | int) -> None:
        """Jump to ``when`` (never backwards) and wake everything whose deadline has come."""
        target = when if isinstance(when, int) else to_ms(when)
        if target < self._now:
            raise ValueError("ManualClock cannot go backwards")
        self._now = target
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance(self, seconds: float) -> None:
        self.set(self._now + round(seconds * 1000))

    async def wait(self, event: asyncio.Event, deadline_ms: int) -> bool:
        if event.is_set():
            return True
        if deadline_ms <= self._now:
            return False
        import asyncio

        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline_ms, next(self._seq), fut))
        waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait([fut, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            fut.cancel()
        return event.is_set()
