"""The fields of a job's run policies, declared like every other field (the table is
:data:`starpod_cron.fields.JOB_FIELDS`, which appends these): what a run says (``notify``,
silent answers), what it remembers (``context``) and when the job stops by itself
(``pause_after_failures``, ``start_at``, ``end_at``, ``max_runs``, ``stale_after_secs``), with
the bookkeeping the store keeps for them."""

from __future__ import annotations

from typing import Any, Final

from .bounds import Within
from .fieldspec import JobField
from .models import ContextMode, NotifyPolicy
from .settings import MAX_TIMEOUT_SECS

MAX_PAUSE_AFTER: Final = 1000
MAX_RUNS: Final = 1_000_000_000


def user(name: str, type_: str, help_: str, **kw: Any) -> JobField:
    return JobField(name, type_, help_, who="user", **kw)


def kept(name: str, type_: str, help_: str, **kw: Any) -> JobField:
    """A field the store keeps as runs end (``on_run``)."""
    return JobField(name, type_, help_, who="runtime", on_run=True, **kw)


def whole(low: int, high: int) -> Within:
    return Within(low, high, integer=True)


POLICY_FIELDS: tuple[JobField, ...] = (
    user(
        "notify",
        "NotifyPolicy",
        "Which runs are delivered: always; on_failure (failures, and the first success after "
        "one); on_change (a result different from the last delivered one); never (history only).",
        default=NotifyPolicy.ALWAYS,
        enum_type=NotifyPolicy,
        storage="enum",
        flag="--notify",
    ),
    user(
        "context",
        "ContextMode",
        "last: each run is given the job's previous successful result and its time; none: "
        "every run starts from nothing.",
        default=ContextMode.NONE,
        enum_type=ContextMode,
        storage="enum",
        flag="--context",
    ),
    user(
        "pause_after_failures",
        "int",
        "Pause the job after this many failed or timed-out runs in a row (0: never).",
        setting="pause_after_failures",
        rule=whole(0, MAX_PAUSE_AFTER),
        flag="--pause-after-failures",
        metavar="N",
    ),
    user(
        "start_at",
        "datetime | None",
        "No fire before this time (an interval keeps its anchor).",
        default=None,
        storage="ms",
        flag="--start-at",
        metavar="TIME",
    ),
    user(
        "end_at",
        "datetime | None",
        "No fire after this time; then the job is disabled (paused_reason 'ended').",
        default=None,
        storage="ms",
        flag="--end-at",
        metavar="TIME",
    ),
    user(
        "max_runs",
        "int | None",
        "Runs the job makes (counting runs that ended: success, failed, timeout); then it is "
        "disabled.",
        default=None,
        default_note="no limit",
        rule=whole(1, MAX_RUNS),
        flag="--max-runs",
        metavar="N",
    ),
    user(
        "stale_after_secs",
        "float | None",
        "A run that would start later than this after its fire time is skipped, with one "
        "message per stretch of such skips.",
        default=None,
        default_note="never stale",
        rule=Within(0, MAX_TIMEOUT_SECS, above=True, note="30 days"),
        column="stale_after_ms",
        storage="secs_ms",
        flag="--stale-after",
        metavar="DURATION",
        duration=True,
    ),
    kept(
        "consecutive_failures",
        "int",
        "Failed or timed-out runs in a row (after retries), since the last success.",
        default=0,
    ),
    kept(
        "paused_reason",
        "str | None",
        "Why the job was disabled by itself (failures in a row, ended, max_runs reached).",
        default=None,
    ),
    kept(
        "finished_runs",
        "int",
        "Occurrences whose last attempt ended (success, failed, timeout): counted by max_runs.",
        default=0,
    ),
    kept("silent_runs", "int", "Runs that answered the silent token.", default=0),
    kept(
        "suppressed_runs",
        "int",
        "Runs whose result its notify policy did not deliver.",
        default=0,
    ),
    kept(
        "notify_hash",
        "str | None",
        "The hash of the last delivered result (notify on_change compares with it).",
        default=None,
        public=False,
        view=None,
    ),
    kept(
        "previous_result",
        "str | None",
        "The last successful result, kept for a job with context last.",
        default=None,
        public=False,
        view=None,
    ),
    kept(
        "previous_result_at",
        "int | None",
        "When that result's run ended (epoch ms).",
        default=None,
        public=False,
        view=None,
    ),
    kept(
        "stale_streak",
        "int",
        "Stale skips in a row (the owner is told once, at the first of a stretch).",
        default=0,
        public=False,
        view=None,
    ),
)
