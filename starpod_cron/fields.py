"""Every field of a job, declared once: what it is, who may set it, its default and bounds, how
it is stored, shown and typed in. Everything else reads this table.

Iterate it to build a front end (the CLI's options, the dashboard's form)::

    from starpod_cron.fields import user_fields

    for f in user_fields():            # the fields a person or an agent may set
        f.name                         # "max_retries": the key in JSON, tools, [[jobs]], JobSpec
        f.flag, f.metavar              # "--retries", "N" (None: no CLI option of its own)
        f.input                        # "text" | "int" | "number" | "bool" | "choice"
                                       # | "duration" (seconds; people type 1h30m)
        f.choices                      # ("isolated", "main") for a choice, else ()
        f.help                         # one sentence for people and models alike
        f.default_text()               # "3 ([cron] default_max_retries)", "skip", ...
        f.rule                         # bounds.Within(0, 100, integer=True) or None
        f.widget                       # dashboard hint: text | textarea | number | select
                                       # | checkbox | duration
        f.on_add, f.on_update          # settable when adding / when updating (CLI, tools)

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

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from functools import cache
from typing import Any, Final, Literal

from .bounds import Within
from .models import MisfirePolicy, Overlap, RunStatus, SessionMode
from .settings import StoreSettings

Who = Literal["user", "internal", "runtime"]
Storage = Literal["same", "flag", "ms", "secs_ms", "enum", "json", "schedule", "derived"]
"""How a field is kept in its column: as is; a boolean (an integer in SQLite); epoch ms of an
aware datetime; seconds as whole milliseconds (``timeout_secs`` in ``timeout_ms``); an enum's
value as text; compact JSON text; a schedule in three columns; or computed (no column)."""
Input = Literal["text", "int", "number", "bool", "choice", "duration"]


class _Required(enum.Enum):
    REQUIRED = "REQUIRED"

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required.REQUIRED
"""The default of a field every new job must be given (name, prompt, schedule)."""


_SCHEDULE_COLUMNS = (
    ("schedule_kind", "str"),
    ("schedule_expr", "str"),
    ("schedule_anchor_ms", "int | None"),
)
_STORED_TYPES = {"flag": "bool", "ms": "int", "secs_ms": "int", "enum": "str", "json": "str"}


@dataclass(frozen=True, slots=True)
class JobField:
    """One field of a job (see the module doc)."""

    name: str
    annotation: str
    """The annotation on ``CronJob``, e.g. ``"int"``, ``"SessionMode"``, ``"str | None"``."""
    help: str
    who: Who = "runtime"
    default: Any = REQUIRED
    """A new job's value when none is given (runtime fields: the value of a new row)."""
    setting: str | None = None
    """The ``StoreSettings`` attribute giving the default (``JobSpec`` then defaults to None)."""
    rule: Within | None = None
    enum_type: type[enum.StrEnum] | None = None
    column: str | None = ""
    """The ``jobs`` column ("" for the field's name; None: no column of its own)."""
    storage: Storage = "same"
    public: bool = True
    """On ``CronJob`` (False: a column only)."""
    view: str | None = ""
    """The key in the JSON view of a job ("" for the field's name; None: not shown)."""
    flag: str | None = None
    metavar: str | None = None
    duration: bool = False
    """Seconds that people type as a duration (``10m``, ``1h30m``) in the CLI and the form."""
    toml: bool = True
    """A ``[[jobs]]`` key (user fields)."""
    on_add: bool = True
    on_update: bool = True
    widget_hint: str | None = None
    default_note: str | None = None
    """The default in words when a value cannot say it (``"true for 'in', else false"``)."""
    on_run: bool = False
    """Changed by claims and completions (written by ``update_job_runtime``)."""
    immutable: bool = False
    """Never changes after the job is created (``id``, ``created_at``)."""

    @property
    def column_name(self) -> str | None:
        return self.name if self.column == "" else self.column

    @property
    def view_key(self) -> str | None:
        return self.name if self.view == "" else self.view

    @property
    def choices(self) -> tuple[str, ...]:
        return () if self.enum_type is None else tuple(m.value for m in self.enum_type)

    def choices_text(self) -> str:
        """The choices for a message: ``'skip', 'queue' or 'allow'``."""
        quoted = [repr(c) for c in self.choices]
        return (
            " or ".join(quoted) if len(quoted) < 3 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        )

    @property
    def input(self) -> Input:
        if self.enum_type is not None:
            return "choice"
        if self.duration:
            return "duration"
        base = self.base_type
        if base == "bool":
            return "bool"
        if base == "int":
            return "int"
        if base == "float":
            return "number"
        return "text"

    @property
    def base_type(self) -> str:
        """The type without ``| None``."""
        return self.annotation.removesuffix(" | None")

    @property
    def nullable(self) -> bool:
        return self.annotation.endswith(" | None")

    @property
    def widget(self) -> str:
        if self.widget_hint is not None:
            return self.widget_hint
        return {
            "choice": "select",
            "bool": "checkbox",
            "int": "number",
            "number": "number",
            "duration": "duration",
        }.get(self.input, "text")

    def columns(self) -> tuple[tuple[str, str], ...]:
        """The ``(column, annotation)`` pairs the field is stored in (``JobRecord``)."""
        if self.storage == "schedule":
            return _SCHEDULE_COLUMNS
        column = self.column_name
        if column is None or self.storage == "derived":
            return ()
        base = _STORED_TYPES.get(self.storage, self.base_type)
        return ((column, base + (" | None" if self.nullable else "")),)

    def default_value(self) -> Any:
        """A new job's value when none is given, the setting's default included."""
        if self.setting is None:
            return self.default
        return next(s.default for s in dataclass_fields(StoreSettings) if s.name == self.setting)

    def default_text(self) -> str:
        """The default in words, for help texts: ``[cron] default_max_retries``."""
        if self.default_note is not None:
            return self.default_note
        if self.setting is not None:
            return f"[cron] {self.setting}"
        if self.default is REQUIRED:
            return "required"
        if self.default is None:
            return "none"
        if isinstance(self.default, enum.Enum):
            return str(self.default.value)
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)


def _user(name: str, type_: str, help_: str, **kw: Any) -> JobField:
    return JobField(name, type_, help_, who="user", **kw)


def _run(name: str, type_: str, help_: str, **kw: Any) -> JobField:
    return JobField(name, type_, help_, who="runtime", **kw)


def _whole(low: int, high: int) -> Within:
    return Within(low, high, integer=True)


MAX_RETRIES: Final = 100
MAX_TIMEOUT_SECS: Final = 30 * 86_400
MAX_JITTER_SECS: Final = 86_400
MAX_INSTANCES: Final = 1000

JOB_FIELDS: tuple[JobField, ...] = (
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
        "The user who owns the job (none: the agent itself). Admins only.",
        default=None,
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
