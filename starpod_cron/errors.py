"""The exceptions starpod-cron raises, and the ones executors raise to steer retries.

Every error raised for bad input is an :class:`InvalidInput` (also a ``ValueError``) and is
raised *before* anything is written. Lookups of missing things raise :class:`JobNotFound` or
:class:`RunNotFound` (also ``LookupError``).
"""

from __future__ import annotations


class StarpodCronError(Exception):
    """Base class of every error starpod-cron raises on its own."""


class InvalidInput(StarpodCronError, ValueError):
    """A value given to the library is unusable; the message says which and why."""


class InvalidSchedule(InvalidInput):
    """A cron expression, interval or one-shot time is malformed, impossible or in the past."""


class InvalidTimezone(InvalidInput):
    """The name is not a known IANA time zone (e.g. ``Europe/Rome``)."""


class InvalidJob(InvalidInput):
    """A job field other than schedule or zone is invalid (empty name, oversized prompt, ...)."""


class ConfigError(InvalidInput):
    """``agent.toml`` has an unknown key, a value of the wrong type or an impossible value."""


class UnknownDestination(InvalidInput):
    """A job's ``deliver_to`` / ``alerts_to`` names a destination ``agent.toml`` does not
    declare (``[destinations.NAME]``), or an entry of no known form."""


class DuplicateJobName(InvalidInput):
    """The owner already has a job with this name; names are unique per owner."""


class LimitExceeded(InvalidInput):
    """A per-user limit (jobs per user, shortest repeat, prompt size) would be exceeded; the
    message names the limit and its setting."""


class DestinationNotAllowed(LimitExceeded):
    """A non-admin pointed a job at a destination an admin did not allow for them
    (``[destinations.NAME] users``) or at a chat other than the one they are writing from;
    nothing was written."""


class AmbiguousJobName(InvalidInput):
    """Several owners have a job with this name; name the owner or use the job's id."""


class NothingToSnooze(InvalidInput):
    """The job has no next fire to move: it is paused, ended, or a snooze would put its next
    fire past its ``end_at``; the message says which."""


class JobNotFound(StarpodCronError, LookupError):
    """No job has this id or name."""


class RunNotFound(StarpodCronError, LookupError):
    """No run has this id."""


class JobAlreadyRunning(StarpodCronError):
    """The job has a run in progress; a job never runs concurrently with itself."""


class RunNotRetryable(StarpodCronError):
    """The run cannot be retried in its state: it succeeded, is still running, was skipped or
    held, was retried already (a later attempt of its occurrence exists), or its job is busy
    (running, paused, another retry pending). A state conflict: HTTP 409."""


class RunNotRunning(StarpodCronError):
    """The run already finished, or another scheduler recovered it after its lease expired."""


class StoreUnavailable(StarpodCronError):
    """The database cannot be used: not a database, unreadable, unreachable, or (SQLite) its
    file was deleted or replaced while open. The message says which and what to do."""


class StoreLost(StoreUnavailable):
    """This process can never use the store again (its SQLite file was deleted or replaced
    while open): retrying a write cannot help, so writers give up at once."""


class DatabaseMissing(StoreUnavailable):
    """Opened with ``create=False`` (as read-only CLI commands do) and there is no database."""


class SchemaVersionError(StarpodCronError):
    """The database was written by a newer starpod-cron; upgrade before opening it."""


class JobError(Exception):
    """Raised by an executor to say how a failure should be retried.

    Any other exception from an executor is a transient failure retried with backoff.
    ``retry_after`` (seconds), when given, delays the next retry at least that long
    (e.g. an HTTP ``Retry-After`` header).
    """

    permanent: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientJobError(JobError):
    """A failure worth retrying (network error, rate limit, server error)."""


class ProviderSaturated(TransientJobError):
    """The model provider is saturated (HTTP 429, or 503): the scheduler holds back its calls
    to this executor and retries this run after ``retry_after`` seconds (1 s if not given),
    in the same attempt: nothing is recorded as failed and nobody is notified. Saturation
    that lasts past the job's timeout ends the run as ``timeout``, as any slow run."""


class ProviderHeld(JobError):
    """The model provider will not take this run before a time: its quota or billing refused
    it (HTTP 402, ``insufficient_quota``), or it asked to wait longer than the run has left.
    The scheduler hands the run back as ``held`` (not a failure, no retry used, nothing slept
    inside a timed attempt) and holds its job ``retry_after`` seconds (``[cron]
    quota_retry_secs`` when None); then the same occurrence runs with the same attempt."""


class PermanentJobError(JobError):
    """A failure that retrying cannot fix (bad request, missing model): retries are skipped."""

    permanent = True


class ModelNotFound(PermanentJobError):
    """The provider does not know the model asked (HTTP 404, or 400 saying so): the run asks
    the job's next ``fallback_models``, if any."""


class ProviderServerError(TransientJobError):
    """The provider failed with a server error (HTTP 5xx but 503): retried; on the run's last
    attempt the run asks the job's next ``fallback_models``, if any."""
