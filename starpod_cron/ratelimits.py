"""What a model provider says about its rate limits, read from its response headers: pure
functions, no I/O, no clock (``now`` is passed in).

- OpenAI (and compatible servers): ``x-ratelimit-limit-requests|tokens``,
  ``x-ratelimit-remaining-requests|tokens`` and ``x-ratelimit-reset-requests|tokens``, the
  time until the budget is whole again as a Go duration (``6m0s``, ``1s``, ``20ms``,
  ``1h2m3.5s``).
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
  remaining,reset}``, the reset as an RFC 3339 instant.
- Everyone: ``retry-after`` (seconds or an HTTP date) and ``retry-after-ms``.

:func:`parse` turns a response's headers into :class:`RateLimits`, one :class:`Budget` per
resource the provider announced ("requests", "tokens", "input-tokens", "output-tokens"); a
header that does not parse is left out (never an error: a provider's typo must not fail a run).
The pacer (:mod:`starpod_cron.pacing`) spreads what remains over the time to the reset.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_UNITS["h"] = 3600.0
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")

RESOURCES = ("requests", "tokens", "input-tokens", "output-tokens")
"""What a provider may limit, as its headers name them."""


def go_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``1s``, ``20ms``, ``1h2m3.5s``, ``0``); a
    bare number counts as seconds (some compatible servers send one). None if it does not
    parse, or is negative."""
    text = text.strip()
    if _is_number(text):
        return float(text)
    if _DURATION.fullmatch(text) is None:
        return None
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))


def _is_number(text: str) -> bool:
    return re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", text) is not None


def rfc3339_secs(text: str, now: float) -> float | None:
    """Seconds from ``now`` (epoch seconds) to an RFC 3339 instant (0 if it has passed)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def retry_after_secs(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), from
    ``now`` (epoch seconds; the wall clock by default)."""
    if not value:
        return None
    value = value.strip()
    if _is_number(value):  # not "²", which float() accepts
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class Budget:
    """One limited resource as the provider announced it: ``remaining`` of ``limit`` (either
    may be unknown), whole again ``reset_secs`` from the response."""

    remaining: float | None = None
    limit: float | None = None
    reset_secs: float | None = None


@dataclass(frozen=True, slots=True)
class RateLimits:
    """What one response said: a budget per resource, and how long to wait before the next
    request when the provider said so (``retry-after-ms`` or ``retry-after``)."""

    budgets: dict[str, Budget] = field(default_factory=dict)
    retry_after_secs: float | None = None

    @property
    def announced(self) -> bool:
        return bool(self.budgets) or self.retry_after_secs is not None

    def reset_secs(self) -> float | None:
        """When every exhausted budget is whole again (the longest such reset), or the retry
        delay: how long a caller with nothing left must wait. None when nothing says."""
        waits = [
            b.reset_secs
            for b in self.budgets.values()
            if b.reset_secs is not None and b.remaining is not None and b.remaining <= 0
        ]
        if self.retry_after_secs is not None:
            waits.append(self.retry_after_secs)
        return max(waits) if waits else None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip()
    if not _is_number(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse(headers: Mapping[str, str], now: float) -> RateLimits:
    """The rate limits announced in a response's ``headers`` (keys in any case: an
    ``httpx.Headers`` or a plain dict); ``now`` (epoch seconds) for RFC 3339 resets."""
    low = {k.lower(): v for k, v in headers.items()}
    budgets: dict[str, Budget] = {}
    for name in RESOURCES:
        budget = _openai(low, name) if name in ("requests", "tokens") else None
        budget = budget or _anthropic(low, name, now)
        if budget is not None:
            budgets[name] = budget
    retry = _number(low.get("retry-after-ms"))
    wait = retry / 1000 if retry is not None else retry_after_secs(low.get("retry-after"), now)
    return RateLimits(budgets, wait)


def _openai(h: Mapping[str, str], name: str) -> Budget | None:
    remaining = _number(h.get(f"x-ratelimit-remaining-{name}"))
    limit = _number(h.get(f"x-ratelimit-limit-{name}"))
    reset_text = h.get(f"x-ratelimit-reset-{name}")
    reset = go_duration(reset_text) if reset_text is not None else None
    if remaining is None and limit is None and reset is None:
        return None
    return Budget(remaining, limit, reset)


def _anthropic(h: Mapping[str, str], name: str, now: float) -> Budget | None:
    prefix = f"anthropic-ratelimit-{name}-"
    remaining = _number(h.get(prefix + "remaining"))
    limit = _number(h.get(prefix + "limit"))
    reset_text = h.get(prefix + "reset")
    reset = rfc3339_secs(reset_text, now) if reset_text is not None else None
    if remaining is None and limit is None and reset is None:
        return None
    return Budget(remaining, limit, reset)


def quota_refused(status: int, body: str) -> bool:
    """A quota or billing refusal (HTTP 402, or an error body saying ``insufficient_quota``):
    nothing to retry until the quota is back, unlike a 429 for going too fast."""
    return status == 402 or "insufficient_quota" in body
