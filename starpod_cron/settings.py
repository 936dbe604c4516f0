"""The settings of the store and the scheduler: defaults and validation live here, once.

``agent.toml`` loading (:mod:`starpod_cron.config`) builds these objects; code that uses the
library directly builds them the same way. An impossible value raises
:class:`~starpod_cron.errors.ConfigError` naming the field, when the object is created.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError, InvalidTimezone
from .timeutil import check_zone

MAX_RETRIES = 100
MAX_TIMEOUT_SECS = 30 * 86_400


def _number(name: str, value: object, *, minimum: float, above: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    if (value <= minimum) if above else (value < minimum):
        relation = "greater than" if above else "at least"
        raise ConfigError(f"{name}: must be {relation} {minimum:g}, got {value!r}")


def _integer(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{name}: must be {bound}, got {value!r}")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Store-wide defaults and policies (``[cron]`` and ``[store]`` in ``agent.toml``)."""

    default_max_retries: int = 3
    """Retries of a failed run for jobs created without ``max_retries`` (0-100)."""
    default_timeout_secs: float = 7200
    """A run is cancelled and recorded ``timeout`` after this long (jobs without their own)."""
    default_timezone: str = "UTC"
    """IANA zone of jobs created without one (``[cron] timezone``)."""
    runs_keep_per_job: int = 200
    """Run history kept per job; older runs are pruned as runs finish."""
    retry_backoff_secs: tuple[float, ...] = (30, 60, 300, 900, 3600)
    """Delay before retry 1, 2, 3, ...; the last one repeats."""
    misfire_grace_secs: float = 60
    """With ``misfire_policy = "skip"``, a fire later than this counts as missed."""
    jitter_secs: float = 0
    """Jitter of jobs created without their own ``jitter_secs`` (0: fire on time)."""
    queue_limit: int = 100
    """With ``overlap = "queue"``, missed fires kept waiting; older ones are skipped."""
    synchronous: str = "full"
    """SQLite only: ``full`` (durable on power loss) or ``normal`` (faster; safe on a crash)."""

    def __post_init__(self) -> None:
        _integer("default_max_retries", self.default_max_retries, minimum=0, maximum=MAX_RETRIES)
        _number("default_timeout_secs", self.default_timeout_secs, minimum=0, above=True)
        if self.default_timeout_secs > MAX_TIMEOUT_SECS:
            raise ConfigError(
                f"default_timeout_secs: must be at most {MAX_TIMEOUT_SECS} (30 days), "
                f"got {self.default_timeout_secs!r}"
            )
        try:
            check_zone(self.default_timezone)
        except InvalidTimezone as exc:
            raise ConfigError(f"timezone: {exc}") from None
        _integer("runs_keep_per_job", self.runs_keep_per_job, minimum=1)
        if not isinstance(self.retry_backoff_secs, tuple) or not self.retry_backoff_secs:
            raise ConfigError("retry_backoff_secs: must be a non-empty list of delays in seconds")
        for delay in self.retry_backoff_secs:
            _number("retry_backoff_secs", delay, minimum=0)
        _number("misfire_grace_secs", self.misfire_grace_secs, minimum=0)
        _number("jitter_secs", self.jitter_secs, minimum=0)
        if self.jitter_secs > 86_400:
            raise ConfigError(
                f"jitter_secs: must be at most 86400 (a day), got {self.jitter_secs!r}"
            )
        _integer("queue_limit", self.queue_limit, minimum=1, maximum=10_000)
        if self.synchronous not in ("full", "normal"):
            raise ConfigError(f"synchronous: must be 'full' or 'normal', got {self.synchronous!r}")


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """How a :class:`~starpod_cron.CronScheduler` behaves (``[cron]`` in ``agent.toml``)."""

    tick_secs: float = 30
    """Longest sleep: the fallback for noticing changes when no wake-up signal arrives."""
    max_concurrent_runs: int = 4
    """Executor calls running at the same time."""
    shutdown_timeout_secs: float = 30
    """On stop, how long running jobs get to finish before they are interrupted."""
    lease_secs: float = 30
    """Runs are leased this long and renewed while they run; a dead process's runs are
    recovered after about this long."""
    claim_ahead_secs: float | None = None
    """Claim fires this early and start them exactly on time (default: min(1, lease/4))."""
    cancel_grace_secs: float = 5
    """An executor that ignores cancellation this long is abandoned (logged)."""
    notify_timeout_secs: float = 30
    """A notifier call taking longer is abandoned (logged)."""

    def __post_init__(self) -> None:
        _number("tick_secs", self.tick_secs, minimum=0, above=True)
        _integer("max_concurrent_runs", self.max_concurrent_runs, minimum=1)
        _number("shutdown_timeout_secs", self.shutdown_timeout_secs, minimum=0)
        _number("lease_secs", self.lease_secs, minimum=0, above=True)
        _number("cancel_grace_secs", self.cancel_grace_secs, minimum=0)
        _number("notify_timeout_secs", self.notify_timeout_secs, minimum=0, above=True)
        if self.claim_ahead_secs is not None:
            _number("claim_ahead_secs", self.claim_ahead_secs, minimum=0)
            if self.claim_ahead_secs >= self.lease_secs:
                raise ConfigError(
                    f"claim_ahead_secs: must be shorter than lease_secs ({self.lease_secs:g}), "
                    f"got {self.claim_ahead_secs:g}"
                )

    @property
    def claim_ahead(self) -> float:
        """``claim_ahead_secs`` with its default applied."""
        if self.claim_ahead_secs is None:
            return min(1.0, self.lease_secs / 4)
        return self.claim_ahead_secs
