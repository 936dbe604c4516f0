"""The job field declaration (starpod_cron/fields.py) is the one place a field is named: every
dataclass, column list and front end follows it, so a field cannot be added in one place and
forgotten in another."""

from __future__ import annotations

import enum
import json
from dataclasses import fields
from datetime import UTC, datetime

import pytest

from starpod_cron import fieldgen
from starpod_cron import fields as fields_module
from starpod_cron.bounds import Within, rules
from starpod_cron.declared import JOB_KEYS
from starpod_cron.errors import InvalidInput, InvalidJob
from starpod_cron.fields import (
    JOB_FIELDS,
    SPECIAL_INPUTS,
    JobField,
    job_field,
    option_fields,
    options_json,
    public_fields,
    user_fields,
)
from starpod_cron.jobfields import JobFields, from_text, spec_value
from starpod_cron.models import CronJob, JobUpdate
from starpod_cron.schedules import Schedule
from starpod_cron.settings import StoreSettings
from starpod_cron.store import planning, validation
from starpod_cron.store.records import JOB_COLUMNS, JobRecord
from starpod_cron.store.types import JobSpec
from starpod_cron.tools import TOOLS
from starpod_cron.toolschema import field_schema
from starpod_cron.views import job_json


def test_the_generated_dataclass_blocks_are_fresh() -> None:
    assert fieldgen.generate(check=True) == [], "run: python -m starpod_cron.fieldgen"


def test_each_dataclass_has_exactly_the_declared_fields() -> None:
    assert [f.name for f in fields(CronJob)] == [f.name for f in public_fields()]
    assert [f.name for f in fields(JobUpdate)] == [f.name for f in user_fields()]
    settable = [f.name for f in JOB_FIELDS if f.who in ("user", "internal")]
    assert [f.name for f in fields(JobSpec)] == settable
    assert tuple(f.name for f in fields(JobRecord)) == JOB_COLUMNS
    given = {f.name for f in fields(JobFields)}
    assert {f.name for f in option_fields()} | {"enabled"} <= given


def test_defaults_on_the_dataclasses_are_the_declared_ones() -> None:
    spec = {f.name: f.default for f in fields(JobSpec)}
    for f in JOB_FIELDS:
        if f.who == "runtime" or f.name in ("name", "prompt", "schedule"):
            continue
        want = None if f.setting is not None else f.default
        assert spec[f.name] == want, f.name


def test_a_field_is_found_by_name() -> None:
    assert job_field("timeout_secs").column_name == "timeout_ms"
    assert job_field("overlap").choices == ("skip", "queue", "allow")
    assert job_field("max_retries").default_text() == "[cron] default_max_retries, 3"


class Notify(enum.StrEnum):  # issue 24's first field, declared here only to prove the path
    ALWAYS = "always"
    ON_FAILURE = "on_failure"
    NEVER = "never"


NOTIFY = JobField(
    "notify",
    "Notify",
    "Which runs are delivered: always, on_failure or never.",
    who="user",
    default=Notify.ALWAYS,
    enum_type=Notify,
    storage="enum",
    flag="--notify",
)
RUNS_LEFT = JobField(
    "max_runs",
    "int | None",
    "Runs after which the job disables itself.",
    who="user",
    default=None,
    rule=Within(1, 1_000_000, integer=True),
    flag="--max-runs",
    metavar="N",
)


START = JobField(
    "start_at",
    "datetime | None",
    "No fire before this time.",
    who="user",
    default=None,
    storage="ms",
    flag="--start-at",
    metavar="TIME",
)


def test_a_new_field_needs_only_its_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Appending declarations is all it takes: the generated dataclasses, the column list,
    the checks, the tools' schema, the [[jobs]] keys, the CLI's and the form's listing
    follow (the migration and the code acting on the field are the rest)."""
    monkeypatch.setattr(fields_module, "JOB_FIELDS", (*JOB_FIELDS, NOTIFY, RUNS_LEFT, START))
    monkeypatch.setattr(fieldgen, "JOB_FIELDS", fields_module.JOB_FIELDS)
    assert "notify: Notify = Notify.ALWAYS" in fieldgen.cron_job()
    assert "max_runs: int | None = None" in fieldgen.cron_job()
    assert "notify: Notify | _Unset = UNSET" in fieldgen.job_update()
    assert "max_runs: int | _Unset | None = UNSET" in fieldgen.job_update()
    assert "notify: Notify = Notify.ALWAYS" in fieldgen.job_spec()
    assert 'notify: str = "always"' in fieldgen.job_record()
    assert "max_runs: int | None = None" in fieldgen.job_record()
    assert "notify: str | None = None" in fieldgen.job_fields()
    assert "max_runs: int | None = None" in fieldgen.job_fields()
    listed = {f.name: f for f in fields_module.option_fields()}
    assert listed["notify"].choices == ("always", "on_failure", "never")
    assert (listed["max_runs"].flag, listed["max_runs"].input) == ("--max-runs", "int")
    schema = field_schema(NOTIFY)
    assert schema["enum"] == ["always", "on_failure", "never"]
    assert field_schema(RUNS_LEFT)["maximum"] == 1_000_000
    assert validation.stored(NOTIFY, Notify.NEVER) == "never"
    with pytest.raises(InvalidJob, match="notify must be 'always', 'on_failure' or 'never'"):
        validation.stored(NOTIFY, "sometimes")
    with pytest.raises(InvalidJob, match="max_runs must be an integer from 1 to 1000000"):
        validation.stored(RUNS_LEFT, 0)
    assert validation.stored(RUNS_LEFT, None) is None
    assert "start_at: datetime | None = None" in fieldgen.cron_job()
    assert "start_at: int | None = None" in fieldgen.job_record()
    assert "start_at: str | None = None" in fieldgen.job_fields()
    assert field_schema(START)["type"] == "string"
    now = datetime(2027, 1, 15, 8, tzinfo=UTC)
    start = spec_value(START, "tomorrow 9:00", tz="Europe/Rome", now=now)
    assert start == datetime(2027, 1, 16, 8, tzinfo=UTC)
    assert validation.stored(START, start) == 1_800_086_400_000
    assert spec_value(NOTIFY, "never", tz="UTC", now=now) is Notify.NEVER


def test_every_user_field_reaches_every_front_end() -> None:
    """The declaration, walked: each user field is in JobSpec, JobUpdate, CronJob, the job
    view, the columns, the tools (add and update), [[jobs]] and JobFields, unless its
    declaration says it is not."""
    spec, update, job = ({f.name for f in fields(cls)} for cls in (JobSpec, JobUpdate, CronJob))
    add_tool = TOOLS["cron_add"].parameters["properties"]
    update_tool = TOOLS["cron_update"].parameters["properties"]
    given = {f.name for f in fields(JobFields)}
    view = set(job_json(_sample_job()))
    for f in user_fields():
        assert f.name in spec and f.name in update and f.name in job, f.name
        assert f.view_key in view, f.name
        assert f.storage == "schedule" or f.column_name in JOB_COLUMNS, f.name
        assert (f.name in JOB_KEYS) == (f.toml and f.storage != "schedule"), f.name
        if f.name in SPECIAL_INPUTS:
            continue
        assert f.name in given, f.name
        assert (f.name in add_tool) == f.on_add, f.name
        assert (f.name in update_tool) == (f.on_update and f.name != "user_id"), f.name


def _sample_job() -> CronJob:
    spec = JobSpec("n", "p", Schedule.cron("0 9 * * *"))
    return planning.new_job(spec, 1_800_000_000_000, StoreSettings()).to_public()


def test_typed_values_are_read_by_their_declared_kind() -> None:
    assert from_text(job_field("timeout_secs"), "1h30m") == 5400
    assert from_text(job_field("jitter_secs"), "0") == 0
    assert from_text(job_field("max_retries"), "5") == 5
    assert from_text(job_field("delete_after_run"), "no") is False
    assert from_text(job_field("overlap"), "queue") == "queue"
    with pytest.raises(InvalidInput, match="max_retries must be a whole number from 0 to 100"):
        from_text(job_field("max_retries"), "١")  # an Arabic-Indic one: int() would take it
    with pytest.raises(InvalidInput, match="overlap must be 'skip', 'queue' or 'allow'"):
        from_text(job_field("overlap"), "sometimes")


def test_a_field_defaulted_by_a_setting_has_that_settings_bounds() -> None:
    """``[cron] default_max_retries`` can never hold a value a job's max_retries refuses."""
    setting_rules = rules(StoreSettings)
    defaulted = [f for f in JOB_FIELDS if f.setting is not None]
    assert {f.name for f in defaulted} == {
        "timezone",
        "max_retries",
        "timeout_secs",
        "jitter_secs",
        "pause_after_failures",
    }
    for f in defaulted:
        assert hasattr(StoreSettings(), f.setting), f.name  # type: ignore[arg-type]
        if f.rule is not None:
            assert setting_rules[f.setting] == f.rule, f.name  # type: ignore[index]


def test_the_options_as_json_say_what_a_form_needs() -> None:
    listed = {o["name"]: o for o in options_json()}
    assert "enabled" not in listed and "name" not in listed
    assert listed["overlap"]["widget"] == "select"
    assert listed["overlap"]["choices"] == ["skip", "queue", "allow"]
    assert (listed["max_retries"]["min"], listed["max_retries"]["max"]) == (0, 100)
    assert listed["timeout_secs"]["input"] == "duration"
    assert listed["timeout_secs"]["min_exclusive"] is True
    assert listed["max_retries"]["flag"] == "--retries"
    json.dumps(listed)
    assert "enabled" in {o["name"] for o in options_json(update=True)}


def test_defaults_checked_once_give_the_columns_checking_each_spec_gives() -> None:
    """A batch add checks the ``[cron]`` defaults once per settings object: the columns are
    those of checking every field of every spec, and a default the settings hold but the
    field refuses is still refused at that field, by a spec left to it."""
    from starpod_cron.schedules import Schedule
    from starpod_cron.settings import StoreSettings
    from starpod_cron.store.types import JobSpec

    hourly = Schedule.interval(every_ms=3_600_000)
    settings = StoreSettings(default_timezone="Europe/Rome", default_max_retries=3)
    left = JobSpec("left", "p", hourly)
    given = JobSpec("given", "p", hourly, timezone="UTC", max_retries=1, timeout_secs=7)
    full = validation._spec_columns()
    for spec in (left, given):
        assert validation.spec_columns(spec, settings) == full(spec, settings)
    assert validation.spec_columns(left, settings)["timezone"] == "Europe/Rome"
    assert validation.spec_columns(given, settings)["max_retries"] == 1
    other = StoreSettings(default_max_retries=5)  # a new settings object: its own defaults
    assert validation.spec_columns(left, other)["max_retries"] == 5
    refused = StoreSettings()
    object.__setattr__(refused, "default_timeout_secs", -1)  # past the settings' own check
    with pytest.raises(InvalidJob, match="timeout_secs"):
        validation.spec_columns(left, refused)
    assert validation.spec_columns(given, refused)["timeout_ms"] == 7000
