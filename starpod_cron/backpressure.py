"""Backpressure from a saturated model provider: an adaptive limit on concurrent executor calls.

At 09:00 thousands of "every morning" prompts fall due at once and go to a provider that admits
only so many requests at a time and answers the rest with 429 (or 503). An executor says so by
raising :class:`~starpod_cron.errors.ProviderSaturated`; the scheduler then retries that run
after the provider's delay (same attempt, nothing recorded, nobody notified) and calls the
executor through an :class:`AdaptiveLimit`: additive increase, multiplicative decrease (AIMD,
as TCP does), so the number of calls in flight settles at what the provider admits instead of
bouncing off it.

- A call that went through raises the limit by ``increase/limit`` (one more call every four
  rounds of calls by default: each probe past the provider's capacity costs a refused call
  and its ``Retry-After``), up to ``ceiling`` (``max_concurrent_runs``).
- A call refused as saturated cuts the limit to what was still in flight when it was refused
  (at most by ``decrease``: the provider admitted those), never below 1.
- Before a 429 comes: a provider that announces its budgets in its headers (a
  :class:`~starpod_cron.pacing.Pacer`) caps the calls in flight at what those budgets still
  admit (:meth:`AdaptiveLimit.pace`), and the pacer spreads the calls over the time to the
  reset; the AIMD limit is left as it was, for when the provider stops announcing.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque


class AdaptiveLimit:
    """Admits calls in arrival order (FIFO) while fewer than ``limit`` are in flight."""

    def __init__(self, ceiling: int, *, decrease: float = 0.5, increase: float = 0.25) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = ceiling
        self.decrease = decrease
        self.increase = increase
        self.limit = float(ceiling)
        self.in_flight = 0
        self.saturations = 0
        """How many calls the provider refused as saturated (for logs and metrics)."""
        self.cap: int | None = None
        """The calls in flight the provider's announced budgets admit (None: no cap)."""
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def allowed(self) -> int:
        """Calls that may be in flight now: the AIMD limit, under the provider's cap."""
        room = math.floor(self.limit)
        if self.cap is not None:
            room = min(room, self.cap)
        return max(1, room)

    def _room(self) -> bool:
        return self.in_flight < self.allowed

    def pace(self, cap: int | None) -> None:
        """Cap the calls in flight at ``cap`` (from the provider's headers; None: lift it)."""
        self.cap = cap
        self._admit()

    async def acquire(self) -> None:
        """Wait until one more call may go out (then it counts as in flight)."""
        if not self._waiters and self._room():
            self.in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # admitted, then cancelled: give back
                self.in_flight -= 1
                self._admit()
            raise

    def release(self, *, saturated: bool = False) -> None:
        """A call ended: it went through (or failed otherwise), or the provider refused it as
        saturated."""
        self.in_flight -= 1
        if saturated:
            self.saturations += 1
            floor = max(float(self.in_flight), self.limit * self.decrease)
            self.limit = max(1.0, min(self.limit, floor))
        else:
            self.limit = min(float(self.ceiling), self.limit + self.increase / self.limit)
        self._admit()

    def _admit(self) -> None:
        while self._waiters and self._room():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
