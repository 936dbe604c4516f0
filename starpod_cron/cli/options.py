"""The options of ``jobs add`` and ``jobs edit``, made from the one declaration of a job's fields
(:mod:`starpod_cron.fields`): each field's flag, metavar, type, choices, bounds, help and default
come from there, so a new field is an option here without an edit. By hand: the schedule (one of
``--cron``/``--every``/``--at``/``--in``/``--when``), the name and the prompt, ``--rename`` and
``jobs add --dry-run``."""

from __future__ import annotations

import argparse
from typing import Any

from ..fields import JobField, job_field, option_fields
from ..jobfields import JobFields, from_text
from ..schedules import format_duration_ms
from .argtypes import bounded_int


def schedule_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--cron",
        metavar="EXPR",
        help="cron expression: 5 fields (minute hour day month weekday) or 6 (SECONDS first), "
        'e.g. "0 9 * * 1-5"',
    )
    group.add_argument(
        "--every", metavar="DURATION", help="repeat at a fixed interval, e.g. 30s, 10m, 1h30m"
    )
    group.add_argument(
        "--at",
        metavar="TIME",
        help="once, at a time: ISO 8601 ('2026-12-01 09:00') or 'tomorrow 9:00', read in --tz",
    )
    group.add_argument(
        "--in",
        dest="in_",
        metavar="DURATION",
        help="once, after a delay, e.g. 20m (the job is deleted after it succeeds)",
    )
    group.add_argument(
        "--when",
        metavar="PHRASE",
        help="a schedule in words, e.g. 'every weekday at 9:00', 'every 30 minutes', "
        "'on the last day of every month at 17:00', 'tomorrow at 9' (see the README's "
        "table; the phrase becomes the description unless --description is given)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``jobs add NAME PROMPT`` and its options."""
    p.add_argument("name", help=_sentence(job_field("name").help))
    p.add_argument("prompt", help=_sentence(job_field("prompt").help))
    schedule_options(p, required=True)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only print what the job's runs would do (model, messages, tools, destinations, "
        "next 5 fires with DST notes, expected tokens and cost); save nothing",
    )
    field_options(p, update=False)


def edit_arguments(p: argparse.ArgumentParser) -> None:
    """``jobs edit NAME`` and its options, each optional."""
    p.add_argument("name", help="the job's name (or id)")
    prompt = job_field("prompt")
    p.add_argument(prompt.flag or "--prompt", help="a new prompt: " + _sentence(prompt.help))
    p.add_argument("--rename", metavar="NEW_NAME", help="a new name")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only print what the job's runs would do after the change (model, messages, "
        "tools, next fires, expected cost); save nothing",
    )
    schedule_options(p, required=False)
    field_options(p, update=True)


def field_options(p: argparse.ArgumentParser, *, update: bool) -> None:
    """One option per declared field that has a flag (``dest`` is the field's name)."""
    for f in option_fields(update=update):
        if f.flag is None:
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text(f)}
        if f.metavar is not None:
            kwargs["metavar"] = f.metavar
        if f.input == "bool":
            kwargs |= {"action": argparse.BooleanOptionalAction, "default": None}
        elif f.input == "choice":
            kwargs["choices"] = list(f.choices)
        elif f.input == "int" and f.rule is not None:
            kwargs["type"] = bounded_int(int(f.rule.low), int(f.rule.high))
        elif f.input == "number":
            kwargs["type"] = float
        elif f.input == "list":  # repeatable; its --no-... option gives it no items
            kwargs |= {"action": "append", "help": help_text(f) + "; repeatable"}
            clear = p.add_mutually_exclusive_group()
            clear.add_argument(f.flag, **kwargs)
            clear.add_argument(
                f.clear_flag or "", dest=f.name, action="store_const", const=[], help="none"
            )
            continue
        p.add_argument(f.flag, **kwargs)


def help_text(f: JobField) -> str:
    """The field's help, its bounds and its default: ``Retries after a failed run before
    giving up: 0 to 100 (default: [cron] default_max_retries, 3)``."""
    text = _sentence(f.help)
    if f.duration:
        text += ", typed as a duration, e.g. 10m or 1h30m" + (
            "; 0 for none" if _zero_allowed(f) else ""
        )
    elif f.rule is not None and f.input == "int":
        text += f", {f.rule.low:g}-{f.rule.high:g}"
    return f"{text} (default: {_default(f)})"


def _sentence(help_: str) -> str:
    """A declared help sentence as argparse shows help: lower-case first, no full stop."""
    text = help_.rstrip(".")
    first = text.split(" ", 1)[0]
    return text if len(first) > 1 and first.isupper() else text[:1].lower() + text[1:]


def _default(f: JobField) -> str:
    if f.setting is None or f.default_note is not None:
        return f.default_text()
    value = f.default_value()
    if f.duration:
        value = format_duration_ms(round(value * 1000)) if value else "0"
    return f"[cron] {f.setting}, {value}"


def _zero_allowed(f: JobField) -> bool:
    return f.rule is None or (f.rule.low <= 0 and not f.rule.above)


def fields_from(args: argparse.Namespace, *, name: str | None = None) -> JobFields:
    """What the options say, as the fields every front end hands to the operations (an option
    not given is None: not given)."""
    given = {f.name: _value(f, getattr(args, f.name, None)) for f in option_fields(update=True)}
    given |= {f.name: _value(f, getattr(args, f.name, None)) for f in option_fields()}
    return JobFields(
        name=name,
        prompt=args.prompt,
        cron=args.cron,
        every=args.every,
        at=args.at,
        in_=args.in_,
        when=args.when,
        rename=getattr(args, "rename", None),
        **{k: v for k, v in given.items() if v is not None},
    )


def _value(f: JobField, raw: Any) -> Any:
    """A value typed by a person (a duration such as ``10m`` in seconds, ``0`` for none; a
    number; a time) read as every front end reads it; what argparse already typed, as is."""
    if not isinstance(raw, str):
        return raw
    return from_text(f, raw)
