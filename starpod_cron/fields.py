"""Every field of a job, declared once: what it is, who may set it, its default and bounds, how
it is stored, shown and typed in. Everything else reads this table.

Iterate it to build a front end (the CLI's options, the dashboard's form)::

    from starpod_cron.fields import option_fields

    for f in option_fields():          # what a front end offers as options when adding a job
                                       # (update=True: when changing one); user_fields() adds
                                       # name, prompt and schedule, which are read by hand
        f.name                         # "max_retries": the key in JSON, tools, [[jobs]], JobSpec
        f.flag, f.metavar              # "--retries", "N" (None: no CLI option of its own)
        f.input                        # "text" | "int" | "number" | "bool" | "choice"
                                       # | "duration" (seconds; people type 1h30m)
                                       # | "time" (an instant; people type ISO 8601)
        f.choices                      # ("isolated", "main") for a choice, else ()
        f.help                         # one sentence for people and models alike
        f.default_text()               # "[cron] default_max_retries, 3", "skip", ...
        f.rule                         # bounds.Within(0, 100, integer=True) or None
        f.widget                       # dashboard hint: text | textarea | number | select
                                       # | checkbox | duration
        f.on_add, f.on_update          # settable when adding / when updating (CLI, tools)

    jobfields.from_text(f, "1h30m")    # a typed value -> the field's value (InvalidInput)
    JobFields(**{f.name: value})       # what a person gave -> jobfields.job_spec/job_update

:func:`options_json` gives the same listing as JSON (for the dashboard's form).
``JOB_FIELDS`` is every field in the order of :class:`~starpod_cron.models.CronJob` (and of the
``jobs`` table's columns); :func:`job_field` finds one by name.

Who sets a field (``who``): ``user`` (``JobSpec``, ``JobUpdate`` and every front end),
``internal`` (given by the program when a job is created, e.g. ``origin``: ``JobSpec`` only) or
``runtime`` (kept by the store as the job runs: ``CronJob`` only). A field with ``public=False``
is a column only (bookkeeping the store keeps, never shown).

The dataclasses that mypy must see (``CronJob``, ``JobUpdate``, ``JobSpec``, ``JobRecord``,
``JobFields``) are generated from this table into marked blocks of their modules by
``python -m starpod_cron.fieldgen``; ``tests/test_fields.py`` fails while a block is stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any, Final

from .bounds import Within
from .destfields import DEST_FIELDS
from .execfields import EXEC_FIELDS
from .fieldspec import REQUIRED, Input, JobField, Storage, Who
from .jitter import MAX_JITTER_SECS
from .models import MisfirePolicy, Overlap, RunStatus, SessionMode
from .pacefields import PACE_FIELDS
from .policyfields import POLICY_FIELDS
from .settings import MAX_RETRIES, MAX_TIMEOUT_SECS
from .spendfields import SPEND_FIELDS

__all__ = [
    "JOB_FIELDS",
    "REQUIRED",
    "Input",
    "JobField",
    "Storage",
    "Who",
    "job_field",
    "option_fields",
    "options_json",
    "public_fields",
    "settable_fields",
    "user_fields",
]


def _user(name: str, type_: str, help_: str, **kw: Any) -> JobField:
    return JobField(name, type_, help_, who="user", **kw)


def _run(name: str, type_: str, help_: str, **kw: Any) -> JobField:
    return JobField(name, type_, help_, who="runtime", **kw)


def _whole(low: int, high: int) -> Within:
    return Within(low, high, integer=True)


MAX_INSTANCES: Final = 1000

_BASE_FIELDS: tuple[JobField, ...] = (
    _run("id", "str", "The job's id: 32 lowercase hex characters.", immutable=True),
    _user(
        "name",
        "str",
        "A short name, unique for its owner, without '/', '\\' or control characters.",
        widget_hint="text",
    ),
    _user(
        "prompt",
        "str",
        "What the agent is asked to do at each run, written as an instruction.",
        flag="--prompt",
        widget_hint="textarea",
    ),
    _user(
        "schedule",
        "Schedule",
        "When the job fires: a cron expression, an interval or one time.",
        column=None,
        storage="schedule",
    ),
    _user(
        "enabled",
        "bool",
        "false pauses the job.",
        default=True,
        storage="flag",
        on_add=False,
        on_run=True,
    ),
    _user(
        "delete_after_run",
        "bool",
        "For a one-time job: delete it after it succeeds (else it is disabled).",
        default=False,
        default_note="true for 'in', false for 'at'",
        storage="flag",
        flag="--delete-after-run",
        toml=False,
    ),
    _user(
        "timezone",
        "str",
        'IANA time zone such as "Europe/Rome", in which times and cron expressions are read.',
        setting="default_timezone",
        default_note="the user's own zone, else [cron] timezone",
        flag="--tz",
        metavar="ZONE",
    ),
    _run("created_at", "datetime", "When the job was created.", storage="ms", immutable=True),
    _run("updated_at", "datetime", "When the job last changed.", storage="ms", on_run=True),
    _run(
        "last_run_at",
        "datetime | None",
        "When its last run started.",
        default=None,
        storage="ms",
        view="last_run",
        on_run=True,
    ),
    _run(
        "next_run_at",
        "datetime | None",
        "The time of its next occurrence (without jitter).",
        default=None,
        storage="ms",
        view=None,
        on_run=True,
    ),
    _run("retry_count", "int", "Retries used since the last success.", default=0, on_run=True),
    _user(
        "max_retries",
        "int",
        "Retries after a failed run before giving up.",
        setting="default_max_retries",
        rule=_whole(0, MAX_RETRIES),
        flag="--retries",
        metavar="N",
    ),
    _run(
        "last_error", "str | None", "The error of its last failed run.", default=None, on_run=True
    ),
    _run(
        "retry_at",
        "datetime | None",
        "When the pending retry runs.",
        default=None,
        storage="ms",
        on_run=True,
    ),
    _run(
        "retry_scheduled_for",
        "int | None",
        "The occurrence the pending retry repeats (epoch ms).",
        default=None,
        public=False,
        view=None,
        on_run=True,
    ),
    _run(
        "retry_attempt",
        "int",
        "The attempt number of the pending retry.",
        default=0,
        public=False,
        view=None,
        on_run=True,
    ),
    _user(
        "timeout_secs",
        "float",
        "A run taking longer than this many seconds is stopped and recorded as timed out.",
        setting="default_timeout_secs",
        rule=Within(0, MAX_TIMEOUT_SECS, above=True, note="30 days"),
        column="timeout_ms",
        storage="secs_ms",
        flag="--timeout",
        metavar="DURATION",
        duration=True,
    ),
    _user(
        "session_mode",
        "SessionMode",
        "isolated: every run starts fresh; main: runs continue the user's one conversation "
        "with the agent.",
        default=SessionMode.ISOLATED,
        enum_type=SessionMode,
        storage="enum",
        flag="--session",
    ),
    _user(
        "user_id",
        "str | None",
        "The user who owns the job. Admins only.",
        default=None,
        default_note="the agent itself (no user)",
        flag="--user",
        metavar="ID",
        toml=False,
    ),
    _user(
        "misfire_policy",
        "MisfirePolicy",
        "Fires missed while no scheduler ran: run_once runs one catch-up; skip records them "
        "as skipped.",
        default=MisfirePolicy.RUN_ONCE,
        enum_type=MisfirePolicy,
        storage="enum",
        flag="--misfire",
    ),
    _run(
        "last_status",
        "RunStatus | None",
        "How its last run ended.",
        default=None,
        enum_type=RunStatus,
        storage="enum",
        on_run=True,
    ),
    _run("run_count", "int", "Runs recorded for the job.", default=0, on_run=True),
    _run(
        "running_run_id",
        "str | None",
        "A run of the job in flight now.",
        default=None,
        view=None,
        on_run=True,
    ),
    JobField(
        "origin",
        "dict[str, Any] | None",
        "Where the job was created (e.g. a Telegram chat), for routing its results.",
        who="internal",
        default=None,
        storage="json",
        view=None,
        toml=False,
    ),
    _user(
        "description",
        "str | None",
        "What the job is for, for people.",
        default=None,
        flag="--description",
        metavar="TEXT",
    ),
    _user(
        "jitter_secs",
        "float",
        "Fire each occurrence up to this many seconds late (a fixed offset per occurrence), "
        "to spread jobs that share a time.",
        setting="jitter_secs",
        rule=Within(0, MAX_JITTER_SECS, note="a day"),
        column="jitter_ms",
        storage="secs_ms",
        flag="--jitter",
        metavar="DURATION",
        duration=True,
    ),
    _run(
        "fire_offset_ms",
        "int",
        "The jitter of the next occurrence (see starpod_cron.jitter).",
        default=0,
        public=False,
        view=None,
        on_run=True,
    ),
    _run(
        "next_fire_at",
        "datetime | None",
        "When the next occurrence actually fires: its time plus its jitter.",
        default=None,
        column=None,
        storage="derived",
        view="next_run",
    ),
    _user(
        "overlap",
        "Overlap",
        "Fires due while a run is still going: skip collapses them into one catch-up run; "
        "queue runs each afterwards, in order; allow runs them alongside, up to max_instances.",
        default=Overlap.SKIP,
        enum_type=Overlap,
        storage="enum",
        flag="--overlap",
    ),
    _user(
        "max_instances",
        "int",
        "With overlap allow: runs of the job at once.",
        default=1,
        rule=_whole(1, MAX_INSTANCES),
        flag="--max-instances",
        metavar="N",
    ),
    _run(
        "running_count",
        "int",
        "Runs of the job in flight now.",
        default=0,
        view="running",
        on_run=True,
    ),
)
JOB_FIELDS: tuple[JobField, ...] = (
    *_BASE_FIELDS,
    *POLICY_FIELDS,
    *EXEC_FIELDS,
    *SPEND_FIELDS,
    *DEST_FIELDS,
    *PACE_FIELDS,
)

SPECIAL_INPUTS: Final = frozenset({"name", "prompt", "schedule"})
"""User fields every front end reads by hand: ``name`` (also ``rename``), ``prompt`` (an
argument of ``jobs add``) and ``schedule`` (typed as one of ``cron``/``every``/``at``/``in``)."""

FIRST_DEFAULTED: Final = "origin"
"""On ``CronJob`` the fields from this one on have defaults (new fields go last, with one)."""


@cache
def _by_name() -> dict[str, JobField]:
    return {f.name: f for f in JOB_FIELDS}


def job_field(name: str) -> JobField:
    """The field called ``name``; KeyError for an unknown one."""
    return _by_name()[name]


def user_fields() -> Iterator[JobField]:
    """The fields a person or an agent may set, in declaration order."""
    return (f for f in JOB_FIELDS if f.who == "user")


def option_fields(*, update: bool = False) -> Iterator[JobField]:
    """The user fields front ends offer as options of their own (every user field but
    name, prompt and schedule), when adding a job, or with ``update`` when changing one."""
    for f in user_fields():
        if f.name not in SPECIAL_INPUTS and (f.on_update if update else f.on_add):
            yield f


def settable_fields() -> Iterator[JobField]:
    """The fields a ``JobSpec`` holds: user and internal ones."""
    return (f for f in JOB_FIELDS if f.who != "runtime")


def public_fields() -> Iterator[JobField]:
    """The fields of ``CronJob``, in its order."""
    return (f for f in JOB_FIELDS if f.public)


def options_json(*, update: bool = False) -> list[dict[str, Any]]:
    """The options of :func:`option_fields` as JSON, for a form built in a browser (the
    dashboard's add and edit forms): name, input kind, widget, choices, bounds, help,
    default in words, and the CLI flag."""
    listed: list[dict[str, Any]] = []
    for f in option_fields(update=update):
        rule = f.rule
        listed.append(
            {
                "name": f.name,
                "input": f.input,
                "widget": f.widget,
                "choices": list(f.choices),
                "min": None if rule is None else rule.low,
                "min_exclusive": bool(rule and rule.above),
                "max": None if rule is None else rule.high,
                "nullable": f.nullable,
                "help": f.help,
                "default": f.default_text(),
                "flag": f.flag,
            }
        )
    return listed
