"""What a job field's declaration holds (:class:`JobField`); the declarations themselves are
the table in :mod:`starpod_cron.fields`."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, Final, Literal

from .bounds import Within
from .settings import StoreSettings

Who = Literal["user", "internal", "runtime"]
Storage = Literal["same", "flag", "ms", "secs_ms", "enum", "json", "schedule", "derived"]
"""How a field is kept in its column: as is; a boolean (an integer in SQLite); epoch ms of an
aware datetime; seconds as whole milliseconds (``timeout_secs`` in ``timeout_ms``); an enum's
value as text; compact JSON text; a schedule in three columns; or computed (no column)."""
Input = Literal["text", "int", "number", "bool", "choice", "duration", "time", "list"]
"""``list``: a list of text items (``list[str] | None``, kept as JSON), given by a repeatable
CLI option, cleared by its ``--no-...`` option (:attr:`JobField.clear_flag`)."""


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
    items: tuple[str, ...] = ()
    """A list field: the values each item may take (empty: any text)."""
    item_check: Callable[[str], str] | None = None
    """A ``list`` field's check of each entry (raises InvalidJob; returns it as kept)."""
    max_items: int = 20
    """A ``list`` field's most entries."""

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
        if base.startswith("list["):
            return "list"
        if base == "datetime":
            return "time"
        if base == "bool":
            return "bool"
        if base == "int":
            return "int"
        if base == "float":
            return "number"
        return "text"

    @property
    def clear_flag(self) -> str | None:
        """A list field's option giving it no items (``--no-tools``), beside its repeatable
        ``flag``."""
        if self.input != "list" or self.flag is None:
            return None
        return "--no-" + self.name.replace("_", "-")

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
        """The default in words, for help texts: ``[cron] default_max_retries, 3``."""
        if self.default_note is not None:
            return self.default_note
        if self.setting is not None:
            return f"[cron] {self.setting}, {words(self.default_value())}"
        return "required" if self.default is REQUIRED else words(self.default)


def words(value: object) -> str:
    """A default as a person reads it: ``true``, ``none``, ``skip``, ``7200``, ``0.5``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return f"{value:g}" if isinstance(value, float) else str(value)
