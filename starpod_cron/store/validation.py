"""Validation of job fields, shared by every backend; each failure says what to change.

A field is checked by its declaration (:mod:`starpod_cron.fields`): its kind, choices and
bounds; the few with rules of their own (name, prompt, timezone, user_id, origin, description)
register them here with ``@_special``. :func:`spec_columns` and :func:`update_columns` turn a
``JobSpec`` / ``JobUpdate`` into checked column values."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, TypeVar

from ..bounds import Within
from ..errors import InvalidInput, InvalidJob, InvalidSchedule
from ..fields import JobField, settable_fields, user_fields
from ..inputrules import name_problem, text_problem
from ..models import JobUpdate, MisfirePolicy, Overlap, _Unset
from ..schedules import Interval, OneShot, Schedule
from ..settings import StoreSettings
from ..timeutil import check_zone, from_ms, to_ms
from .occurrences import first_in_window
from .types import JobSpec

MAX_PROMPT_BYTES = 64 * 1024
MAX_USER_ID_CHARS = 200
MAX_DESCRIPTION_CHARS = 1000


def _text(field: str, value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise InvalidJob(f"{field} {problem}")
    return value


_Check = TypeVar("_Check", bound=Callable[[object], object])
_SPECIAL: dict[str, Callable[[object], object]] = {}
"""Fields whose check is their own (filled below): every other field is checked by its kind."""


def _special(*names: str) -> Callable[[_Check], _Check]:
    def register(check: _Check) -> _Check:
        for field_name in names:
            _SPECIAL[field_name] = check
        return check

    return register


@_special("name")
def name(value: object) -> str:
    """The one rule for job names (:func:`starpod_cron.inputrules.name_problem`)."""
    if not isinstance(value, str):
        raise InvalidJob("job name must be a non-empty string")
    problem = name_problem(value)
    if problem is not None:
        raise InvalidJob(problem)
    return value


@_special("description")
def description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidJob("description must be text")
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise InvalidJob(
            f"description is {len(value)} characters; the limit is {MAX_DESCRIPTION_CHARS}"
        )
    return _text("description", value) or None


@_special("prompt")
def prompt(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidJob("prompt must be a non-empty string")
    _text("prompt", value)
    size = len(value.encode("utf-8"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidJob(f"prompt is {size} bytes; the limit is {MAX_PROMPT_BYTES} (64 KiB)")
    return value


def schedule(value: object) -> Schedule:
    if not isinstance(value, Schedule):
        raise InvalidSchedule(
            "schedule must be Schedule.cron(...), Schedule.interval(...) or Schedule.one_shot(...)"
        )
    return value


@_special("timezone")
def timezone(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidJob("timezone must be an IANA zone name such as 'Europe/Rome'")
    return check_zone(_text("timezone", value))


def overlap_rules(overlap_value: str, instances: int, misfire: str) -> None:
    """The combinations that contradict each other."""
    if instances > 1 and overlap_value != Overlap.ALLOW.value:
        raise InvalidJob(
            f"max_instances = {instances} needs overlap = 'allow' (with overlap = "
            f"{overlap_value!r} a job never runs alongside itself)"
        )
    if overlap_value == Overlap.QUEUE.value and misfire == MisfirePolicy.SKIP.value:
        raise InvalidJob(
            "overlap = 'queue' runs every missed fire, misfire_policy = 'skip' drops them: "
            "choose one (misfire_policy = 'run_once' with queue)"
        )


@_special("user_id")
def user_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_USER_ID_CHARS:
        raise InvalidJob(f"user_id must be None or a non-empty string, got {value!r}")
    return _text("user_id", value)


@_special("origin")
def origin(value: object) -> str | None:
    """A job's origin as stored (compact JSON), e.g. ``{"telegram_chat_id": 1}``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidJob("origin must be a JSON object (a dict) or None")
    try:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"origin must be JSON-serializable: {exc}") from exc
    if len(text) > 4096:
        raise InvalidJob("origin is too large (limit 4 KiB of JSON)")
    return text


def flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidJob(f"{field} must be True or False, got {value!r}")
    return value


Check = Callable[[object], object]
"""A field's check: its value in, what its column holds out (or InvalidJob)."""


def checker(f: JobField) -> Check:
    """The check of field ``f``, worked out from its declaration once (a batch add checks
    every field of tens of thousands of specs, so nothing of the declaration is read per
    value): its own rule if it has one; else None passes when the field may be None, then
    its kind decides (a flag, a choice, an instant, a number, text)."""
    special = _SPECIAL.get(f.name)
    if special is not None:
        return special
    check = _kind_check(f)
    if not f.nullable:
        return check

    def optional(value: object) -> object:
        return None if value is None else check(value)

    return optional


def _kind_check(f: JobField) -> Check:
    name = f.name
    if f.storage == "flag":
        return functools.partial(flag, name)
    if f.enum_type is not None:
        return _choice_check(f)
    if f.storage == "ms":
        return functools.partial(_instant, name)
    if f.input == "list":
        return _list_check(f)
    if f.input in ("int", "number", "duration"):
        number = _number_check(f)
        if f.storage != "secs_ms":
            return number
        least = 1 if f.rule and f.rule.above else None  # above 0 s stays above 0 ms

        def secs_ms(value: object) -> int:
            ms = round(number(value) * 1000)
            return ms if least is None else max(least, ms)

        return secs_ms

    def text(value: object) -> str:
        if not isinstance(value, str):
            raise InvalidJob(f"{name} must be text, got {value!r}")
        return _text(name, value)

    return text


MAX_ITEM_CHARS = 200


def _list_check(f: JobField) -> Check:
    """A list of text items as its column keeps it (compact JSON): blank items left out,
    repeats kept once in the order given, each one of ``f.items`` when it declares them (the
    message lists them) and checked by ``f.item_check`` when it has one; at most
    ``f.max_items``."""
    name, allowed, each, most = f.name, frozenset(f.items), f.item_check, f.max_items

    def items(value: object) -> str:
        if not isinstance(value, list | tuple):
            raise InvalidJob(f"{name} must be a list of strings, got {value!r}")
        kept: list[str] = []
        for item in value:
            if not isinstance(item, str) or len(item) > MAX_ITEM_CHARS:
                raise InvalidJob(
                    f"{name}: each item must be text of at most {MAX_ITEM_CHARS} characters, "
                    f"got {item!r}"
                )
            item = _text(name, item.strip())
            if not item:
                continue
            if allowed and item not in allowed:
                raise InvalidJob(f"{name}: unknown {item!r}; known: {', '.join(f.items)}")
            if each is not None:
                item = each(item)
            if item not in kept:
                kept.append(item)
        if len(kept) > most:
            raise InvalidJob(f"{name} takes at most {most} items, got {len(kept)}")
        return json.dumps(kept, separators=(",", ":"))

    return items


def _bounds(rule: Within) -> str:
    low, high = (str(int(x)) if float(x).is_integer() else str(x) for x in (rule.low, rule.high))
    if rule.integer:
        return f"an integer from {low} to {high}"
    if rule.above:
        return f"a number above {low} and at most {high}"
    return f"a number from {low} to {high}" + (f" ({rule.note})" if rule.note else "")


def _number_check(f: JobField) -> Callable[[object], float]:
    name, rule = f.name, f.rule
    kinds: type | tuple[type, ...] = int if f.input == "int" else (int, float)
    wanted = _bounds(rule) if rule is not None else f"a number ({f.input})"

    def number(value: object) -> float:
        ok = isinstance(value, kinds) and not isinstance(value, bool)
        if ok and rule is not None:
            assert isinstance(value, int | float)
            ok = math.isfinite(value) and (value > rule.low if rule.above else value >= rule.low)
            ok = ok and value <= rule.high
        if not ok:
            raise InvalidJob(f"{name} must be {wanted}, got {value!r}")
        assert isinstance(value, int | float)
        return value

    return number


def _choice_check(f: JobField) -> Callable[[object], str]:
    name, choices = f.name, frozenset(f.choices)

    def choice(value: object) -> str:
        if value not in choices:
            raise InvalidJob(f"{name} must be {f.choices_text()}, got {value!r}")
        return str(value)

    return choice


def _instant(name: str, value: object) -> int:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidJob(f"{name} must be an aware datetime, got {value!r}")
    return to_ms(value)


def stored(f: JobField, value: object) -> object:
    """``value`` of field ``f`` checked and turned into what its column holds (seconds into
    milliseconds, an enum into its text); InvalidJob says what to change. None passes for a
    field that may be None."""
    return checker(f)(value)


SpecColumns = Callable[[JobSpec], dict[str, Any]]

_last_settings: tuple[StoreSettings | None, SpecColumns | None] = (None, None)
"""The settings :func:`spec_columns` was last given, and its columns function for them."""


def spec_columns(spec: JobSpec, settings: StoreSettings) -> dict[str, Any]:
    """The columns of every declared field ``spec`` sets (but the schedule), checked; a field
    left None takes its ``[cron]`` default. Raises before anything is written."""
    global _last_settings
    held, columns = _last_settings
    if held is not settings or columns is None:  # settings are frozen: the same object, the
        columns = _columns_for(settings)  # same defaults
        _last_settings = (settings, columns)
    return columns(spec)


def _columns_for(settings: StoreSettings) -> SpecColumns:
    """:func:`spec_columns` for ``settings``: their ``[cron]`` defaults checked once, not once
    per spec left to them (a batch of 20,000 specs checked them 100,000 times). A default they
    refuse is refused as before: at its field, by the spec that is left to it."""
    full = _spec_columns()
    try:
        defaults = tuple(check(getattr(settings, setting)) for setting, check in _defaulted())
    except InvalidInput:
        return lambda spec: full(spec, settings)
    return functools.partial(_spec_columns_defaulted(), defaults=defaults)


@functools.cache
def _defaulted() -> tuple[tuple[str, Check], ...]:
    """The ``[cron]`` setting and check of each field that takes a default, in order."""
    return tuple((setting, check) for _, _, setting, check in _spec_plan() if setting is not None)


@functools.cache
def _spec_columns() -> Callable[[JobSpec, StoreSettings], dict[str, Any]]:
    """:func:`spec_columns` written out from the declaration once, as ``dataclasses`` writes
    ``__init__`` (a batch add checks tens of thousands of specs: no loop, no ``getattr`` per
    field): ``{"name": check_0(spec.name), ...}``, each field in declaration order, so the
    first field refused is the one a loop would refuse."""
    return _written("spec, settings", from_settings=True)


@functools.cache
def _spec_columns_defaulted() -> Callable[..., dict[str, Any]]:
    """:func:`_spec_columns` with the defaults checked beforehand (``defaults``, in the order
    of :func:`_defaulted`): a field left None takes its checked default, unchecked again."""
    return _written("spec, *, defaults", from_settings=False)


def _written(args: str, *, from_settings: bool) -> Callable[..., dict[str, Any]]:
    """The columns function taking ``args``: a field left None reads its default from
    ``settings`` and checks it (``from_settings``), or takes it from ``defaults``, checked."""
    scope: dict[str, Any] = {}
    items = []
    d = 0
    for i, (name, column, setting, check) in enumerate(_spec_plan()):
        scope[f"check_{i}"] = check
        value = f"check_{i}(spec.{name})"
        if setting is not None and from_settings:
            value = f"check_{i}(settings.{setting} if spec.{name} is None else spec.{name})"
        elif setting is not None:
            value = f"(defaults[{d}] if spec.{name} is None else {value})"
            d += 1
        items.append(f"{column!r}: {value}")
    source = f"def spec_columns({args}):\n    return {{" + ", ".join(items) + "}\n"
    exec(source, scope)  # built above from the declaration (identifiers), never from input
    written: Callable[..., dict[str, Any]] = scope["spec_columns"]
    return written


@functools.cache
def _spec_plan() -> tuple[tuple[str, str, str | None, Check], ...]:
    """Each settable field with a column: its name, column, ``[cron]`` setting and check."""
    return tuple(
        (f.name, column, f.setting, checker(f))
        for f in settable_fields()
        if f.storage != "schedule" and (column := f.column_name) is not None
    )


def update_columns(update: JobUpdate, *, skip: Collection[str] = ()) -> dict[str, Any]:
    """The columns ``update`` changes (the fields it leaves UNSET, and those in ``skip``,
    left out), checked."""
    values: dict[str, Any] = {}
    for name, column, check in _update_plan():
        value = getattr(update, name)
        if isinstance(value, _Unset) or name in skip:
            continue
        values[column] = check(value)
    return values


@functools.cache
def _update_plan() -> tuple[tuple[str, str, Check], ...]:
    """What :func:`update_columns` walks: each user field with a column, its column and
    check."""
    return tuple(
        (f.name, column, checker(f)) for f in user_fields() if (column := f.column_name) is not None
    )


def first_fire(sched: Schedule, tz: str, now_ms: int) -> tuple[Schedule, int]:
    """Anchor an interval at ``now_ms`` if needed and compute the first fire after now."""
    if isinstance(sched, Interval):
        sched = sched.anchored(now_ms)
    nxt = sched.next_run(from_ms(now_ms), tz)
    if nxt is None:
        if isinstance(sched, OneShot):
            raise InvalidSchedule(
                f"one-shot time {sched.at!r} is in the past (now is {from_ms(now_ms).isoformat()})"
            )
        raise InvalidSchedule(f"schedule {sched.describe()!r} never fires")
    return sched, to_ms(nxt)


def window_order(start_at: int | None, end_at: int | None) -> None:
    """InvalidSchedule when a job's ``end_at`` is not after its ``start_at``."""
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise InvalidSchedule(
            f"end_at ({from_ms(end_at).isoformat()}) must be after start_at "
            f"({from_ms(start_at).isoformat()})"
        )


def window_first(
    sched: Schedule, tz: str, now_ms: int, first: int, start_at: int | None, end_at: int | None
) -> int:
    """A new job's first fire within ``[start_at, end_at]`` (``first``, its first fire after
    now, when it has no window); InvalidSchedule when none is (an end in the past, or before
    the schedule's first fire)."""
    if start_at is None and end_at is None:
        return first  # no window: nothing to work out again (every add goes through here)
    window_order(start_at, end_at)
    found = first_in_window(sched, tz, now_ms, start_at, end_at)
    if found is not None:
        return found
    if end_at is None:  # a one-shot before its start_at
        assert start_at is not None
        when = f"at or after start_at ({from_ms(start_at).isoformat()}): give an earlier start_at"
    else:
        when = f"before end_at ({from_ms(end_at).isoformat()}): give a later end_at"
    raise InvalidSchedule(f"{sched.describe()} has no fire {when}, or none")
