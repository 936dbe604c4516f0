"""The settings of the store and the scheduler: defaults and validation live here, once.

``agent.toml`` loading (:mod:`starpod_cron.config`) builds these objects; code that uses the
library directly builds them the same way. An impossible value raises
:class:`~starpod_cron.errors.ConfigError` naming the field, when the object is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .bounds import DAY, HOUR, WEEK, check_fields, each, whole, within
from .budget import MAX_BUDGET_USD, SpendSettings
from .errors import ConfigError, InvalidTimezone
from .timeutil import check_zone

MAX_RETRIES = 100
MAX_TIMEOUT_SECS = 30 * DAY
SILENT_TOKEN = "[SILENT]"
"""The default ``[cron] silent_token``."""
ESCALATE_TOKEN = "[ESCALATE]"
"""The default ``[cron] escalate_token``."""


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Store-wide defaults and policies (``[cron]`` and ``[store]`` in ``agent.toml``)."""

    default_max_retries: int = field(default=3, metadata=whole(0, MAX_RETRIES))
    """Retries of a failed run for jobs created without ``max_retries`` (0-100)."""
    default_timeout_secs: float = field(
        default=7200, metadata=within(0, MAX_TIMEOUT_SECS, above=True, note="30 days")
    )
    """A run is cancelled and recorded ``timeout`` after this long (jobs without their own)."""
    default_timezone: str = "UTC"
    """IANA zone of jobs created without one (``[cron] timezone``)."""
    runs_keep_per_job: int = field(default=200, metadata=whole(1, 1_000_000))
    """Run history kept per job; older runs are pruned as runs finish."""
    retry_backoff_secs: tuple[float, ...] = field(
        default=(30, 60, 300, 900, 3600), metadata=each(0, WEEK)
    )
    """Delay before retry 1, 2, 3, ...; the last one repeats."""
    misfire_grace_secs: float = field(default=60, metadata=within(0, 30 * DAY, note="30 days"))
    """With ``misfire_policy = "skip"``, a fire later than this counts as missed."""
    jitter_secs: float = field(default=0, metadata=within(0, DAY, note="a day"))
    """Jitter of jobs created without their own ``jitter_secs`` (0: fire on time)."""
    queue_limit: int = field(default=100, metadata=whole(1, 10_000))
    """With ``overlap = "queue"``, missed fires kept waiting; older ones are skipped."""
    silent_token: str = SILENT_TOKEN
    """A result that is exactly this (after stripping whitespace) is recorded as a silent
    success and delivered nowhere."""
    escalate_token: str = ESCALATE_TOKEN
    """An answer beginning with this, from a job with ``escalate_to``, makes the same run ask
    that model instead (see :mod:`starpod_cron.executors.modelcall`)."""
    pause_after_failures: int = field(default=0, metadata=whole(0, 1000))
    """Pause jobs created without their own after this many failed runs in a row (0: never)."""
    backfill_limit: int = field(default=1000, metadata=whole(1, 1_000_000))
    """The most occurrences one backfill may run (``--max`` raises it for one call)."""
    budget_usd_per_day: float | None = field(default=None, metadata=within(0, MAX_BUDGET_USD))
    """``[cron] budget_usd_per_day``: what all runs together may spend per day (midnight in
    ``[cron] timezone``); None: no global budget (see :mod:`starpod_cron.budget`)."""
    spend: SpendSettings = field(default_factory=SpendSettings)
    """Prices and owner budgets (``[pricing]``, ``[gateway]``; not ``[cron]`` keys)."""
    synchronous: str = "full"
    """SQLite only: ``full`` (durable on power loss) or ``normal`` (faster; safe on a crash)."""

    def __post_init__(self) -> None:
        check_fields(self)
        try:
            check_zone(self.default_timezone)
        except InvalidTimezone as exc:
            raise ConfigError(f"timezone: {exc}") from None
        if not self.silent_token.strip() or len(self.silent_token) > 200:
            raise ConfigError("silent_token: must be 1 to 200 characters, not only spaces")
        if not self.escalate_token.strip() or len(self.escalate_token) > 200:
            raise ConfigError("escalate_token: must be 1 to 200 characters, not only spaces")
        if self.synchronous not in ("full", "normal"):
            raise ConfigError(f"synchronous: must be 'full' or 'normal', got {self.synchronous!r}")


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """How a :class:`~starpod_cron.CronScheduler` behaves (``[cron]`` in ``agent.toml``)."""

    tick_secs: float = field(default=30, metadata=within(0, HOUR, above=True))
    """Longest sleep: the fallback for noticing changes when no wake-up signal arrives."""
    max_concurrent_runs: int = field(default=4, metadata=whole(1, 1_000_000))
    """Executor calls running at the same time."""
    shutdown_timeout_secs: float = field(default=30, metadata=within(0, DAY))
    """On stop, how long running jobs get to finish before they are interrupted."""
    lease_secs: float = field(default=30, metadata=within(0, DAY, above=True))
    """Runs are leased this long and renewed while they run; a dead process's runs are
    recovered after about this long."""
    claim_ahead_secs: float | None = field(default=None, metadata=within(0, HOUR))
    """Claim fires this early and start them exactly on time (default: min(1, lease/4))."""
    cancel_grace_secs: float = field(default=5, metadata=within(0, HOUR))
    """An executor that ignores cancellation this long is abandoned (logged)."""
    notify_timeout_secs: float = field(default=30, metadata=within(0, HOUR, above=True))
    """A notifier call taking longer is abandoned (logged)."""
    max_clock_skew_secs: float = field(default=5, metadata=within(0, HOUR, above=True))
    """``serve`` claims no runs while this node's clock is further than this from the
    database's (``/readyz`` answers 503); its decisions count from the database's clock."""
    quota_retry_secs: float = field(default=900, metadata=within(0, DAY, above=True))
    """How long a job is held after a quota or billing refusal (HTTP 402,
    ``insufficient_quota``) whose provider did not say when its quota is back."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.claim_ahead_secs is not None and self.claim_ahead_secs >= self.lease_secs:
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
