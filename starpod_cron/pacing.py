"""Pacing calls to a model provider by what its headers say remains (see
:mod:`starpod_cron.ratelimits`), so that ``remaining`` reaches 0 no earlier than the reset
instead of running into a 429.

An executor that reads rate-limit headers owns a :class:`Pacer` (its ``pacer`` attribute):
it calls :meth:`Pacer.sent` as each request goes out and :meth:`Pacer.observe` with each
answer's headers. The scheduler, before each executor call, books the call's time with
:meth:`Pacer.book` (waiting for it, or holding the run when that is past its timeout) and caps
the adaptive limit's calls in flight at :meth:`Pacer.cap` (:mod:`starpod_cron.backpressure`).

The rule, per announced resource (requests, tokens, ...): what remains now is what the newest
answer announced, less what was sent (or booked) after the request it answered (requests in
flight are not in the provider's count yet; tokens are estimated per call from the usage
answers report), plus what came back since, at the rate the answer implies (a budget announced
as ``remaining`` of ``limit``, whole again in ``reset``, refills at ``(limit - remaining) /
reset``). What is left now and what comes back before the reset, that is the limit, is spread
evenly over the time to the reset: one call every ``reset * cost / limit``, so ``remaining``
reaches 0 no earlier than the reset. When nothing is left (beyond a reserve of
``RESERVE_CALLS`` calls, for estimates that are off), the next call waits until one call's
worth is back, not for the whole reset. A budget announced without its limit is spread
literally: what remains over the time to the reset. Nothing known (before the first answer)
lets one call out to learn the limits; a provider that announces nothing is not paced at all.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .clock import Clock, SystemClock
from .ratelimits import RateLimits

SMOOTHING = 0.2
"""Weight of the newest call's tokens in the running estimate of tokens per call."""
STALE_BOOKING_MS = 10_000
"""A turn booked this long ago and never sent no longer counts."""
RESERVE_CALLS = 2
"""Calls' worth of each budget kept back for estimates that are off (tokens per call)."""


@dataclass(frozen=True, slots=True)
class Sent:
    """Where the counters stood once a request had gone out (:meth:`Pacer.sent`)."""

    calls: int
    tokens: float
    at_ms: int
    """When it went out (clock ms): the provider counted it, and set its reset, about then."""


@dataclass(frozen=True, slots=True)
class _Seen:
    """One budget as an answer announced it, at ``seen_ms``, after the request ``at``."""

    remaining: float
    limit: float | None
    reset_ms: int
    seen_ms: int
    at: Sent


@dataclass(frozen=True, slots=True)
class _Turn:
    """A budget now, in calls: how many it admits, the spacing it asks for and, when it admits
    none, how long until one call's worth is back."""

    calls: float
    spacing_ms: float
    wait_ms: float


class Pacer:
    """The pace of one provider's calls (one per executor, shared by its runs)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._calls = 0
        self._tokens = 0.0
        self._per_call: float | None = None
        """Tokens per call, estimated from the usage answers report (None: none seen yet)."""
        self._seen: dict[str, _Seen] = {}
        self._answered = False
        self._next_ms = 0
        self._booked: deque[int] = deque()
        """Turns booked and not yet sent (their times, oldest first): counted as used, so the
        calls waiting for their turn are not each given the same budget."""
        self.waits = 0
        """Calls that waited for their turn (for logs and metrics)."""

    # ---------------------------------------------------------------- the executor's side
    def sent(self) -> Sent:
        """A request goes out now: count it (and the tokens it is expected to use)."""
        self._calls += 1
        self._tokens += self._per_call or 0.0
        if self._booked:
            self._booked.popleft()
        return Sent(self._calls, self._tokens, self.clock.now_ms())

    def used(self, tokens: int | None) -> None:
        """An answer said its call used ``tokens`` (prompt and completion; None: not said)."""
        if tokens is not None and tokens >= 0:
            old = self._per_call
            self._per_call = float(tokens) if old is None else old + SMOOTHING * (tokens - old)

    def observe(self, sent: Sent, limits: RateLimits) -> None:
        """The request counted as ``sent`` was answered (or failed: no limits) with
        ``limits``."""
        self._answered = True
        for name, budget in limits.budgets.items():
            if budget.remaining is None:
                continue
            seen = self._seen.get(name)
            if seen is not None and seen.at.calls > sent.calls:
                continue  # an answer to an older request, overtaken by a newer one
            reset_ms = sent.at_ms + round((budget.reset_secs or 0.0) * 1000)
            self._seen[name] = _Seen(budget.remaining, budget.limit, reset_ms, sent.at_ms, sent)

    # ---------------------------------------------------------------- the scheduler's side
    def _budget(self, name: str, seen: _Seen, at: int) -> _Turn | None:
        """Where budget ``name`` stands at ``at`` (clock ms), in calls; None: not known."""
        booked = len(self._booked)
        if name == "requests":
            used, cost = float(self._calls - seen.at.calls + booked), 1.0
        elif self._per_call:
            used, cost = self._tokens - seen.at.tokens + booked * self._per_call, self._per_call
        else:
            return None  # no call's usage seen yet: tokens cannot be counted in calls
        reserve = RESERVE_CALLS * cost
        window = seen.reset_ms - seen.seen_ms
        if seen.limit is not None and seen.limit > seen.remaining and window > 0:
            # It refills at (limit - remaining) / window; what is left now plus what comes
            # back before the reset is the limit, spread over the time to the reset.
            rate = (seen.limit - seen.remaining) / window
            level = min(seen.limit, seen.remaining - used + rate * max(0, at - seen.seen_ms))
            to_reset = (seen.limit - level) / rate
            wait = max(0.0, (cost + reserve - level) / rate)
            return _Turn((level - reserve) / cost, cost * to_reset / seen.limit, wait)
        to_reset = max(0, seen.reset_ms - at)
        if to_reset == 0 and seen.limit is not None:  # whole (again): the limit
            level = seen.limit - used
        else:
            level = seen.remaining - used
        calls = (level - reserve) / cost
        if calls < 1:
            return _Turn(calls, 0.0, float(to_reset))
        return _Turn(calls, to_reset / calls, 0.0)

    def book(self) -> int:
        """Take the next call's turn: the time (clock ms) it may go out, now or later. A turn
        not taken (the run was held or cancelled) is given back with :meth:`unbook`."""
        now = self.clock.now_ms()
        while self._booked and self._booked[0] < now - STALE_BOOKING_MS:
            self._booked.popleft()  # booked by a caller that never sent (an executor that
            # does not count its requests): no longer counted
        at = max(now, self._next_ms)
        spacing = 0.0
        for name, seen in list(self._seen.items()):
            turn = self._budget(name, seen, at)
            if turn is None:
                continue
            if turn.calls < 1:  # nothing left: when one call's worth is back
                at += math.ceil(turn.wait_ms)
            spacing = max(spacing, turn.spacing_ms)
        self._next_ms = at + math.ceil(spacing)
        self._booked.append(at)
        if at > now:
            self.waits += 1
        return at

    def unbook(self) -> None:
        """A booked turn will not be used (its run was held or cancelled before its call)."""
        if self._booked:
            self._booked.pop()

    def cap(self) -> int | None:
        """How many calls may be in flight: one until the provider first answered, then the
        calls its budgets still admit (at least one); None when it announces no limits."""
        if not self._answered:
            return 1
        now = self.clock.now_ms()
        turns = [self._budget(name, seen, now) for name, seen in list(self._seen.items())]
        known = [t.calls for t in turns if t is not None]
        if not known:
            return None
        return max(1, math.floor(min(known)))
