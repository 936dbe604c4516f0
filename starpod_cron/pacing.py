"""Pacing calls to a model provider by what its headers say remains (see
:mod:`starpod_cron.ratelimits`), so that ``remaining`` reaches 0 no earlier than the reset
instead of running into a 429.

An executor that reads rate-limit headers owns a :class:`Pacer` (its ``pacer`` attribute):
it calls :meth:`Pacer.sent` as each request goes out and :meth:`Pacer.observe` with each
answer's headers. The scheduler, before each executor call, books the call's time with
:meth:`Pacer.book` (waiting for it, or holding the run when that is past its timeout) and caps
the adaptive limit's calls in flight at :meth:`Pacer.cap` (:mod:`starpod_cron.backpressure`).

The rule, per announced resource (requests, tokens, ...): what remains now is what the newest
answer announced less what was sent after the request it answered (requests in flight are
not in the provider's count yet; tokens are estimated per call from the usage seen), and the
calls are spread evenly over the time left to its reset: one call every ``reset / remaining``
(in calls). Against a provider that refills continuously and announces the time until it is
whole again (OpenAI), this settles at half the budget left and the provider's own rate.
Nothing known (before the first answer) lets one call out to learn the limits; a provider
that announces nothing is not paced at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .clock import Clock, SystemClock
from .ratelimits import RateLimits

SMOOTHING = 0.2
"""Weight of the newest call's tokens in the running estimate of tokens per call."""


@dataclass(frozen=True, slots=True)
class Sent:
    """Where the counters stood once a request had gone out (:meth:`Pacer.sent`)."""

    calls: int
    tokens: float


@dataclass(frozen=True, slots=True)
class _Seen:
    remaining: float
    limit: float | None
    reset_ms: int
    at: Sent


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
        self.waits = 0
        """Calls that waited for their turn (for logs and metrics)."""

    # ---------------------------------------------------------------- the executor's side
    def sent(self) -> Sent:
        """A request goes out now: count it (and the tokens it is expected to use)."""
        self._calls += 1
        self._tokens += self._per_call or 0.0
        return Sent(self._calls, self._tokens)

    def used(self, tokens: int | None) -> None:
        """An answer said its call used ``tokens`` (prompt and completion; None: not said)."""
        if tokens is not None and tokens >= 0:
            old = self._per_call
            self._per_call = float(tokens) if old is None else old + SMOOTHING * (tokens - old)

    def observe(self, sent: Sent, limits: RateLimits) -> None:
        """The request counted as ``sent`` was answered (or failed: no limits) with
        ``limits``."""
        self._answered = True
        now = self.clock.now_ms()
        for name, budget in limits.budgets.items():
            if budget.remaining is None:
                continue
            seen = self._seen.get(name)
            if seen is not None and seen.at.calls > sent.calls and seen.reset_ms > now:
                continue  # an answer to an older request, overtaken by a newer one
            reset_ms = now + round((budget.reset_secs or 0.0) * 1000)
            self._seen[name] = _Seen(budget.remaining, budget.limit, reset_ms, sent)

    # ---------------------------------------------------------------- the scheduler's side
    def _left(self, name: str, seen: _Seen, now: int) -> tuple[float, int]:
        """Calls ``name`` still admits now (estimated), and ms to its reset."""
        if name == "requests":
            used, cost = float(self._calls - seen.at.calls), 1.0
        else:
            if not self._per_call:
                return math.inf, 0
            used, cost = self._tokens - seen.at.tokens, self._per_call
        if seen.reset_ms <= now:  # whole again since: its limit (or one probe) from then
            whole = seen.limit if seen.limit is not None else cost
            self._seen[name] = seen = _Seen(whole, seen.limit, now, Sent(self._calls, self._tokens))
            used = 0.0
        return (seen.remaining - used) / cost, seen.reset_ms - now

    def book(self) -> int:
        """Take the next call's turn: the time (clock ms) it may go out, now or later."""
        now = self.clock.now_ms()
        at = max(now, self._next_ms)
        spacing = 0.0
        for name, seen in list(self._seen.items()):
            calls, reset = self._left(name, seen, at)
            if calls < 1:  # nothing left: not before the reset
                at = max(at, at + reset)
            elif math.isfinite(calls):
                spacing = max(spacing, reset / calls)
        self._next_ms = at + math.ceil(spacing)
        if at > now:
            self.waits += 1
        return at

    def cap(self) -> int | None:
        """How many calls may be in flight: one until the provider first answered, then the
        calls its budgets still admit (at least one); None when it announces no limits."""
        if not self._answered:
            return 1
        now = self.clock.now_ms()
        admits = [self._left(name, seen, now)[0] for name, seen in list(self._seen.items())]
        finite = [c for c in admits if math.isfinite(c)]
        if not finite:
            return None
        return max(1, math.floor(min(finite)))
