"""The options of ``jobs add`` and ``jobs edit`` come from the one declaration of a job's fields
(:mod:`starpod_cron.fields`): each declared flag is there with the field's choices and bounds,
its value reaches the same field, and a field added to the declaration becomes an option
without an edit in the CLI."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

import starpod_cron.fields as declared_fields
from starpod_cron.cli.main import build_parser
from starpod_cron.cli.options import fields_from
from starpod_cron.fields import JobField, option_fields
from starpod_cron.models import Overlap


def _subparser(command: str) -> argparse.ArgumentParser:
    top = build_parser()
    groups = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    jobs = groups.choices["jobs"]
    commands = next(a for a in jobs._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = commands.choices[command]
    return parser


def _options(command: str) -> dict[str, argparse.Action]:
    return {o: a for a in _subparser(command)._actions for o in a.option_strings}


@pytest.mark.parametrize(("command", "update"), [("add", False), ("edit", True)])
def test_every_declared_flag_is_an_option_with_the_fields_choices_and_bounds(
    command: str, update: bool
) -> None:
    options = _options(command)
    declared = [f for f in option_fields(update=update) if f.flag is not None]
    assert declared, "the declaration names no flags"
    for f in declared:
        action = options[f.flag]  # type: ignore[index]
        assert action.dest == f.name and action.help, f.name
        if f.choices:
            assert list(action.choices or []) == list(f.choices)
    assert options["--max-instances"].type("1000") == 1000  # type: ignore[operator,misc]
    with pytest.raises(argparse.ArgumentTypeError, match="must be from 1 to 1000"):
        options["--max-instances"].type("1001")  # type: ignore[operator,misc]


def test_each_option_reaches_its_field() -> None:
    args = build_parser().parse_args(
        ["jobs", "add", "n", "p", "--every", "1h", "--retries", "7", "--timeout", "1h30m",
         "--session", "main", "--no-delete-after-run", "--jitter", "0", "--overlap", "allow",
         "--max-instances", "3", "--description", "d", "--user", "u", "--misfire", "skip",
         "--tz", "Europe/Rome"]
    )  # fmt: skip
    fields = fields_from(args, name=args.name)
    assert (fields.name, fields.prompt, fields.every) == ("n", "p", "1h")
    assert (fields.max_retries, fields.timeout_secs, fields.session_mode) == (7, 5400.0, "main")
    assert (fields.delete_after_run, fields.jitter_secs, fields.overlap) == (False, 0.0, "allow")
    assert (fields.max_instances, fields.description, fields.user_id) == (3, "d", "u")
    assert (fields.misfire_policy, fields.timezone) == ("skip", "Europe/Rome")
    unset = fields_from(build_parser().parse_args(["jobs", "edit", "n"]))
    assert all(getattr(unset, f.name) is None for f in option_fields(update=True))


def test_a_field_added_to_the_declaration_is_an_option_without_an_edit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new = JobField(
        "speak_when",
        "Overlap",
        "When the run's result is sent.",
        who="user",
        default=Overlap.SKIP,
        enum_type=Overlap,
        storage="enum",
        flag="--speak-when",
    )
    later = dataclasses.replace(
        new,
        name="quiet_secs",
        annotation="float",
        enum_type=None,
        flag="--quiet",
        metavar="DURATION",
        duration=True,
        default=0.0,
    )
    monkeypatch.setattr(declared_fields, "JOB_FIELDS", (*declared_fields.JOB_FIELDS, new, later))
    for command in ("add", "edit"):
        options = _options(command)
        assert options["--speak-when"].choices == ["skip", "queue", "allow"]
        assert options["--quiet"].metavar == "DURATION"
    args = build_parser().parse_args(["jobs", "add", "n", "p", "--every", "1h", "--quiet", "5m"])
    assert (args.speak_when, args.quiet_secs) == (None, "5m")
